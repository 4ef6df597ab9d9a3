//! The `/dev/hsa_p2p` ioctl ABI: one definition for the kernel module and user space.
//!
//! Every argument block is `#[repr(C)]`, made of `u32`/`u64` fields with explicit padding
//! (`reserved` fields must be zero on input and are zero on output), so its layout is the same
//! for 64-bit and 32-bit user space and has no implicit padding bytes. Command numbers use the
//! kernel's `_IOC` encoding (`include/uapi/asm-generic/ioctl.h`), computed by the `const fn`s
//! below; the encoded size is the argument block's size, so a layout change changes the number.
//!
//! Errors are returned as negative errno values (user space sees `-1` and `errno`); [`AbiError`]
//! lists each one with its meaning in this ABI. See `docs/peer-transfers.md`.

use core::mem::size_of;

/// Major version: bumped on incompatible changes (user space must refuse a different major).
pub const ABI_VERSION_MAJOR: u32 = 1;
/// Minor version: bumped on compatible additions (2: asynchronous copies, `COPY_SUBMIT` and
/// `COPY_WAIT`).
pub const ABI_VERSION_MINOR: u32 = 2;

/// The misc device's name (`/dev/hsa_p2p`).
pub const DEVICE_NAME: &str = "hsa_p2p";
/// The device node's permission bits.
pub const DEVICE_MODE: u16 = 0o660;

/// The ioctl type byte (`'H'`, with command numbers from 0x40, clear of `'H'`'s HID range).
pub const IOCTL_TYPE: u32 = b'H' as u32;

/// Size in bytes of a VRAM page: buffer sizes and offsets are rounded to it.
pub const VRAM_PAGE: u64 = 4096;

/// `mmap` offset of a buffer: `handle << MMAP_HANDLE_SHIFT` (so buffers are at most 4 GiB).
pub const MMAP_HANDLE_SHIFT: u32 = 32;
/// Largest buffer (a consequence of [`MMAP_HANDLE_SHIFT`]).
pub const MAX_BUFFER_SIZE: u64 = 1 << MMAP_HANDLE_SHIFT;

/// Default of the module parameter `max_buffers_per_file`: the most buffers one open file may
/// hold (`ALLOC` fails with `ENOSPC` beyond).
pub const DEFAULT_MAX_BUFFERS_PER_FILE: u32 = 4096;
/// Default of the module parameter `max_bytes_per_file`: the most VRAM bytes one open file may
/// hold (`ALLOC` fails with `ENOSPC` beyond).
pub const DEFAULT_MAX_BYTES_PER_FILE: u64 = 64 << 30;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

/// `_IOC_NONE`: no argument.
pub const IOC_NONE: u32 = 0;
/// `_IOC_WRITE`: user space writes the argument (the kernel reads it).
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: user space reads the argument (the kernel writes it).
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`. A size that does not fit the 14-bit field gives 0, which no
/// command uses (all argument blocks are small; checked by the tests).
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    if size >= 1 << IOC_SIZEBITS {
        return 0;
    }
    (dir << IOC_DIRSHIFT)
        | (ty << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IOR(type, nr, T)`.
pub const fn ior<T>(ty: u32, nr: u32) -> u32 {
    ioc(IOC_READ, ty, nr, size_of::<T>())
}

/// `_IOW(type, nr, T)`.
pub const fn iow<T>(ty: u32, nr: u32) -> u32 {
    ioc(IOC_WRITE, ty, nr, size_of::<T>())
}

/// `_IOWR(type, nr, T)`.
pub const fn iowr<T>(ty: u32, nr: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size_of::<T>())
}

/// `_IOC_SIZE(cmd)`.
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)) as usize
}

/// `VERSION`: the ABI version (out).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionArgs {
    /// Out: [`ABI_VERSION_MAJOR`].
    pub major: u32,
    /// Out: [`ABI_VERSION_MINOR`].
    pub minor: u32,
}

/// `ALLOC`: allocates a VRAM buffer on a GPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocArgs {
    /// In: the GPU's `gpu_id` in the published topology.
    pub gpu_id: u32,
    /// In: no flag is defined; must be 0.
    pub flags: u32,
    /// In: size in bytes (1 ..= [`MAX_BUFFER_SIZE`]), rounded up to [`VRAM_PAGE`].
    pub size: u64,
    /// Out: the buffer's handle, valid in this open file only.
    pub handle: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Out: the buffer's offset in the GPU's VRAM BAR (never inside the descriptor page).
    pub vram_offset: u64,
    /// Out: the `mmap` offset of the buffer.
    pub mmap_offset: u64,
    /// Out: the rounded size.
    pub allocated_size: u64,
}

/// `FREE`: frees a buffer (its peer mappings and user mappings go with it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeArgs {
    /// In: the handle.
    pub handle: u32,
    /// Must be 0.
    pub reserved: u32,
}

/// How a peer reaches a buffer ([`MapPeerArgs::map_type`]).
pub const MAP_TYPE_BUS_ADDR: u32 = 1;
/// Through a whitelisted host bridge, with a DMA mapping of the BAR for the peer.
pub const MAP_TYPE_THRU_HOST_BRIDGE: u32 = 2;
/// The buffer's own GPU (no peer traffic).
pub const MAP_TYPE_LOCAL: u32 = 3;

/// `MAP_PEER`: makes a buffer accessible to a peer GPU (the buffer's owner exposes it through
/// its BAR). Mapping the same pair again returns the existing mapping.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapPeerArgs {
    /// In: the buffer.
    pub handle: u32,
    /// In: the accessing GPU's `gpu_id`.
    pub peer_gpu_id: u32,
    /// Out: the address the peer uses for the buffer's first byte.
    pub bus_address: u64,
    /// Out: `MAP_TYPE_*`.
    pub map_type: u32,
    /// Out, with `EXDEV`: the published denial's reason bits (`p2p_denials` `reasons`), or 0.
    pub denial_reasons: u32,
}

/// `UNMAP_PEER`: removes a peer mapping.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnmapPeerArgs {
    /// In: the buffer.
    pub handle: u32,
    /// In: the peer's `gpu_id`.
    pub peer_gpu_id: u32,
}

/// [`CopyArgs::flags`]: only the direct path (fails with `EXDEV`/`EACCES` otherwise).
pub const COPY_DIRECT: u32 = 1 << 0;
/// [`CopyArgs::flags`]: only the staged path (through system memory).
pub const COPY_STAGED: u32 = 1 << 1;
/// All defined copy flags; neither bit means "direct when possible, else staged".
pub const COPY_FLAGS: u32 = COPY_DIRECT | COPY_STAGED;

/// [`CopyArgs::path`]: BAR to BAR.
pub const PATH_DIRECT: u32 = 1;
/// [`CopyArgs::path`]: through a system-memory bounce buffer.
pub const PATH_STAGED: u32 = 2;

/// `COPY`: copies `size` bytes between two buffers of this file.
///
/// The direct path is the source GPU writing into the destination's BAR: the destination must
/// be on the same GPU, or mapped for the source GPU with `MAP_PEER`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyArgs {
    /// In: source buffer.
    pub src_handle: u32,
    /// In: destination buffer.
    pub dst_handle: u32,
    /// In: offset in the source buffer.
    pub src_offset: u64,
    /// In: offset in the destination buffer.
    pub dst_offset: u64,
    /// In: bytes to copy (0 is allowed and copies nothing).
    pub size: u64,
    /// In: `COPY_*` flags.
    pub flags: u32,
    /// Out: `PATH_*`.
    pub path: u32,
    /// Out: time spent copying in the kernel, in nanoseconds.
    pub nanoseconds: u64,
}

/// [`CopySubmitArgs::eventfd`]: no eventfd is signalled when the copy ends.
pub const NO_EVENTFD: i32 = -1;

/// Default of the module parameter `max_async_copies_per_file`: the most asynchronous copies
/// one open file may have submitted and not yet reaped with `COPY_WAIT` (`COPY_SUBMIT` fails
/// with `EBUSY` beyond).
pub const DEFAULT_MAX_ASYNC_COPIES_PER_FILE: u32 = 64;

/// `COPY_SUBMIT`: starts a copy between two buffers of this file and returns at once.
///
/// The copy is checked as `COPY` checks it (same errors, returned by `COPY_SUBMIT` itself);
/// once submitted it runs on the copy engines while the caller goes on. Its end is reported
/// by `COPY_WAIT` with the returned ticket and, when `eventfd` is an eventfd, by adding 1 to
/// that eventfd's counter (so it can be `poll`ed with the caller's other files).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopySubmitArgs {
    /// In: source buffer.
    pub src_handle: u32,
    /// In: destination buffer.
    pub dst_handle: u32,
    /// In: offset in the source buffer.
    pub src_offset: u64,
    /// In: offset in the destination buffer.
    pub dst_offset: u64,
    /// In: bytes to copy (0 is allowed and copies nothing).
    pub size: u64,
    /// In: `COPY_*` flags.
    pub flags: u32,
    /// In: an eventfd file descriptor of the caller signalled when the copy ends, or
    /// [`NO_EVENTFD`].
    pub eventfd: i32,
    /// Out: the copy's ticket in this open file (never 0, never reused by the file).
    pub ticket: u64,
}

impl CopySubmitArgs {
    /// The same copy as a `COPY` argument block (what `COPY_SUBMIT` checks and runs).
    pub fn copy_args(&self) -> CopyArgs {
        CopyArgs {
            src_handle: self.src_handle,
            dst_handle: self.dst_handle,
            src_offset: self.src_offset,
            dst_offset: self.dst_offset,
            size: self.size,
            flags: self.flags,
            ..CopyArgs::default()
        }
    }
}

/// [`CopyWaitArgs::timeout_ns`]: wait until the copy ends, however long.
pub const WAIT_FOREVER: u64 = u64::MAX;

/// `COPY_WAIT`: waits for an asynchronous copy to end and reaps it.
///
/// Returns 0 once the copy has ended, with its outcome in `status`; the ticket is then
/// forgotten (`ENOENT` afterwards). Returns `EAGAIN` when the copy is still running after
/// `timeout_ns` (0 only polls) and `EINTR` when a signal interrupts the wait; the ticket stays
/// valid in both cases.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyWaitArgs {
    /// In: the ticket `COPY_SUBMIT` returned.
    pub ticket: u64,
    /// In: the longest wait in nanoseconds ([`WAIT_FOREVER`]: no limit; 0: do not wait).
    pub timeout_ns: u64,
    /// Out: 0 when every byte was copied, else the positive errno that ended the copy: an
    /// error `COPY` would have returned, `ENODEV` when a GPU of the copy was unbound while it
    /// ran, or `ECANCELED` when it was cancelled (see [`COPY_STATUS_CANCELED`]).
    pub status: u32,
    /// Out: `PATH_*` (the path the copy took; set even when it failed part way).
    pub path: u32,
    /// Out: time from the start of the copy on an engine to its end, in nanoseconds.
    pub nanoseconds: u64,
}

/// [`CopyWaitArgs::status`] of a copy cancelled before its end: the file that submitted it was
/// closed (nobody can reap it, but its eventfd is still signalled) or the module is unloading.
pub const COPY_STATUS_CANCELED: u32 = 125; // ECANCELED

/// Peers listed by `INFO`.
pub const INFO_MAX_PEERS: usize = 8;

/// `INFO`: describes a buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoArgs {
    /// In: the buffer.
    pub handle: u32,
    /// Out: its GPU's `gpu_id`.
    pub gpu_id: u32,
    /// Out: its size.
    pub size: u64,
    /// Out: its offset in the VRAM BAR.
    pub vram_offset: u64,
    /// Out: its `mmap` offset.
    pub mmap_offset: u64,
    /// Out: the CPU physical address of its first byte (BAR start + offset).
    pub phys_address: u64,
    /// Out: number of peer mappings (may exceed [`INFO_MAX_PEERS`]).
    pub peer_count: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Out: the first peer mappings' `gpu_id`s.
    pub peer_gpu_ids: [u32; INFO_MAX_PEERS],
    /// Out: their bus addresses.
    pub peer_bus_addresses: [u64; INFO_MAX_PEERS],
}

/// The commands.
pub mod cmd {
    use super::*;

    /// Reads [`VersionArgs`].
    pub const VERSION: u32 = ior::<VersionArgs>(IOCTL_TYPE, 0x40);
    /// [`AllocArgs`].
    pub const ALLOC: u32 = iowr::<AllocArgs>(IOCTL_TYPE, 0x41);
    /// [`FreeArgs`].
    pub const FREE: u32 = iow::<FreeArgs>(IOCTL_TYPE, 0x42);
    /// [`MapPeerArgs`].
    pub const MAP_PEER: u32 = iowr::<MapPeerArgs>(IOCTL_TYPE, 0x43);
    /// [`UnmapPeerArgs`].
    pub const UNMAP_PEER: u32 = iow::<UnmapPeerArgs>(IOCTL_TYPE, 0x44);
    /// [`CopyArgs`].
    pub const COPY: u32 = iowr::<CopyArgs>(IOCTL_TYPE, 0x45);
    /// [`InfoArgs`].
    pub const INFO: u32 = iowr::<InfoArgs>(IOCTL_TYPE, 0x46);
    /// [`CopySubmitArgs`] (ABI 1.2).
    pub const COPY_SUBMIT: u32 = iowr::<CopySubmitArgs>(IOCTL_TYPE, 0x47);
    /// [`CopyWaitArgs`] (ABI 1.2).
    pub const COPY_WAIT: u32 = iowr::<CopyWaitArgs>(IOCTL_TYPE, 0x48);
    /// Every command.
    pub const ALL: [u32; 9] = [
        VERSION,
        ALLOC,
        FREE,
        MAP_PEER,
        UNMAP_PEER,
        COPY,
        INFO,
        COPY_SUBMIT,
        COPY_WAIT,
    ];
}

/// The errors of this ABI, with their (x86-64 / asm-generic) errno values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiError {
    /// `ENOENT`: no buffer with this handle in this open file (never allocated, already freed,
    /// or another file's).
    UnknownHandle,
    /// `ENODEV`: no bound GPU with this `gpu_id` (or it was unbound).
    UnknownGpu,
    /// `EINVAL`: a reserved field or flag is set, or a size is 0.
    InvalidArgument,
    /// `EOVERFLOW`: an offset plus a length (or a rounded size) overflows 64 bits.
    Overflow,
    /// `ERANGE`: an offset or length lies outside the buffer.
    OutOfRange,
    /// `ENOSPC`: no free VRAM range of this size on the GPU, or the open file's limits
    /// (`max_buffers_per_file`, `max_bytes_per_file`) would be exceeded.
    NoVram,
    /// `EXDEV`: the published topology has no p2p link from the accessor to the owner.
    NoPeerLink,
    /// `EACCES`: a direct copy into a buffer not mapped for the source GPU.
    NotMappedForPeer,
    /// `ENOTTY`: not a command of this device (or the wrong argument size).
    UnknownCommand,
    /// `EFAULT`: the argument pointer is not readable/writable.
    BadAddress,
    /// `ENOMEM`: the kernel is out of memory.
    OutOfMemory,
    /// `EAGAIN`: `COPY_WAIT`: the copy has not ended yet (the ticket stays valid).
    NotEnded,
    /// `EBUSY`: `COPY_SUBMIT`: the file already has `max_async_copies_per_file` copies
    /// submitted and not reaped.
    TooManyCopies,
    /// `EBADF`: `COPY_SUBMIT`: `eventfd` is neither [`NO_EVENTFD`] nor an open file descriptor
    /// (an open file that is not an eventfd gives `EINVAL`).
    BadFileDescriptor,
    /// `EINTR`: a signal interrupted the call (for `COPY_WAIT`, the ticket stays valid).
    Interrupted,
}

impl AbiError {
    /// Every error.
    pub const ALL: [AbiError; 15] = [
        AbiError::UnknownHandle,
        AbiError::UnknownGpu,
        AbiError::InvalidArgument,
        AbiError::Overflow,
        AbiError::OutOfRange,
        AbiError::NoVram,
        AbiError::NoPeerLink,
        AbiError::NotMappedForPeer,
        AbiError::UnknownCommand,
        AbiError::BadAddress,
        AbiError::OutOfMemory,
        AbiError::NotEnded,
        AbiError::TooManyCopies,
        AbiError::BadFileDescriptor,
        AbiError::Interrupted,
    ];

    /// The positive errno value.
    pub const fn errno(self) -> i32 {
        match self {
            AbiError::UnknownHandle => 2,     // ENOENT
            AbiError::UnknownGpu => 19,       // ENODEV
            AbiError::InvalidArgument => 22,  // EINVAL
            AbiError::Overflow => 75,         // EOVERFLOW
            AbiError::OutOfRange => 34,       // ERANGE
            AbiError::NoVram => 28,           // ENOSPC
            AbiError::NoPeerLink => 18,       // EXDEV
            AbiError::NotMappedForPeer => 13, // EACCES
            AbiError::UnknownCommand => 25,   // ENOTTY
            AbiError::BadAddress => 14,       // EFAULT
            AbiError::OutOfMemory => 12,      // ENOMEM
            AbiError::NotEnded => 11,         // EAGAIN
            AbiError::TooManyCopies => 16,    // EBUSY
            AbiError::BadFileDescriptor => 9, // EBADF
            AbiError::Interrupted => 4,       // EINTR
        }
    }

    /// The errno's symbolic name.
    pub const fn name(self) -> &'static str {
        match self {
            AbiError::UnknownHandle => "ENOENT",
            AbiError::UnknownGpu => "ENODEV",
            AbiError::InvalidArgument => "EINVAL",
            AbiError::Overflow => "EOVERFLOW",
            AbiError::OutOfRange => "ERANGE",
            AbiError::NoVram => "ENOSPC",
            AbiError::NoPeerLink => "EXDEV",
            AbiError::NotMappedForPeer => "EACCES",
            AbiError::UnknownCommand => "ENOTTY",
            AbiError::BadAddress => "EFAULT",
            AbiError::OutOfMemory => "ENOMEM",
            AbiError::NotEnded => "EAGAIN",
            AbiError::TooManyCopies => "EBUSY",
            AbiError::BadFileDescriptor => "EBADF",
            AbiError::Interrupted => "EINTR",
        }
    }

    /// What it means in this ABI.
    pub const fn meaning(self) -> &'static str {
        match self {
            AbiError::UnknownHandle => "no such buffer in this open file",
            AbiError::UnknownGpu => "no bound GPU with this gpu_id",
            AbiError::InvalidArgument => "reserved field or unknown flag set, or size 0",
            AbiError::Overflow => "offset + length overflows",
            AbiError::OutOfRange => "offset or length outside the buffer",
            AbiError::NoVram => "no free VRAM range of this size, or the file's limit reached",
            AbiError::NoPeerLink => "no p2p link between the GPUs in the published topology",
            AbiError::NotMappedForPeer => "destination not mapped for the source GPU",
            AbiError::UnknownCommand => "unknown ioctl",
            AbiError::BadAddress => "bad argument pointer",
            AbiError::OutOfMemory => "kernel out of memory",
            AbiError::NotEnded => "the asynchronous copy has not ended yet",
            AbiError::TooManyCopies => "too many asynchronous copies submitted and not reaped",
            AbiError::BadFileDescriptor => "eventfd is not an open file descriptor",
            AbiError::Interrupted => "interrupted by a signal",
        }
    }

    /// The error with this positive errno value.
    pub fn from_errno(errno: i32) -> Option<AbiError> {
        AbiError::ALL.into_iter().find(|e| e.errno() == errno)
    }
}

/// Whether `[offset, offset + len)` lies inside a buffer of `size` bytes.
pub fn check_range(offset: u64, len: u64, size: u64) -> Result<(), AbiError> {
    let end = offset.checked_add(len).ok_or(AbiError::Overflow)?;
    if end > size {
        return Err(AbiError::OutOfRange);
    }
    Ok(())
}

/// `size` rounded up to [`VRAM_PAGE`], checked against [`MAX_BUFFER_SIZE`].
pub fn buffer_size(size: u64) -> Result<u64, AbiError> {
    if size == 0 {
        return Err(AbiError::InvalidArgument);
    }
    let rounded = size.checked_add(VRAM_PAGE - 1).ok_or(AbiError::Overflow)? & !(VRAM_PAGE - 1);
    if rounded > MAX_BUFFER_SIZE {
        return Err(AbiError::NoVram);
    }
    Ok(rounded)
}

/// The `mmap` offset of buffer `handle`.
pub const fn mmap_offset(handle: u32) -> u64 {
    (handle as u64) << MMAP_HANDLE_SHIFT
}

/// The handle and in-buffer offset named by an `mmap` offset.
pub const fn split_mmap_offset(offset: u64) -> (u32, u64) {
    (
        (offset >> MMAP_HANDLE_SHIFT) as u32,
        offset & (MAX_BUFFER_SIZE - 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioc_matches_the_kernel_encoding() {
        // Values from include/uapi/asm-generic/ioctl.h: _IOR('H', 0x40, 8 bytes) etc.
        // The documented numbers (docs/peer-transfers.md): changing one breaks user space.
        assert_eq!(cmd::VERSION, 0x8008_4840);
        assert_eq!(cmd::ALLOC, 0xc030_4841);
        assert_eq!(cmd::FREE, 0x4008_4842);
        assert_eq!(cmd::MAP_PEER, 0xc018_4843);
        assert_eq!(cmd::UNMAP_PEER, 0x4008_4844);
        assert_eq!(cmd::COPY, 0xc030_4845);
        assert_eq!(cmd::INFO, 0xc090_4846);
        assert_eq!(cmd::COPY_SUBMIT, 0xc030_4847);
        assert_eq!(cmd::COPY_WAIT, 0xc020_4848);
        assert_eq!(ioc_size(cmd::ALLOC), size_of::<AllocArgs>());
        assert_eq!(ioc_size(cmd::INFO), size_of::<InfoArgs>());
        assert_eq!(ioc(IOC_NONE, 1, 2, 1 << 14), 0);
    }

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<VersionArgs>(), 8);
        assert_eq!(size_of::<AllocArgs>(), 48);
        assert_eq!(size_of::<FreeArgs>(), 8);
        assert_eq!(size_of::<MapPeerArgs>(), 24);
        assert_eq!(size_of::<UnmapPeerArgs>(), 8);
        assert_eq!(size_of::<CopyArgs>(), 48);
        assert_eq!(size_of::<InfoArgs>(), 48 + 4 * 8 + 8 * 8);
        assert_eq!(size_of::<CopySubmitArgs>(), 48);
        assert_eq!(size_of::<CopyWaitArgs>(), 32);
    }

    #[test]
    fn commands_are_distinct() {
        let all = cmd::ALL;
        for (i, a) in all.iter().enumerate() {
            assert_ne!(*a, 0);
            assert!(all[i + 1..].iter().all(|b| a != b));
        }
    }

    #[test]
    fn ranges_are_overflow_checked() {
        assert_eq!(check_range(0, 4096, 4096), Ok(()));
        assert_eq!(check_range(4096, 0, 4096), Ok(()));
        assert_eq!(check_range(1, 4096, 4096), Err(AbiError::OutOfRange));
        assert_eq!(check_range(u64::MAX, 2, 4096), Err(AbiError::Overflow));
        assert_eq!(buffer_size(0), Err(AbiError::InvalidArgument));
        assert_eq!(buffer_size(1), Ok(4096));
        assert_eq!(buffer_size(u64::MAX), Err(AbiError::Overflow));
        assert_eq!(buffer_size(MAX_BUFFER_SIZE + 1), Err(AbiError::NoVram));
    }

    #[test]
    fn errnos_round_trip() {
        for error in AbiError::ALL {
            assert_eq!(AbiError::from_errno(error.errno()), Some(error));
        }
        assert_eq!(AbiError::from_errno(1), None);
    }

    #[test]
    fn mmap_offsets_name_the_handle() {
        assert_eq!(split_mmap_offset(mmap_offset(7) + 8192), (7, 8192));
    }
}
