//! What the device suites (`transfer`, `abi`, `device`) test through: a [`Backend`] that
//! carries out [`Request`]s on `/dev/hsa_p2p`, and the [`Session`] a case opens on it.
//!
//! On a machine the backend is [`real::RealBackend`], built on `hsa_p2p_runtime::device`; the
//! host tests use `fake::FakeBackend`, a model of the module's documented answers that can be
//! given defects, so that every case is shown to pass on a correct device and to fail on the
//! defect it exists to catch. A case never talks to the device any other way.

#[cfg(test)]
pub mod fake;
pub mod probe;
pub mod real;

use std::fmt;

use hsa_p2p_core::abi::{
    self, AbiError, CopyArgs, CopySubmitArgs, CopyWaitArgs, FreeArgs, InfoArgs,
};
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::device::transfer::{gpus, GpuRef};
use hsa_p2p_runtime::device::{Buffer, CopyOutcome, CopyPath, PeerMapping};

use crate::context::{Context, ModuleState};
use crate::report::Outcome;
use crate::runner::TestOutput;

pub use probe::{Probe, ProbeOutcome};

/// One operation on the device, with the argument blocks as user space may fill them (reserved
/// fields and flags included, so that bad input can be expressed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `ALLOC`.
    Alloc {
        /// The GPU.
        gpu_id: u32,
        /// Bytes.
        size: u64,
    },
    /// `FREE`.
    Free(FreeArgs),
    /// `INFO`.
    Info {
        /// The buffer.
        handle: u32,
    },
    /// `MAP_PEER`.
    MapPeer {
        /// The buffer.
        handle: u32,
        /// The peer GPU.
        peer_gpu_id: u32,
    },
    /// `UNMAP_PEER`.
    UnmapPeer {
        /// The buffer.
        handle: u32,
        /// The peer GPU.
        peer_gpu_id: u32,
    },
    /// `COPY`.
    Copy(CopyArgs),
    /// `COPY_SUBMIT`.
    CopySubmit(CopySubmitArgs),
    /// `COPY_WAIT`.
    CopyWait(CopyWaitArgs),
    /// `mmap` of `size` bytes at `mmap_offset` (unmapped again at once).
    Mmap {
        /// The offset naming the buffer.
        mmap_offset: u64,
        /// Bytes.
        size: u64,
    },
    /// Any command number, with a zeroed argument block.
    Ioctl {
        /// The command.
        command: u32,
    },
}

impl Request {
    /// `FREE` of `handle`.
    pub fn free(handle: u32) -> Self {
        Request::Free(FreeArgs {
            handle,
            reserved: 0,
        })
    }

    /// `mmap` of a whole buffer.
    pub fn mmap(buffer: &Buffer) -> Self {
        Request::Mmap {
            mmap_offset: buffer.mmap_offset,
            size: buffer.size,
        }
    }

    /// `COPY` of `size` bytes at offset 0, along `path`.
    pub fn copy(src: u32, dst: u32, size: u64, path: CopyPath) -> Self {
        Request::Copy(CopyArgs {
            src_handle: src,
            dst_handle: dst,
            size,
            flags: match path {
                CopyPath::Direct => abi::COPY_DIRECT,
                CopyPath::Staged => abi::COPY_STAGED,
            },
            ..CopyArgs::default()
        })
    }
}

/// The fault point that holds every copy between its chunks (`delay_copy_chunk_ms`).
pub const DELAY_COPY_CHUNK_MS: &str = "delay_copy_chunk_ms";

/// What the device answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Done, nothing to report.
    Done,
    /// `ALLOC`'s buffer.
    Buffer(Buffer),
    /// `INFO`'s description.
    Info(InfoArgs),
    /// `MAP_PEER`'s mapping and, when refused, the denial's reason bits.
    Mapped(PeerMapping),
    /// What `COPY` did.
    Copied(CopyOutcome),
    /// `COPY_SUBMIT`'s ticket.
    Submitted(u64),
    /// `COPY_WAIT`'s argument block as the device wrote it back (status, path, time).
    Waited(CopyWaitArgs),
}

/// A refusal: the errno the device answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno of an ABI error.
    pub fn of(error: AbiError) -> Self {
        Errno(error.errno())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match AbiError::from_errno(self.0) {
            Some(error) => f.write_str(error.name()),
            None => write!(f, "errno {}", self.0),
        }
    }
}

/// A refused request: the errno and, for `MAP_PEER`'s `EXDEV`, the published denial's reason
/// bits (0 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The errno.
    pub errno: Errno,
    /// `hsa_p2p_core::gate::DenialReasons` bits.
    pub denial_reasons: u32,
}

impl From<Errno> for Refusal {
    fn from(errno: Errno) -> Self {
        Refusal {
            errno,
            denial_reasons: 0,
        }
    }
}

impl PartialEq<Errno> for Refusal {
    fn eq(&self, errno: &Errno) -> bool {
        self.errno == *errno
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.errno)?;
        if self.denial_reasons != 0 {
            write!(f, " (denial reasons {:#x})", self.denial_reasons)?;
        }
        Ok(())
    }
}

/// Mode and owner of the device node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeMode {
    /// Whether it is a character device.
    pub char_device: bool,
    /// Permission bits.
    pub permissions: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The device under test, as the suites see it. Every method works on one open file of the
/// device, except [`Backend::reopen`] (another open file) and [`Backend::probe`] (another
/// process).
pub trait Backend {
    /// Carries out `request`; why not when the device refused it.
    fn submit(&self, request: &Request) -> Result<Reply, Refusal>;
    /// Fills a buffer with the random stream of `seed` through a user mapping; its checksum.
    fn fill(&self, buffer: &Buffer, seed: u64) -> Result<u64, String>;
    /// The checksum of a buffer, read through a user mapping.
    fn checksum(&self, buffer: &Buffer) -> Result<u64, String>;
    /// A buffer's bytes, read through a user mapping.
    fn read(&self, buffer: &Buffer) -> Result<Vec<u8>, String>;
    /// Sets the fault point that makes every copy sleep `ms` milliseconds between two chunks
    /// (0: off), or why it cannot.
    fn delay_copy_chunks(&self, ms: u32) -> Result<(), String>;
    /// Another open file of the same device.
    fn reopen(&self) -> Result<Box<dyn Backend>, String>;
    /// Runs `probe` in a child process (for what only another process, or a dying one, shows).
    fn probe(&self, probe: &Probe) -> ProbeOutcome;
    /// The device node's mode and owner.
    fn node_mode(&self) -> Result<NodeMode, String>;

    /// `ALLOC` that must succeed.
    fn alloc(&self, gpu: GpuRef, size: u64) -> Result<Buffer, String> {
        match self.submit(&Request::Alloc {
            gpu_id: gpu.gpu_id,
            size,
        }) {
            Ok(Reply::Buffer(buffer)) => Ok(buffer),
            other => Err(format!(
                "alloc of {size} bytes on node {}: {other:?}",
                gpu.node
            )),
        }
    }

    /// `FREE` that must succeed.
    fn free(&self, handle: u32) -> Result<(), String> {
        self.submit(&Request::free(handle))
            .map(drop)
            .map_err(|errno| format!("free of handle {handle}: {errno}"))
    }
}

/// Allocates `size` bytes on `from` and on `to`, runs `body` on the two buffers (source,
/// destination) and frees both, whatever `body` gave.
pub fn with_buffer_pair(
    backend: &dyn Backend,
    (from, to): (GpuRef, GpuRef),
    size: u64,
    body: impl FnOnce(&Buffer, &Buffer) -> Result<(), String>,
) -> Result<(), String> {
    let src = backend.alloc(from, size)?;
    let dst = match backend.alloc(to, size) {
        Ok(dst) => dst,
        Err(problem) => {
            let _ = backend.free(src.handle);
            return Err(problem);
        }
    };
    let result = body(&src, &dst);
    let freed = backend.free(src.handle).and(backend.free(dst.handle));
    result.and(freed)
}

/// `MAP_PEER` of `buffer` for `peer` that must succeed.
pub fn map_for_peer(backend: &dyn Backend, buffer: &Buffer, peer: GpuRef) -> Result<(), String> {
    let request = Request::MapPeer {
        handle: buffer.handle,
        peer_gpu_id: peer.gpu_id,
    };
    backend
        .submit(&request)
        .map(drop)
        .map_err(|errno| format!("map for peer: {errno}"))
}

/// A request that must be refused with `expected`; the problem otherwise.
pub fn expect_refusal(
    backend: &dyn Backend,
    request: &Request,
    expected: AbiError,
) -> Result<(), String> {
    match backend.submit(request) {
        Err(errno) if errno == Errno::of(expected) => Ok(()),
        Err(errno) => Err(format!("expected {}, got {errno}", expected.name())),
        Ok(reply) => Err(format!("expected {}, got {reply:?}", expected.name())),
    }
}

/// What a device case works with: the backend, the module's topology and its GPUs.
pub struct Session {
    /// The device.
    pub backend: Box<dyn Backend>,
    /// The module's published topology.
    pub topology: Topology,
    /// Its GPU nodes, in node order.
    pub gpus: Vec<GpuRef>,
}

impl Session {
    /// Opens the device of `context`, or ends the case: skipped with the reason when the
    /// module is not there (unless the caller loaded it: then that is a failure).
    pub fn open(context: &Context) -> Result<Session, TestOutput> {
        if let ModuleState::Unavailable(reason) = &context.module {
            return Err(Outcome::skip(reason.clone()).into());
        }
        let topology = match context.module_tree() {
            Some(Ok(tree)) => tree.clone(),
            Some(Err(error)) => {
                return Err(Outcome::fail(format!("unreadable topology: {error}")).into())
            }
            None if context.module == ModuleState::Loaded => {
                return Err(Outcome::fail("the module is loaded but publishes no topology").into())
            }
            None => return Err(Outcome::skip("the hsa_p2p module is not loaded").into()),
        };
        match context.open_device() {
            Ok(backend) => Ok(Session {
                backend,
                gpus: gpus(&topology),
                topology,
            }),
            // Loaded by the caller: its device must be there.
            Err(error) if context.module == ModuleState::Loaded => Err(Outcome::fail(error).into()),
            Err(error) => Err(Outcome::skip(error).into()),
        }
    }

    /// [`Session::open`] and [`Session::first_gpu`]: the session and its first GPU, or the
    /// outcome that ends the case.
    pub fn open_on_first_gpu(context: &Context) -> Result<(Session, GpuRef), TestOutput> {
        let session = Session::open(context)?;
        let gpu = session.first_gpu()?;
        Ok((session, gpu))
    }

    /// Whether the published topology has a p2p link from `from` to `to`.
    pub fn linked(&self, from: GpuRef, to: GpuRef) -> bool {
        self.topology.p2p_link(from.node, to.node).is_some()
    }

    /// Every ordered pair of distinct GPUs.
    pub fn pairs(&self) -> Vec<(GpuRef, GpuRef)> {
        self.gpus
            .iter()
            .flat_map(|&from| self.gpus.iter().map(move |&to| (from, to)))
            .filter(|(from, to)| from != to)
            .collect()
    }

    /// The first GPU, or the skip that ends a case needing one.
    pub fn first_gpu(&self) -> Result<GpuRef, TestOutput> {
        self.gpus
            .first()
            .copied()
            .ok_or_else(|| Outcome::skip("the module's topology has no GPU").into())
    }
}
