// SPDX-License-Identifier: GPL-2.0

//! `/dev/hsa_p2p`: VRAM buffers on the bound GPUs, peer mappings and copies between them.
//!
//! The ioctl ABI (argument blocks, command numbers, error meanings) is the shared core's
//! [`crate::abi`]. Buffers belong to the open file: handles are looked up in the file's own
//! table only, and closing the file frees whatever it still holds. Every offset and length from
//! user space is checked with [`crate::abi::check_range`] (overflow first, then bounds) before
//! any I/O pointer is formed. What keeps a buffer's VRAM from being seen after it is freed,
//! reused or unbound is [`crate::buffer`]'s; what one file may take is [`crate::limits`]'.
//!
//! Locks, outermost first: the registry, a GPU's allocator, a buffer; the file's table is
//! taken alone (an ioctl clones the buffers it needs out of it and drops it), so that a long
//! copy blocks neither `mmap` nor FREE of other buffers. Copies run in
//! [`crate::copy_engine`]; asynchronous ones are [`crate::async_copy`]'s.

use core::ptr::NonNull;

use kernel::alloc::kvec::InsertError;
use kernel::alloc::KVec;
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
    self, cmd, AbiError, AllocArgs, CopyArgs, CopySubmitArgs, CopyWaitArgs, FreeArgs, InfoArgs,
    MapPeerArgs, UnmapPeerArgs, VersionArgs,
};
use crate::async_copy::FileCopies;
use crate::buffer::{Buffer, PeerMapping};
use crate::copy_engine::{self, CopyPart, StopWhen};
use crate::eventfd::EventFd;
use crate::fault_points;
use crate::gpu::VRAM_BAR;
use crate::limits::{Usage, GFP_USER_TRIGGERED};
use crate::map_type::p2pdma_path;
use crate::registry::{PeerAccess, REGISTRY};
use crate::shim::{hsa_p2p_map_peer, raw_pci_dev};
use crate::user_mapping;
use crate::vram::Vram;

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
    CopySubmitArgs,
    CopyWaitArgs,
);

/// The kernel error for an ABI error (the core's table holds the errno values).
pub(crate) fn abi_error(error: AbiError) -> Error {
    Error::from_errno(-error.errno())
}

/// Handles come from one counter for all open files (skipping 0 and, after it wraps, handles
/// the file still holds), so a handle names one buffer of its file. Root can move it (the
/// `next_handle` fault point) to test the wrap.
pub(crate) static NEXT_HANDLE: Atomic<u32> = Atomic::new(1);

/// The buffers of one open file, sorted by handle, and what they add up to.
struct FileBuffers {
    buffers: KVec<Arc<Buffer>>,
    usage: Usage,
}

impl FileBuffers {
    /// Where `handle` is in the table, or where it would go.
    fn search(&self, handle: u32) -> core::result::Result<usize, usize> {
        self.buffers
            .binary_search_by_key(&handle, |buffer| buffer.handle)
    }

    fn get(&self, handle: u32) -> Result<Arc<Buffer>> {
        let index = self
            .search(handle)
            .map_err(|_| abi_error(AbiError::UnknownHandle))?;
        Ok(self.buffers[index].clone())
    }

    fn unused_handle(&self) -> u32 {
        loop {
            let handle = NEXT_HANDLE.fetch_add(1, Relaxed);
            if handle != 0 && self.search(handle).is_err() {
                return handle;
            }
        }
    }
}

impl Drop for FileBuffers {
    fn drop(&mut self) {
        // The file is being released: its buffers end now (their VMAs are gone, since each
        // holds the file open).
        for buffer in self.buffers.iter() {
            buffer.vram.free(buffer);
        }
    }
}

/// What one open file of `/dev/hsa_p2p` holds.
#[pin_data]
pub(crate) struct OpenFile {
    /// Dropped first (fields drop in order): the file's asynchronous copies are cancelled and
    /// have ended before its buffers are freed, so they end `ECANCELED`, not `ENODEV`.
    #[pin]
    copies: FileCopies,
    #[pin]
    buffers: Mutex<FileBuffers>,
}

/// The `gpu_id` of `vram`'s GPU, or `ENODEV` once it is unbound.
fn gpu_id_of(vram: &Vram) -> Result<u32> {
    REGISTRY
        .lock()
        .gpu_id(vram)
        .ok_or_else(|| abi_error(AbiError::UnknownGpu))
}

impl OpenFile {
    fn version(&self) -> VersionArgs {
        VersionArgs {
            major: abi::ABI_VERSION_MAJOR,
            minor: abi::ABI_VERSION_MINOR,
        }
    }

    /// The buffer `handle` of this file.
    fn buffer(&self, handle: u32) -> Result<Arc<Buffer>> {
        self.buffers.lock().get(handle)
    }

    fn alloc(&self, file: &File, args: &mut AllocArgs) -> Result {
        if args.flags != 0 || args.reserved != 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        let size = abi::buffer_size(args.size).map_err(abi_error)?;
        let vram = REGISTRY
            .lock()
            .vram(args.gpu_id)
            .ok_or_else(|| abi_error(AbiError::UnknownGpu))?;
        let file = NonNull::new(file.as_ptr().cast::<c_void>()).ok_or(EINVAL)?;
        let handle = {
            let mut table = self.buffers.lock();
            table.usage.check_room_for(size)?;
            // Counted now, so that concurrent ALLOCs of this file stay within the limits while
            // the VRAM is zeroed without the table's lock.
            table.usage.buffers += 1;
            table.usage.bytes += size;
            table.unused_handle()
        };
        let mut table = None;
        let inserted = Vram::allocate(&vram, size, handle, file).and_then(|buffer| {
            let table = table.insert(self.buffers.lock());
            if let Err(error) = table.buffers.reserve(1, GFP_USER_TRIGGERED) {
                buffer.vram.free(&buffer);
                return Err(error.into());
            }
            // The handle was unused when chosen and only this call inserts it; the capacity
            // was just reserved.
            let index = table.search(handle).unwrap_or_else(|index| index);
            let offset = buffer.offset;
            if let Err(error) = table.buffers.insert_within_capacity(index, buffer) {
                let (InsertError::IndexOutOfBounds(buffer) | InsertError::OutOfCapacity(buffer)) =
                    error;
                buffer.vram.free(&buffer);
                return Err(ENOMEM);
            }
            Ok(offset)
        });
        let mut table = table.unwrap_or_else(|| self.buffers.lock());
        match inserted {
            Ok(vram_offset) => {
                *args = AllocArgs {
                    handle,
                    vram_offset,
                    mmap_offset: abi::mmap_offset(handle),
                    allocated_size: size,
                    ..*args
                };
                Ok(())
            }
            Err(error) => {
                table.usage.buffers -= 1;
                table.usage.bytes -= size;
                Err(error)
            }
        }
    }

    fn free(&self, args: &FreeArgs) -> Result {
        if args.reserved != 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        let buffer = {
            let mut table = self.buffers.lock();
            let index = table
                .search(args.handle)
                .map_err(|_| abi_error(AbiError::UnknownHandle))?;
            let buffer = table.buffers.remove(index)?;
            table.usage.buffers -= 1;
            table.usage.bytes -= buffer.size;
            buffer
        };
        buffer.vram.free(&buffer);
        Ok(())
    }

    fn map_peer(&self, args: &mut MapPeerArgs) -> Result {
        args.bus_address = 0;
        args.map_type = 0;
        args.denial_reasons = 0;
        let buffer = self.buffer(args.handle)?;
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
        // Under the buffer's lock, while it is live and the accessor is not unbinding: the
        // owner's unbind revokes the buffer (which waits for this lock) and the accessor's
        // removes its mappings (likewise) before their devices' resources go, so the owner's
        // P2PDMA provider and the accessor's DMA mapping stay valid for as long as needed.
        let mut state = buffer.lock();
        state.check_live()?;
        if accessor.is_unbound() {
            return Err(abi_error(AbiError::UnknownGpu));
        }
        if let Some(mapping) = state
            .peers
            .iter()
            .find(|mapping| Arc::ptr_eq(&mapping.accessor, &accessor))
        {
            args.bus_address = mapping.address;
            args.map_type = mapping.map_type as u32;
            return Ok(());
        }
        state.peers.reserve(1, GFP_USER_TRIGGERED)?;
        // Bus address or host-bridge mapping exactly as the P2PDMA core decides the pair.
        let map_type = p2pdma_path(buffer.vram.pdev(), accessor.pdev())?
            .map_type()
            .ok_or(EXDEV)? as c_int;
        let mut address = 0u64;
        // SAFETY: both devices are bound (see above) and kept alive by their `Vram`s;
        // `[offset, offset + size)` lies inside the owner's BAR (type invariant of `Buffer`);
        // `address` is writable.
        to_result(unsafe {
            hsa_p2p_map_peer(
                raw_pci_dev(buffer.vram.pdev()),
                raw_pci_dev(accessor.pdev()),
                VRAM_BAR as c_int,
                buffer.offset,
                buffer.size,
                map_type,
                fault_points::map_peer_delay_ms(),
                &mut address,
            )
        })?;
        let mapping = PeerMapping {
            accessor,
            map_type,
            address,
            size: buffer.size,
        };
        state
            .peers
            .push_within_capacity(mapping)
            .map_err(|_| ENOMEM)?;
        args.bus_address = address;
        args.map_type = map_type as u32;
        Ok(())
    }

    fn unmap_peer(&self, args: &UnmapPeerArgs) -> Result {
        let buffer = self.buffer(args.handle)?;
        let accessor = REGISTRY.lock().vram(args.peer_gpu_id);
        let mut state = buffer.lock();
        let position = accessor
            .and_then(|accessor| {
                state
                    .peers
                    .iter()
                    .position(|mapping| Arc::ptr_eq(&mapping.accessor, &accessor))
            })
            .ok_or_else(|| abi_error(AbiError::NotMappedForPeer))?;
        let mapping = state.peers.remove(position)?;
        drop(state);
        drop(mapping);
        Ok(())
    }

    /// Checks a copy as `COPY` does and chooses its path: what the engines are to run.
    fn plan_copy(&self, request: &CopyArgs) -> Result<CopyPart> {
        if request.flags & !abi::COPY_FLAGS != 0 || request.flags == abi::COPY_FLAGS {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        let (src, dst) = {
            let table = self.buffers.lock();
            (
                table.get(request.src_handle)?,
                table.get(request.dst_handle)?,
            )
        };
        abi::check_range(request.src_offset, request.size, src.size).map_err(abi_error)?;
        abi::check_range(request.dst_offset, request.size, dst.size).map_err(abi_error)?;
        // The direct path: the source GPU writes into the destination's BAR.
        let direct = if Arc::ptr_eq(&src.vram, &dst.vram) {
            Ok(())
        } else {
            let (src_gpu, dst_gpu) = (gpu_id_of(&src.vram)?, gpu_id_of(&dst.vram)?);
            let access = REGISTRY.lock().peer_access(src_gpu, dst_gpu);
            let mapped = dst
                .lock()
                .peers
                .iter()
                .any(|mapping| Arc::ptr_eq(&mapping.accessor, &src.vram));
            match access {
                PeerAccess::Denied(_) => Err(abi_error(AbiError::NoPeerLink)),
                _ if !mapped => Err(abi_error(AbiError::NotMappedForPeer)),
                _ => Ok(()),
            }
        };
        let staged = match request.flags {
            abi::COPY_DIRECT => {
                direct?;
                false
            }
            abi::COPY_STAGED => true,
            _ => direct.is_err(),
        };
        Ok(CopyPart {
            src,
            src_offset: request.src_offset,
            dst,
            dst_offset: request.dst_offset,
            len: request.size,
            staged,
        })
    }

    fn copy(&self, args: &mut CopyArgs) -> Result {
        args.path = 0;
        args.nanoseconds = 0;
        let part = self.plan_copy(args)?;
        let staged = part.staged;
        let started = Instant::<Monotonic>::now();
        copy_engine::run(part, StopWhen::current_task())?;
        args.nanoseconds = u64::try_from(started.elapsed().as_nanos()).unwrap_or(0);
        args.path = if staged {
            abi::PATH_STAGED
        } else {
            abi::PATH_DIRECT
        };
        Ok(())
    }

    fn copy_submit(&self, args: &mut CopySubmitArgs) -> Result {
        args.ticket = 0;
        let part = self.plan_copy(&args.copy_args())?;
        let eventfd = match args.eventfd {
            abi::NO_EVENTFD => None,
            fd => Some(EventFd::from_fd(fd)?),
        };
        args.ticket = self.copies.submit(part, eventfd)?;
        Ok(())
    }

    fn copy_wait(&self, args: &mut CopyWaitArgs) -> Result {
        args.status = 0;
        args.path = 0;
        args.nanoseconds = 0;
        let end = self.copies.wait(args.ticket, args.timeout_ns)?;
        args.status = end.status;
        args.path = end.path;
        args.nanoseconds = end.nanoseconds;
        Ok(())
    }

    fn info(&self, args: &mut InfoArgs) -> Result {
        if args.reserved != 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        let buffer = self.buffer(args.handle)?;
        let mut info = InfoArgs {
            handle: args.handle,
            gpu_id: gpu_id_of(&buffer.vram)?,
            size: buffer.size,
            vram_offset: buffer.offset,
            mmap_offset: abi::mmap_offset(buffer.handle),
            phys_address: buffer.vram.phys(buffer.offset),
            ..InfoArgs::default()
        };
        // The accessors are named by `gpu_id` after the buffer's lock is dropped (the registry
        // lock comes first).
        let mut peers = KVec::new();
        {
            let state = buffer.lock();
            info.peer_count = state.peers.len() as u32;
            for mapping in state.peers.iter().take(abi::INFO_MAX_PEERS) {
                peers.push(
                    (mapping.accessor.clone(), mapping.address),
                    GFP_USER_TRIGGERED,
                )?;
            }
        }
        let registry = REGISTRY.lock();
        for (index, (accessor, address)) in peers.iter().enumerate() {
            info.peer_gpu_ids[index] = registry.gpu_id(accessor).unwrap_or(0);
            info.peer_bus_addresses[index] = *address;
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
                copies <- FileCopies::new(),
                buffers <- kernel::new_mutex!(FileBuffers {
                    buffers: KVec::new(),
                    usage: Usage::default(),
                }),
            }),
            GFP_USER_TRIGGERED,
        )
    }

    fn ioctl(me: Pin<&OpenFile>, file: &File, command: u32, arg: usize) -> Result<isize> {
        let user = UserSlice::new(UserPtr::from_addr(arg), abi::ioc_size(command));
        match command {
            cmd::VERSION => {
                user.writer().write(&me.version())?;
                Ok(0)
            }
            cmd::ALLOC => in_out(user, |args| me.alloc(file, args)),
            cmd::FREE => input(user, |args| me.free(args)),
            cmd::MAP_PEER => in_out(user, |args| me.map_peer(args)),
            cmd::UNMAP_PEER => input(user, |args| me.unmap_peer(args)),
            cmd::COPY => in_out(user, |args| me.copy(args)),
            cmd::INFO => in_out(user, |args| me.info(args)),
            cmd::COPY_SUBMIT => in_out(user, |args| me.copy_submit(args)),
            cmd::COPY_WAIT => in_out(user, |args| me.copy_wait(args)),
            _ => Err(abi_error(AbiError::UnknownCommand)),
        }
    }

    fn mmap(me: Pin<&OpenFile>, _file: &File, vma: &VmaNew) -> Result {
        // Private (copy-on-write) mappings of I/O memory make no sense; `VM_MAYSHARE` is what
        // `MAP_SHARED` sets (`VM_SHARED` is cleared for read-only shared mappings).
        if vma.flags() & vm_flags::MAYSHARE == 0 {
            return Err(abi_error(AbiError::InvalidArgument));
        }
        // SAFETY: `vma` is being set up by this mmap call and stays valid during it.
        let page_offset = unsafe { (*vma.as_ptr()).vm_pgoff } as u64;
        let offset = page_offset
            .checked_mul(abi::VRAM_PAGE)
            .ok_or_else(|| abi_error(AbiError::Overflow))?;
        let (handle, start) = abi::split_mmap_offset(offset);
        let len = (vma.end() - vma.start()) as u64;
        let buffer = me.buffer(handle)?;
        abi::check_range(start, len, buffer.size).map_err(abi_error)?;
        buffer.lock().check_live()?;
        // The PTEs are inserted at fault time, while the buffer is live.
        user_mapping::prepare(vma, buffer)
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
