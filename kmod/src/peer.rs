// SPDX-License-Identifier: GPL-2.0

//! `/dev/hsa_p2p`: VRAM buffers on the bound GPUs, peer mappings and copies between them.
//!
//! The ioctl ABI (argument blocks, command numbers, error meanings) is the shared core's
//! [`crate::abi`]. Buffers belong to the open file: handles are looked up in the file's own
//! table only, and closing the file frees whatever it still holds. Every offset and length from
//! user space is checked with [`crate::abi::check_range`] (overflow first, then bounds) before
//! any I/O pointer is formed.

use core::ptr::NonNull;

use kernel::alloc::{flags::GFP_KERNEL, KVVec, KVec};
use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::{c_int, c_void};
use kernel::fs::File;
use kernel::miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration};
use kernel::mm::virt::{flags as vm_flags, VmaNew};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{Arc, Mutex};
use kernel::time::{Instant, Monotonic};
use kernel::transmute::{AsBytes, FromBytes};
use kernel::types::Opaque;
use kernel::uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter};

use crate::abi::{
    self, cmd, AbiError, AllocArgs, CopyArgs, FreeArgs, InfoArgs, MapPeerArgs, UnmapPeerArgs,
    VersionArgs,
};
use crate::gpu::VRAM_BAR;
use crate::registry::{PeerAccess, REGISTRY};
use crate::shim::{
    hsa_p2p_copy_io, hsa_p2p_map_peer, hsa_p2p_mmap_phys, hsa_p2p_unmap_peer,
    hsa_p2p_zap_file_range, raw_pci_dev,
};
use crate::vram::Vram;

/// The largest piece copied while the BAR mappings are held (an RCU read-side section).
const COPY_CHUNK: u64 = 1 << 20;

// `mmap` offsets and buffer sizes are counted in ABI pages, the kernel maps CPU pages.
const _: () = assert!(abi::VRAM_PAGE == kernel::page::PAGE_SIZE as u64);

macro_rules! plain_old_data {
    ($($ty:ty),* $(,)?) => {$(
        // SAFETY: the type is `#[repr(C)]` and made of integers only, with explicit padding
        // fields (the core's tests check the size): every bit pattern is a valid value.
        unsafe impl FromBytes for $ty {}
        // SAFETY: as above, the type has no padding bytes, so all its bytes are initialised.
        unsafe impl AsBytes for $ty {}
    )*};
}

plain_old_data!(
    VersionArgs,
    AllocArgs,
    FreeArgs,
    MapPeerArgs,
    UnmapPeerArgs,
    CopyArgs,
    InfoArgs,
);

/// The kernel error for an ABI error (the core's table holds the errno values).
fn abi_error(error: AbiError) -> Error {
    Error::from_errno(-error.errno())
}

/// Handles are unique across all open files, so a file never holds a handle another file could
/// also hold, and a buffer's `mmap` offset (derived from its handle) names it alone.
static NEXT_HANDLE: Atomic<u32> = Atomic::new(1);

/// A buffer's mapping for a peer GPU.
struct PeerMapping {
    accessor: Arc<Vram>,
    gpu_id: u32,
    map_type: c_int,
    address: u64,
    size: u64,
}

impl Drop for PeerMapping {
    fn drop(&mut self) {
        // SAFETY: the accessor's device is kept alive by `accessor`; `address` and `size` are
        // those `hsa_p2p_map_peer` returned for it.
        unsafe {
            hsa_p2p_unmap_peer(
                raw_pci_dev(self.accessor.pdev()),
                self.map_type,
                self.address,
                self.size,
            )
        };
    }
}

/// A VRAM buffer.
///
/// # Invariants
///
/// `[offset, offset + size)` was reserved with `vram.allocate` and lies inside the BAR; it is
/// released on drop, after the peer mappings are gone.
struct Buffer {
    handle: u32,
    vram: Arc<Vram>,
    offset: u64,
    size: u64,
    peers: KVec<PeerMapping>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.peers.clear();
        self.vram.release(self.offset);
    }
}

/// What one open file of `/dev/hsa_p2p` holds.
#[pin_data]
pub(crate) struct OpenFile {
    #[pin]
    buffers: Mutex<KVec<Buffer>>,
}

fn find(buffers: &[Buffer], handle: u32) -> Result<usize> {
    buffers
        .iter()
        .position(|buffer| buffer.handle == handle)
        .ok_or_else(|| abi_error(AbiError::UnknownHandle))
}

/// The `gpu_id` of `vram`'s GPU, or `ENODEV` once it is unbound.
fn gpu_id_of(vram: &Vram) -> Result<u32> {
    REGISTRY
        .lock()
        .gpu_id(vram)
        .ok_or_else(|| abi_error(AbiError::UnknownGpu))
}

/// Copies `len` bytes between two BARs, directly (`bounce` is `None`) or through `bounce`.
fn copy(
    src: &Vram,
    src_offset: u64,
    dst: &Vram,
    dst_offset: u64,
    len: u64,
    mut bounce: Option<&mut KVVec<u8>>,
) -> Result {
    let mut done = 0;
    while done < len {
        let chunk = (len - done).min(COPY_CHUNK);
        let from = src_offset.checked_add(done).ok_or(EOVERFLOW)?;
        let to = dst_offset.checked_add(done).ok_or(EOVERFLOW)?;
        let in_bar =
            |offset: u64, bar_len: u64| offset.checked_add(chunk).is_some_and(|end| end <= bar_len);
        match bounce.as_deref_mut() {
            None => src.with_mapping(|src_base, src_len| {
                dst.with_mapping(|dst_base, dst_len| {
                    if !in_bar(from, src_len) || !in_bar(to, dst_len) {
                        return Err(ERANGE);
                    }
                    // SAFETY: both ranges lie inside their live BAR mappings (checked just
                    // above, the mappings held by `with_mapping`); I/O memory has no Rust
                    // aliasing rules, so overlapping ranges only give unspecified content.
                    unsafe {
                        hsa_p2p_copy_io(
                            at(dst_base, to).cast(),
                            at(src_base, from).cast(),
                            chunk as usize,
                        )
                    };
                    Ok(())
                })?
            })??,
            Some(bounce) => {
                if bounce.len() < chunk as usize {
                    return Err(EINVAL);
                }
                let staging = bounce.as_mut_ptr();
                src.with_mapping(|base, bar_len| {
                    if !in_bar(from, bar_len) {
                        return Err(ERANGE);
                    }
                    // SAFETY: the source range lies inside the live BAR mapping and the bounce
                    // buffer holds at least `chunk` bytes (both checked above).
                    unsafe {
                        bindings::memcpy_fromio(
                            staging.cast(),
                            at(base, from).cast(),
                            chunk as usize,
                        )
                    };
                    Ok(())
                })??;
                dst.with_mapping(|base, bar_len| {
                    if !in_bar(to, bar_len) {
                        return Err(ERANGE);
                    }
                    // SAFETY: as above, for the destination.
                    unsafe {
                        bindings::memcpy_toio(
                            at(base, to).cast(),
                            staging.cast_const().cast(),
                            chunk as usize,
                        )
                    };
                    Ok(())
                })??;
            }
        }
        done += chunk;
    }
    Ok(())
}

/// `base + offset` for an offset already checked to lie inside the mapping.
fn at(base: *mut u8, offset: u64) -> *mut u8 {
    base.wrapping_add(offset as usize)
}

impl OpenFile {
    fn version(&self) -> VersionArgs {
        VersionArgs {
            major: abi::ABI_VERSION_MAJOR,
            minor: abi::ABI_VERSION_MINOR,
        }
    }

    fn alloc(&self, args: &mut AllocArgs) -> Result {
        if args.flags != 0 || args.reserved != 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        let size = abi::buffer_size(args.size).map_err(abi_error)?;
        let vram = REGISTRY
            .lock()
            .vram(args.gpu_id)
            .ok_or_else(|| abi_error(AbiError::UnknownGpu))?;
        let mut buffers = self.buffers.lock();
        buffers.reserve(1, GFP_KERNEL)?;
        let mut handle = NEXT_HANDLE.fetch_add(1, Relaxed);
        while handle == 0 || buffers.iter().any(|b| b.handle == handle) {
            handle = NEXT_HANDLE.fetch_add(1, Relaxed);
        }
        let offset = vram.allocate(size)?;
        // INVARIANT: the range was just reserved on `vram`.
        let buffer = Buffer {
            handle,
            vram,
            offset,
            size,
            peers: KVec::new(),
        };
        buffers.push_within_capacity(buffer).map_err(|_| ENOMEM)?;
        *args = AllocArgs {
            handle,
            vram_offset: offset,
            mmap_offset: abi::mmap_offset(handle),
            allocated_size: size,
            ..*args
        };
        Ok(())
    }

    fn free(&self, file: &File, args: &FreeArgs) -> Result {
        if args.reserved != 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        let mut buffers = self.buffers.lock();
        let index = find(&buffers, args.handle)?;
        let buffer = buffers.remove(index)?;
        // SAFETY: `file` is this device's open file for the duration of the call.
        unsafe {
            hsa_p2p_zap_file_range(
                file.as_ptr().cast(),
                abi::mmap_offset(buffer.handle),
                buffer.size,
            )
        };
        drop(buffer);
        Ok(())
    }

    fn map_peer(&self, args: &mut MapPeerArgs) -> Result {
        args.bus_address = 0;
        args.map_type = 0;
        args.denial_reasons = 0;
        let mut buffers = self.buffers.lock();
        let index = find(&buffers, args.handle)?;
        let buffer = &mut buffers[index];
        let (accessor, access) = {
            let registry = REGISTRY.lock();
            let owner = registry
                .gpu_id(&buffer.vram)
                .ok_or_else(|| abi_error(AbiError::UnknownGpu))?;
            let accessor = registry
                .vram(args.peer_gpu_id)
                .ok_or_else(|| abi_error(AbiError::UnknownGpu))?;
            (accessor, registry.peer_access(args.peer_gpu_id, owner))
        };
        match access {
            PeerAccess::Local => {
                args.bus_address = buffer.vram.phys(buffer.offset);
                args.map_type = abi::MAP_TYPE_LOCAL;
                return Ok(());
            }
            PeerAccess::Denied(reasons) => {
                args.denial_reasons = reasons;
                return Err(abi_error(AbiError::NoPeerLink));
            }
            PeerAccess::Linked => {}
        }
        if let Some(mapping) = buffer.peers.iter().find(|m| m.gpu_id == args.peer_gpu_id) {
            args.bus_address = mapping.address;
            args.map_type = mapping.map_type as u32;
            return Ok(());
        }
        buffer.peers.reserve(1, GFP_KERNEL)?;
        let mut address = 0u64;
        // SAFETY: both devices are kept alive by their `Vram`s; `[offset, offset + size)` lies
        // inside the owner's BAR (type invariant of `Buffer`); `address` is writable.
        let map_type = unsafe {
            hsa_p2p_map_peer(
                raw_pci_dev(buffer.vram.pdev()),
                raw_pci_dev(accessor.pdev()),
                VRAM_BAR as c_int,
                buffer.offset,
                buffer.size,
                &mut address,
            )
        };
        to_result(map_type)?;
        let mapping = PeerMapping {
            accessor,
            gpu_id: args.peer_gpu_id,
            map_type,
            address,
            size: buffer.size,
        };
        buffer
            .peers
            .push_within_capacity(mapping)
            .map_err(|_| ENOMEM)?;
        args.bus_address = address;
        args.map_type = map_type as u32;
        Ok(())
    }

    fn unmap_peer(&self, args: &UnmapPeerArgs) -> Result {
        let mut buffers = self.buffers.lock();
        let index = find(&buffers, args.handle)?;
        let peers = &mut buffers[index].peers;
        let position = peers
            .iter()
            .position(|m| m.gpu_id == args.peer_gpu_id)
            .ok_or_else(|| abi_error(AbiError::NotMappedForPeer))?;
        drop(peers.remove(position)?);
        Ok(())
    }

    fn copy(&self, args: &mut CopyArgs) -> Result {
        if args.flags & !abi::COPY_FLAGS != 0 || args.flags == abi::COPY_FLAGS {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        args.path = 0;
        args.nanoseconds = 0;
        let buffers = self.buffers.lock();
        let src = &buffers[find(&buffers, args.src_handle)?];
        let dst = &buffers[find(&buffers, args.dst_handle)?];
        abi::check_range(args.src_offset, args.size, src.size).map_err(abi_error)?;
        abi::check_range(args.dst_offset, args.size, dst.size).map_err(abi_error)?;
        // The direct path: the source GPU writes into the destination's BAR.
        let direct = if Arc::ptr_eq(&src.vram, &dst.vram) {
            Ok(())
        } else {
            let (src_gpu, dst_gpu) = (gpu_id_of(&src.vram)?, gpu_id_of(&dst.vram)?);
            match REGISTRY.lock().peer_access(src_gpu, dst_gpu) {
                PeerAccess::Denied(_) => Err(abi_error(AbiError::NoPeerLink)),
                _ if !dst.peers.iter().any(|m| m.gpu_id == src_gpu) => {
                    Err(abi_error(AbiError::NotMappedForPeer))
                }
                _ => Ok(()),
            }
        };
        let staged = match args.flags {
            abi::COPY_DIRECT => {
                direct?;
                false
            }
            abi::COPY_STAGED => true,
            _ => direct.is_err(),
        };
        let mut bounce = KVVec::new();
        if staged {
            bounce.resize(args.size.min(COPY_CHUNK) as usize, 0, GFP_KERNEL)?;
        }
        // Offsets inside the BARs: the buffers lie inside them (`Buffer` invariant) and the
        // ranges inside the buffers (checked above), so these sums do not overflow.
        let (from, to) = (src.offset + args.src_offset, dst.offset + args.dst_offset);
        let started = Instant::<Monotonic>::now();
        copy(
            &src.vram,
            from,
            &dst.vram,
            to,
            args.size,
            staged.then_some(&mut bounce),
        )?;
        args.nanoseconds = u64::try_from(started.elapsed().as_nanos()).unwrap_or(0);
        args.path = if staged {
            abi::PATH_STAGED
        } else {
            abi::PATH_DIRECT
        };
        Ok(())
    }

    fn info(&self, args: &mut InfoArgs) -> Result {
        if args.reserved != 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        let buffers = self.buffers.lock();
        let buffer = &buffers[find(&buffers, args.handle)?];
        let mut info = InfoArgs {
            handle: args.handle,
            gpu_id: gpu_id_of(&buffer.vram)?,
            size: buffer.size,
            vram_offset: buffer.offset,
            mmap_offset: abi::mmap_offset(buffer.handle),
            phys_address: buffer.vram.phys(buffer.offset),
            peer_count: buffer.peers.len() as u32,
            ..InfoArgs::default()
        };
        for (index, mapping) in buffer.peers.iter().take(abi::INFO_MAX_PEERS).enumerate() {
            info.peer_gpu_ids[index] = mapping.gpu_id;
            info.peer_bus_addresses[index] = mapping.address;
        }
        *args = info;
        Ok(())
    }
}

/// Reads an argument block, runs `op` on it and writes it back, also when `op` fails (so that
/// an error can carry details, such as `MAP_PEER`'s denial reasons).
fn in_out<T: FromBytes + AsBytes>(
    user: UserSlice,
    op: impl FnOnce(&mut T) -> Result,
) -> Result<isize> {
    let (mut reader, mut writer): (UserSliceReader, UserSliceWriter) = user.reader_writer();
    let mut args: T = reader.read()?;
    let result = op(&mut args);
    writer.write(&args)?;
    result.map(|()| 0)
}

fn input<T: FromBytes>(user: UserSlice, op: impl FnOnce(&T) -> Result) -> Result<isize> {
    let args: T = user.reader().read()?;
    op(&args).map(|()| 0)
}

#[vtable]
impl MiscDevice for OpenFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(Self {
                buffers <- kernel::new_mutex!(KVec::new()),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(me: Pin<&OpenFile>, file: &File, command: u32, arg: usize) -> Result<isize> {
        let user = UserSlice::new(UserPtr::from_addr(arg), abi::ioc_size(command));
        match command {
            cmd::VERSION => {
                user.writer().write(&me.version())?;
                Ok(0)
            }
            cmd::ALLOC => in_out(user, |args| me.alloc(args)),
            cmd::FREE => input(user, |args| me.free(file, args)),
            cmd::MAP_PEER => in_out(user, |args| me.map_peer(args)),
            cmd::UNMAP_PEER => input(user, |args| me.unmap_peer(args)),
            cmd::COPY => in_out(user, |args| me.copy(args)),
            cmd::INFO => in_out(user, |args| me.info(args)),
            _ => Err(abi_error(AbiError::UnknownCommand)),
        }
    }

    fn mmap(me: Pin<&OpenFile>, file: &File, vma: &VmaNew) -> Result {
        // Private (copy-on-write) mappings of I/O memory make no sense.
        if vma.flags() & vm_flags::SHARED == 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        // SAFETY: `vma` is being set up by this mmap call and stays valid during it.
        let page_offset = unsafe { (*vma.as_ptr()).vm_pgoff } as u64;
        let offset = page_offset
            .checked_mul(abi::VRAM_PAGE)
            .ok_or_else(|| abi_error(AbiError::Overflow))?;
        let (handle, start) = abi::split_mmap_offset(offset);
        let len = (vma.end() - vma.start()) as u64;
        let buffers = me.buffers.lock();
        let buffer = &buffers[find(&buffers, handle)?];
        abi::check_range(start, len, buffer.size).map_err(abi_error)?;
        vma.set_dontcopy();
        let file = NonNull::new(file.as_ptr().cast::<c_void>()).ok_or(EINVAL)?;
        let phys = buffer.vram.phys(buffer.offset + start);
        // Fails with ENODEV once the GPU is unbound.
        buffer
            .vram
            .map_to_user(buffer.offset, file, abi::mmap_offset(buffer.handle), || {
                // SAFETY: `vma` is being set up by this mmap call; the physical range
                // `[phys, phys + len)` lies inside the buffer (checked above), which lies in
                // the BAR.
                to_result(unsafe { hsa_p2p_mmap_phys(vma.as_ptr().cast::<c_void>(), phys) })
            })
    }
}

/// The registration of `/dev/hsa_p2p` with mode [`abi::DEVICE_MODE`].
///
/// 7.3's `MiscDeviceOptions` has no mode field and `MiscDeviceRegistration` sets none (the node
/// would be 0600). This registration builds the same `struct miscdevice` with
/// [`MiscDeviceOptions::into_raw`] (the same file operations) and only sets `mode` before
/// `misc_register`, so devtmpfs creates the node with it.
///
/// # Invariants
///
/// `inner` is a `struct miscdevice` registered with `misc_register` for the lifetime of this
/// value, deregistered exactly once on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct PeerDevice {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: `misc_deregister` may be called from any thread.
unsafe impl Send for PeerDevice {}
// SAFETY: `&PeerDevice` offers no operation.
unsafe impl Sync for PeerDevice {}

impl PeerDevice {
    /// Registers `/dev/hsa_p2p`.
    pub(crate) fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut raw = MiscDeviceOptions { name: c"hsa_p2p" }.into_raw::<OpenFile>();
                raw.mode = abi::DEVICE_MODE;
                // SAFETY: the initialiser may write to `slot`.
                unsafe { slot.write(raw) };
                // SAFETY: `slot` holds a valid `miscdevice` whose file operations are the Rust
                // miscdevice vtable of `OpenFile`, whose `open` casts the `miscdevice` pointer to
                // `MiscDeviceRegistration<OpenFile>`, a transparent wrapper of it. The memory is
                // pinned and deregistered in `drop` before it goes.
                // INVARIANT: on success `slot` holds a registered misc device.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for PeerDevice {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered, by the type invariant; deregistered only here.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}
