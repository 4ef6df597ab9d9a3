//! `/dev/hsa_p2p`: VRAM buffers, peer mappings and copies through the `hsa_p2p` module.
//!
//! [`Device`] wraps the ioctl ABI of [`hsa_p2p_core::abi`] (the very definitions the module
//! compiles); [`transfer`] picks the path a copy takes from the published topology (direct when
//! the accessor has a p2p link to the owner, staged otherwise) and verifies what arrived;
//! [`bench`] measures both paths.

pub mod bench;
mod eventfd;
mod sys;
pub mod transfer;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use eventfd::EventFd;

pub use hsa_p2p_core::abi;
use hsa_p2p_core::abi::{
    cmd, AbiError, AllocArgs, CopyArgs, CopySubmitArgs, CopyWaitArgs, FreeArgs, InfoArgs,
    MapPeerArgs, UnmapPeerArgs, VersionArgs,
};
use hsa_p2p_core::gate::DenialReasons;

/// Where the module's misc device appears.
pub const DEVICE_PATH: &str = "/dev/hsa_p2p";

/// What went wrong talking to the device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The device node could not be opened.
    #[error("cannot open {path}: {source}; is the hsa_p2p module loaded?")]
    Open {
        /// The node.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The module speaks another major ABI version.
    #[error(
        "the module speaks ABI {major}.{minor}, this program {}.{}",
        abi::ABI_VERSION_MAJOR,
        abi::ABI_VERSION_MINOR
    )]
    Version {
        /// The module's major version.
        major: u32,
        /// The module's minor version.
        minor: u32,
    },
    /// A documented error of the ABI.
    #[error("{op}: {} ({})", .error.name(), .error.meaning())]
    Abi {
        /// The operation.
        op: &'static str,
        /// The error.
        error: AbiError,
    },
    /// `MAP_PEER` refused: the published topology has no p2p link for the pair.
    #[error("{op}: EXDEV (no p2p link from the accessor to the owner in the published topology{})", describe_reasons(*.reasons))]
    NoPeerLink {
        /// The operation.
        op: &'static str,
        /// The published denial's reason bits.
        reasons: u32,
    },
    /// An asynchronous copy ended without copying every byte.
    #[error("{op}: the copy ended with {}", status_name(*.status))]
    CopyFailed {
        /// The operation.
        op: &'static str,
        /// `COPY_WAIT`'s status (a positive errno).
        status: u32,
    },
    /// Any other system error.
    #[error("{op}: {source}")]
    Os {
        /// The operation.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

fn describe_reasons(bits: u32) -> String {
    let reasons: Vec<String> = DenialReasons::from_bits(bits)
        .iter()
        .map(|reason| format!("{reason:?}"))
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join(", "))
    }
}

/// The symbolic name of a `COPY_WAIT` status.
pub fn status_name(status: u32) -> String {
    match status {
        0 => "success".to_owned(),
        abi::COPY_STATUS_CANCELED => "ECANCELED (cancelled: the file was closed)".to_owned(),
        _ => match i32::try_from(status).ok().and_then(AbiError::from_errno) {
            Some(error) => format!("{} ({})", error.name(), error.meaning()),
            None => format!("errno {status}"),
        },
    }
}

impl DeviceError {
    /// The ABI error, if this is one.
    pub fn abi_error(&self) -> Option<AbiError> {
        match self {
            DeviceError::Abi { error, .. } => Some(*error),
            DeviceError::NoPeerLink { .. } => Some(AbiError::NoPeerLink),
            _ => None,
        }
    }

    fn from_io(op: &'static str, source: io::Error) -> Self {
        match source.raw_os_error().and_then(AbiError::from_errno) {
            Some(error) => DeviceError::Abi { op, error },
            None => DeviceError::Os { op, source },
        }
    }
}

/// A buffer as `ALLOC` described it. Freed with [`Device::free`] or when the device is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Handle (valid in the [`Device`] that allocated it only).
    pub handle: u32,
    /// The owning GPU.
    pub gpu_id: u32,
    /// Size in bytes (rounded up to a page).
    pub size: u64,
    /// Offset in the GPU's VRAM BAR (= in its /dev/shm backing file when emulated).
    pub vram_offset: u64,
    /// The `mmap` offset.
    pub mmap_offset: u64,
}

/// How a peer reaches a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerMapping {
    /// The address the peer uses.
    pub bus_address: u64,
    /// `abi::MAP_TYPE_*`.
    pub map_type: u32,
}

/// The path a copy took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyPath {
    /// BAR to BAR.
    Direct,
    /// Through a system-memory bounce buffer.
    Staged,
}

impl CopyPath {
    /// The path `abi::PATH_*` names (`None` for 0: the copy ended before it chose one).
    pub fn from_abi(path: u32) -> Option<Self> {
        match path {
            abi::PATH_DIRECT => Some(CopyPath::Direct),
            abi::PATH_STAGED => Some(CopyPath::Staged),
            _ => None,
        }
    }

    /// `direct` or `staged`.
    pub fn name(self) -> &'static str {
        match self {
            CopyPath::Direct => "direct",
            CopyPath::Staged => "staged",
        }
    }
}

/// Which paths a copy may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathChoice {
    /// Direct when possible, staged otherwise.
    Auto,
    /// Direct only.
    Direct,
    /// Staged only.
    Staged,
}

impl PathChoice {
    /// The `abi::COPY_*` flags.
    pub fn flags(self) -> u32 {
        match self {
            PathChoice::Auto => 0,
            PathChoice::Direct => abi::COPY_DIRECT,
            PathChoice::Staged => abi::COPY_STAGED,
        }
    }
}

/// A copy between two buffers of one [`Device`], for [`Device::submit_copy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyRequest {
    /// Source buffer handle.
    pub src: u32,
    /// Offset in the source buffer.
    pub src_offset: u64,
    /// Destination buffer handle.
    pub dst: u32,
    /// Offset in the destination buffer.
    pub dst_offset: u64,
    /// Bytes to copy.
    pub size: u64,
    /// Which paths the copy may take.
    pub choice: PathChoice,
}

impl CopyRequest {
    /// `size` bytes from the start of `src` to the start of `dst`.
    pub fn whole(src: u32, dst: u32, size: u64, choice: PathChoice) -> Self {
        Self {
            src,
            src_offset: 0,
            dst,
            dst_offset: 0,
            size,
            choice,
        }
    }
}

/// An asynchronous copy of one [`Device`], until [`Device::wait_copy`] reaps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// How long [`Device::wait_copy`] waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTimeout {
    /// Do not wait: only look whether the copy has ended.
    Poll,
    /// At most this long.
    For(Duration),
    /// Until the copy ends.
    Forever,
}

impl WaitTimeout {
    /// `CopyWaitArgs::timeout_ns` (durations beyond `u64` nanoseconds wait forever).
    pub fn nanoseconds(self) -> u64 {
        match self {
            WaitTimeout::Poll => 0,
            WaitTimeout::For(duration) => {
                u64::try_from(duration.as_nanos()).unwrap_or(abi::WAIT_FOREVER)
            }
            WaitTimeout::Forever => abi::WAIT_FOREVER,
        }
    }
}

/// How an asynchronous copy ended, as `COPY_WAIT` reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyCompletion {
    /// 0, or the positive errno that ended the copy (`abi::COPY_STATUS_CANCELED`, `ENODEV`
    /// for an unbound GPU, or an error `COPY` returns).
    pub status: u32,
    /// The path taken (`None` when the copy ended before choosing one).
    pub path: Option<CopyPath>,
    /// Time from its start on an engine to its end, in nanoseconds.
    pub nanoseconds: u64,
}

impl CopyCompletion {
    /// The outcome of a copy that copied every byte, else [`DeviceError::CopyFailed`].
    pub fn outcome(&self) -> Result<CopyOutcome, DeviceError> {
        match (self.status, self.path) {
            (0, Some(path)) => Ok(CopyOutcome {
                path,
                nanoseconds: self.nanoseconds,
            }),
            (status, _) => Err(DeviceError::CopyFailed {
                op: "asynchronous copy",
                status,
            }),
        }
    }
}

/// What `COPY` reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyOutcome {
    /// The path taken.
    pub path: CopyPath,
    /// Time in the kernel, in nanoseconds.
    pub nanoseconds: u64,
}

/// An open `/dev/hsa_p2p`. Closing it frees its buffers.
#[derive(Debug)]
pub struct Device {
    file: File,
}

impl Device {
    /// Opens [`DEVICE_PATH`] and checks the ABI version.
    pub fn open() -> Result<Self, DeviceError> {
        Self::open_at(Path::new(DEVICE_PATH))
    }

    /// Opens the device node at `path` and checks the ABI version.
    pub fn open_at(path: &Path) -> Result<Self, DeviceError> {
        Self::open_with_access(path, true)
    }

    /// Opens the device node at `path` for reading only (its buffers can then only be mapped
    /// read-only) and checks the ABI version.
    pub fn open_read_only_at(path: &Path) -> Result<Self, DeviceError> {
        Self::open_with_access(path, false)
    }

    fn open_with_access(path: &Path, write: bool) -> Result<Self, DeviceError> {
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|source| DeviceError::Open {
                path: path.to_owned(),
                source,
            })?;
        let device = Self { file };
        let (major, minor) = device.version()?;
        if major != abi::ABI_VERSION_MAJOR {
            return Err(DeviceError::Version { major, minor });
        }
        Ok(device)
    }

    /// Issues `command` with `bytes` as the argument block, unchecked (for tests of the ABI's
    /// error handling): the result is the raw OS error.
    pub fn raw_ioctl(&self, command: u32, bytes: &mut [u8]) -> io::Result<()> {
        if bytes.len() < abi::ioc_size(command) {
            return Err(io::Error::from_raw_os_error(
                AbiError::InvalidArgument.errno(),
            ));
        }
        // SAFETY: `bytes` is writable and at least as long as the size `command` encodes.
        unsafe { sys::ioctl(self.file.as_raw_fd(), command, bytes.as_mut_ptr()) }
    }

    fn ioctl<T>(&self, op: &'static str, command: u32, args: &mut T) -> Result<(), DeviceError> {
        debug_assert_eq!(abi::ioc_size(command), std::mem::size_of::<T>());
        // SAFETY: `args` is a `#[repr(C)]` argument block of the size `command` encodes
        // (the ABI's commands are computed from these very types).
        unsafe {
            sys::ioctl(
                self.file.as_raw_fd(),
                command,
                std::ptr::from_mut(args).cast(),
            )
        }
        .map_err(|source| DeviceError::from_io(op, source))
    }

    /// The module's ABI version.
    pub fn version(&self) -> Result<(u32, u32), DeviceError> {
        let mut args = VersionArgs::default();
        self.ioctl("version", cmd::VERSION, &mut args)?;
        Ok((args.major, args.minor))
    }

    /// Allocates `size` bytes of VRAM on GPU `gpu_id`.
    pub fn alloc(&self, gpu_id: u32, size: u64) -> Result<Buffer, DeviceError> {
        let mut args = AllocArgs {
            gpu_id,
            size,
            ..AllocArgs::default()
        };
        self.ioctl("alloc", cmd::ALLOC, &mut args)?;
        Ok(Buffer {
            handle: args.handle,
            gpu_id,
            size: args.allocated_size,
            vram_offset: args.vram_offset,
            mmap_offset: args.mmap_offset,
        })
    }

    /// Frees a buffer.
    pub fn free(&self, handle: u32) -> Result<(), DeviceError> {
        let mut args = FreeArgs {
            handle,
            reserved: 0,
        };
        self.ioctl("free", cmd::FREE, &mut args)
    }

    /// Maps buffer `handle` for peer GPU `peer_gpu_id`.
    pub fn map_peer(&self, handle: u32, peer_gpu_id: u32) -> Result<PeerMapping, DeviceError> {
        let mut args = MapPeerArgs {
            handle,
            peer_gpu_id,
            ..MapPeerArgs::default()
        };
        match self.ioctl("map for peer", cmd::MAP_PEER, &mut args) {
            Err(DeviceError::Abi {
                op,
                error: AbiError::NoPeerLink,
            }) => Err(DeviceError::NoPeerLink {
                op,
                reasons: args.denial_reasons,
            }),
            Err(error) => Err(error),
            Ok(()) => Ok(PeerMapping {
                bus_address: args.bus_address,
                map_type: args.map_type,
            }),
        }
    }

    /// Removes a peer mapping.
    pub fn unmap_peer(&self, handle: u32, peer_gpu_id: u32) -> Result<(), DeviceError> {
        let mut args = UnmapPeerArgs {
            handle,
            peer_gpu_id,
        };
        self.ioctl("unmap for peer", cmd::UNMAP_PEER, &mut args)
    }

    /// Copies `size` bytes from `src` at `src_offset` to `dst` at `dst_offset`.
    pub fn copy(
        &self,
        src: u32,
        src_offset: u64,
        dst: u32,
        dst_offset: u64,
        size: u64,
        choice: PathChoice,
    ) -> Result<CopyOutcome, DeviceError> {
        let mut args = CopyArgs {
            src_handle: src,
            dst_handle: dst,
            src_offset,
            dst_offset,
            size,
            flags: choice.flags(),
            ..CopyArgs::default()
        };
        self.ioctl("copy", cmd::COPY, &mut args)?;
        Ok(CopyOutcome {
            path: CopyPath::from_abi(args.path).unwrap_or(CopyPath::Staged),
            nanoseconds: args.nanoseconds,
        })
    }

    /// Starts `request` on the module's copy engines and returns at once (`COPY_SUBMIT`); the
    /// copy is checked as [`Self::copy`] checks it. `eventfd`, when given, gets 1 added to
    /// its counter when the copy ends.
    pub fn submit_copy(
        &self,
        request: &CopyRequest,
        eventfd: Option<BorrowedFd<'_>>,
    ) -> Result<Ticket, DeviceError> {
        let mut args = CopySubmitArgs {
            src_handle: request.src,
            dst_handle: request.dst,
            src_offset: request.src_offset,
            dst_offset: request.dst_offset,
            size: request.size,
            flags: request.choice.flags(),
            eventfd: eventfd.map_or(abi::NO_EVENTFD, |fd| fd.as_raw_fd()),
            ticket: 0,
        };
        self.ioctl("submit copy", cmd::COPY_SUBMIT, &mut args)?;
        Ok(Ticket(args.ticket))
    }

    /// Waits up to `timeout` for an asynchronous copy to end and reaps it (`COPY_WAIT`).
    /// A copy still running gives [`AbiError::NotEnded`] (`EAGAIN`) and a signal
    /// [`AbiError::Interrupted`]; the ticket stays valid in both cases. A copy that ended with
    /// an error is `Ok` here, with its status: see [`CopyCompletion::outcome`].
    pub fn wait_copy(
        &self,
        ticket: Ticket,
        timeout: WaitTimeout,
    ) -> Result<CopyCompletion, DeviceError> {
        let mut args = CopyWaitArgs {
            ticket: ticket.0,
            timeout_ns: timeout.nanoseconds(),
            ..CopyWaitArgs::default()
        };
        self.ioctl("wait for copy", cmd::COPY_WAIT, &mut args)?;
        Ok(CopyCompletion {
            status: args.status,
            path: CopyPath::from_abi(args.path),
            nanoseconds: args.nanoseconds,
        })
    }

    /// Describes buffer `handle`.
    pub fn info(&self, handle: u32) -> Result<InfoArgs, DeviceError> {
        let mut args = InfoArgs {
            handle,
            ..InfoArgs::default()
        };
        self.ioctl("info", cmd::INFO, &mut args)?;
        Ok(args)
    }

    /// Maps a whole buffer into this process, readable and writable.
    pub fn mmap(&self, buffer: &Buffer) -> Result<Mapping, DeviceError> {
        self.mmap_with(buffer, sys::PROT_READ_WRITE)
    }

    /// Maps a whole buffer into this process with the `PROT_*` bits `protection` (tests of
    /// what the module refuses).
    pub fn mmap_with(&self, buffer: &Buffer, protection: i32) -> Result<Mapping, DeviceError> {
        let len = usize::try_from(buffer.size).map_err(|_| DeviceError::Abi {
            op: "mmap",
            error: AbiError::OutOfRange,
        })?;
        let address = sys::mmap_shared(self.file.as_raw_fd(), len, protection, buffer.mmap_offset)
            .map_err(|source| DeviceError::from_io("mmap", source))?;
        Ok(Mapping { address, len })
    }
}

impl AsFd for Device {
    /// The open file, for callers that issue system calls this API does not wrap (tests of
    /// hostile input).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// A buffer mapped into this process; unmapped on drop.
///
/// # Invariants
///
/// `[address, address + len)` is a shared mapping of a buffer, owned by this value.
#[derive(Debug)]
pub struct Mapping {
    address: *mut u8,
    len: usize,
}

impl Mapping {
    /// The buffer's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is readable for `len` bytes while `self` lives (invariant); the
        // device memory behind it is only changed by this process's own copies, which take
        // `&self` of the `Device`, not of the mapping.
        unsafe { std::slice::from_raw_parts(self.address, self.len) }
    }

    /// The first byte's address, for accesses that must survive a revoked mapping (the stress
    /// campaign reads through a system call, which fails with `EFAULT` instead of `SIGBUS`).
    pub fn as_ptr(&self) -> *mut u8 {
        self.address
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: buffers are at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer's bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.address, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours (invariant) and no borrow of it outlives `self`.
        let _ = unsafe { sys::munmap(self.address, self.len) };
    }
}

/// 64-bit FNV-1a of `bytes`, eight bytes at a time (fast enough to verify 64 MiB under TCG).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        hash = (hash ^ word).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for byte in chunks.remainder() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Fills `bytes` with the xorshift64* stream of `seed` (the host regenerates it to check what
/// the guest wrote).
pub fn fill_random(bytes: &mut [u8], seed: u64) {
    let mut state = seed | 1;
    let mut chunks = bytes.chunks_exact_mut(8);
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for chunk in &mut chunks {
        chunk.copy_from_slice(&next().to_le_bytes());
    }
    let tail = next().to_le_bytes();
    let rest = chunks.into_remainder();
    let n = rest.len();
    rest.copy_from_slice(&tail[..n]);
}

/// The bytes [`fill_random`] writes for `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    fill_random(&mut bytes, seed);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_streams_are_reproducible_and_distinct() {
        assert_eq!(random_bytes(100, 7), random_bytes(100, 7));
        assert_ne!(random_bytes(100, 7), random_bytes(100, 8));
        let mut partial = vec![0; 13];
        fill_random(&mut partial, 7);
        assert_eq!(partial, random_bytes(13, 7));
    }

    #[test]
    fn checksum_sees_every_byte() {
        let mut bytes = random_bytes(4099, 1);
        let before = checksum(&bytes);
        bytes[4098] ^= 1;
        assert_ne!(checksum(&bytes), before);
    }

    #[test]
    fn errors_name_the_errno() {
        let error = DeviceError::from_io("copy", io::Error::from_raw_os_error(18));
        assert_eq!(error.abi_error(), Some(AbiError::NoPeerLink));
        assert!(error.to_string().contains("EXDEV"), "{error}");
        let error = DeviceError::from_io("copy", io::Error::from_raw_os_error(1));
        assert_eq!(error.abi_error(), None);
    }

    #[test]
    fn completions_name_their_status() {
        let done = CopyCompletion {
            status: 0,
            path: Some(CopyPath::Direct),
            nanoseconds: 5,
        };
        assert_eq!(done.outcome().unwrap().nanoseconds, 5);
        let canceled = CopyCompletion {
            status: abi::COPY_STATUS_CANCELED,
            ..done
        };
        let error = canceled.outcome().unwrap_err();
        assert!(error.to_string().contains("ECANCELED"), "{error}");
        let unbound = CopyCompletion { status: 19, ..done };
        assert!(unbound
            .outcome()
            .unwrap_err()
            .to_string()
            .contains("ENODEV"));
        assert_eq!(status_name(1000), "errno 1000");
    }

    #[test]
    fn timeouts_are_nanoseconds() {
        assert_eq!(WaitTimeout::Poll.nanoseconds(), 0);
        assert_eq!(WaitTimeout::Forever.nanoseconds(), abi::WAIT_FOREVER);
        let second = WaitTimeout::For(Duration::from_secs(1));
        assert_eq!(second.nanoseconds(), 1_000_000_000);
        assert_eq!(
            WaitTimeout::For(Duration::MAX).nanoseconds(),
            abi::WAIT_FOREVER
        );
    }

    #[test]
    fn missing_device_is_reported_with_a_hint() {
        let error = Device::open_at(Path::new("/nonexistent/hsa_p2p")).unwrap_err();
        assert!(error.to_string().contains("module loaded"), "{error}");
    }
}
