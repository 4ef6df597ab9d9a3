//! The device's answers to bad input (`abi`): every malformed request gets the documented
//! errno of `hsa_p2p_core::abi`, never a crash, a partial effect or a success. Each case works
//! on two fresh 1 MiB buffers of the first GPU (and, where it needs a pair, on fresh buffers of
//! a pair with or without a p2p link), and frees them.

use hsa_p2p_core::abi::{
    self, AbiError, CopyArgs, CopySubmitArgs, CopyWaitArgs, FreeArgs, IOCTL_TYPE,
};
use hsa_p2p_runtime::device::transfer::GpuRef;
use hsa_p2p_runtime::device::{Buffer, CopyPath};

use crate::context::Context;
use crate::device::{expect_refusal, Request, Session};
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// Bytes of each fixture buffer.
const SIZE: u64 = 1 << 20;

/// What a bad request is built from.
struct Fixture<'a> {
    session: &'a Session,
    a: Buffer,
    b: Buffer,
    /// Buffers to free when the case ends.
    extra: Vec<u32>,
}

/// Why a case could not build its request.
enum Unbuildable {
    /// This machine lacks what the case needs.
    Skip(String),
    /// Setting it up failed.
    Fail(String),
}

impl From<String> for Unbuildable {
    fn from(problem: String) -> Self {
        Unbuildable::Fail(problem)
    }
}

type Skip = Unbuildable;

impl Fixture<'_> {
    /// `COPY` from `a` to `b`.
    fn copy(&self, src_offset: u64, dst_offset: u64, size: u64) -> CopyArgs {
        CopyArgs {
            src_handle: self.a.handle,
            dst_handle: self.b.handle,
            src_offset,
            dst_offset,
            size,
            ..CopyArgs::default()
        }
    }

    /// `COPY_SUBMIT` of a page from `a` to `b`, without an eventfd.
    fn submit(&self) -> CopySubmitArgs {
        CopySubmitArgs {
            src_handle: self.a.handle,
            dst_handle: self.b.handle,
            size: 4096,
            eventfd: abi::NO_EVENTFD,
            ..CopySubmitArgs::default()
        }
    }

    fn gpu(&self) -> u32 {
        self.a.gpu_id
    }

    fn alloc(&mut self, gpu: GpuRef, size: u64) -> Result<Buffer, String> {
        let buffer = self.session.backend.alloc(gpu, size)?;
        self.extra.push(buffer.handle);
        Ok(buffer)
    }

    /// A pair with (`linked`) or without a p2p link.
    fn pair(&self, linked: bool) -> Result<(GpuRef, GpuRef), Skip> {
        self.session
            .pairs()
            .into_iter()
            .find(|&(from, to)| self.session.linked(from, to) == linked)
            .ok_or_else(|| {
                let what = if linked { "with" } else { "without" };
                Unbuildable::Skip(format!(
                    "the module's topology has no GPU pair {what} a p2p link"
                ))
            })
    }
}

/// Runs one bad request: `build` makes it from a fresh fixture; it must be refused with
/// `expected`.
fn refused_with(
    context: &Context,
    expected: AbiError,
    build: fn(&mut Fixture) -> Result<Request, Skip>,
) -> TestOutput {
    let (session, gpu) = match Session::open_on_first_gpu(context) {
        Ok(opened) => opened,
        Err(output) => return output,
    };
    let backend = session.backend.as_ref();
    let (a, b) = match (backend.alloc(gpu, SIZE), backend.alloc(gpu, SIZE)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => return Outcome::fail(format!("fixture: {a:?}, {b:?}")).into(),
    };
    let mut fixture = Fixture {
        session: &session,
        a,
        b,
        extra: Vec::new(),
    };
    let outcome = match build(&mut fixture) {
        Ok(request) => match expect_refusal(backend, &request, expected) {
            Ok(()) => Outcome::Pass,
            Err(problem) => Outcome::fail(format!("{request:?}: {problem}")),
        },
        Err(Unbuildable::Skip(reason)) => Outcome::skip(reason),
        Err(Unbuildable::Fail(problem)) => Outcome::fail(problem),
    };
    // The double-free case frees `b` itself; everything else is still allocated.
    for handle in [fixture.a.handle, fixture.b.handle]
        .into_iter()
        .chain(fixture.extra)
    {
        let _ = backend.free(handle);
    }
    outcome.into()
}

/// Declares each case as `name (description): ERROR <= |fixture| request;`.
macro_rules! bad_input {
    ($($name:ident ($description:literal): $expected:ident <= |$f:ident| $build:expr;)*) => {
        $(
            fn $name(context: &Context) -> TestOutput {
                refused_with(context, AbiError::$expected, |$f| $build)
            }
        )*
        /// The `abi` suite.
        pub const TESTS: &[Test] = &[$(Test {
            suite: "abi",
            name: stringify!($name),
            description: $description,
            run: $name,
        }),*];
    };
}

bad_input! {
    copy_source_offset_out_of_range ("a copy starting past its source's end is EINVAL/ERANGE"):
        OutOfRange <= |f| Ok(Request::Copy(f.copy(SIZE, 0, 4096)));
    copy_destination_range_past_the_end ("a copy running past its destination's end is refused"):
        OutOfRange <= |f| Ok(Request::Copy(f.copy(0, SIZE - 4096, 8192)));
    copy_length_overflow ("a copy whose offset + length overflows is refused"):
        Overflow <= |f| Ok(Request::Copy(f.copy(4096, 0, u64::MAX - 100)));
    copy_offset_overflow ("a copy at an offset that overflows is refused"):
        Overflow <= |f| Ok(Request::Copy(f.copy(0, u64::MAX, 2)));
    copy_unknown_flags ("a copy with an undefined flag bit is refused"):
        InvalidArgument <= |f| Ok(Request::Copy(CopyArgs { flags: 0x80, ..f.copy(0, 0, 1) }));
    copy_direct_and_staged_at_once ("a copy asking for both paths is refused"):
        InvalidArgument <= |f| Ok(Request::Copy(CopyArgs {
            flags: abi::COPY_FLAGS,
            ..f.copy(0, 0, 1)
        }));
    submit_unknown_flags ("an asynchronous copy with an undefined flag bit is refused"):
        InvalidArgument <= |f| Ok(Request::CopySubmit(CopySubmitArgs { flags: 0x80, ..f.submit() }));
    submit_direct_and_staged_at_once ("an asynchronous copy asking for both paths is refused"):
        InvalidArgument <= |f| Ok(Request::CopySubmit(CopySubmitArgs {
            flags: abi::COPY_FLAGS,
            ..f.submit()
        }));
    submit_range_past_the_end ("an asynchronous copy running past its destination's end is refused"):
        OutOfRange <= |f| Ok(Request::CopySubmit(CopySubmitArgs {
            dst_offset: SIZE - 4095,
            ..f.submit()
        }));
    submit_eventfd_not_open ("an asynchronous copy naming a file descriptor that is not open as its eventfd is refused"):
        BadFileDescriptor <= |f| Ok(Request::CopySubmit(CopySubmitArgs {
            eventfd: 1 << 30,
            ..f.submit()
        }));
    submit_eventfd_not_an_eventfd ("an asynchronous copy naming an open file that is no eventfd as its eventfd is refused"):
        InvalidArgument <= |f| Ok(Request::CopySubmit(CopySubmitArgs {
            // Standard error: open in every process, and never an eventfd.
            eventfd: 2,
            ..f.submit()
        }));
    wait_unknown_ticket ("waiting for a ticket never issued is refused"):
        UnknownHandle <= |_f| Ok(Request::CopyWait(CopyWaitArgs {
            ticket: 0xdead_beef,
            ..CopyWaitArgs::default()
        }));
    alloc_size_overflow ("an allocation whose size overflows when rounded up is refused"):
        Overflow <= |f| Ok(Request::Alloc { gpu_id: f.gpu(), size: u64::MAX });
    alloc_size_zero ("an empty allocation is refused"):
        InvalidArgument <= |f| Ok(Request::Alloc { gpu_id: f.gpu(), size: 0 });
    alloc_larger_than_vram ("an allocation larger than the VRAM is refused"):
        NoVram <= |f| Ok(Request::Alloc { gpu_id: f.gpu(), size: abi::MAX_BUFFER_SIZE });
    alloc_unknown_gpu ("an allocation on a gpu_id no GPU has is refused"):
        UnknownGpu <= |_f| Ok(Request::Alloc { gpu_id: 0, size: 4096 });
    free_unknown_handle ("freeing a handle nobody allocated is refused"):
        UnknownHandle <= |_f| Ok(Request::free(0xdead_beef));
    info_unknown_handle ("describing a handle nobody allocated is refused"):
        UnknownHandle <= |_f| Ok(Request::Info { handle: 0xdead_beef });
    copy_unknown_handle ("a copy from a handle nobody allocated is refused"):
        UnknownHandle <= |f| Ok(Request::copy(0xdead_beef, f.b.handle, 1, CopyPath::Staged));
    map_unknown_peer_gpu ("mapping a buffer for a gpu_id no GPU has is refused"):
        UnknownGpu <= |f| Ok(Request::MapPeer { handle: f.a.handle, peer_gpu_id: 0 });
    free_reserved_field_set ("a free with its reserved field set is refused"):
        InvalidArgument <= |f| Ok(Request::Free(FreeArgs { handle: f.a.handle, reserved: 1 }));
    unknown_ioctl ("an undefined command number of the module's type is refused"):
        UnknownCommand <= |_f| Ok(Request::Ioctl {
            command: abi::iowr::<[u8; 16]>(IOCTL_TYPE, 0x7f),
        });
    known_ioctl_with_wrong_size ("a known command number with the wrong argument size is refused"):
        UnknownCommand <= |_f| Ok(Request::Ioctl {
            command: abi::ior::<[u8; 4]>(IOCTL_TYPE, 0x40),
        });
    foreign_ioctl_type ("another driver's command is refused"):
        UnknownCommand <= |_f| Ok(Request::Ioctl { command: abi::ior::<u32>(b'T'.into(), 0x01) });
    direct_copy_without_peer_mapping ("a direct copy into a linked peer's unmapped buffer is refused"):
        NotMappedForPeer <= |f| {
            let (from, to) = f.pair(true)?;
            let src = f.alloc(from, 4096)?;
            let dst = f.alloc(to, 4096)?;
            Ok(Request::copy(src.handle, dst.handle, 4096, CopyPath::Direct))
        };
    map_for_a_peer_without_p2p_link ("mapping a buffer for a GPU without a p2p link is refused"):
        NoPeerLink <= |f| {
            let (from, to) = f.pair(false)?;
            let dst = f.alloc(to, 4096)?;
            Ok(Request::MapPeer { handle: dst.handle, peer_gpu_id: from.gpu_id })
        };
    mmap_past_the_buffer ("mapping more than the buffer is refused"):
        OutOfRange <= |f| Ok(Request::Mmap { mmap_offset: f.a.mmap_offset, size: SIZE * 2 });
    mmap_unknown_handle ("mapping a handle nobody allocated is refused"):
        UnknownHandle <= |_f| Ok(Request::Mmap {
            mmap_offset: abi::mmap_offset(0xdead_beef),
            size: SIZE,
        });
    double_free ("freeing a buffer twice is refused the second time"):
        UnknownHandle <= |f| {
            f.session.backend.free(f.b.handle)?;
            Ok(Request::free(f.b.handle))
        };
}
