//! The backend of a machine: an open `/dev/hsa_p2p`, through `hsa_p2p_runtime::device`.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use hsa_p2p_core::abi::{self, cmd, AbiError, CopyArgs};
use hsa_p2p_runtime::device::{
    checksum, fill_random, Buffer, CopyOutcome, CopyPath, Device, DeviceError,
};

use super::{
    probe, Backend, Errno, NodeMode, Probe, ProbeOutcome, Refusal, Reply, Request,
    DELAY_COPY_CHUNK_MS,
};
use crate::guest::fault_point::FaultPoint;

/// `/dev/hsa_p2p` at a path.
pub struct RealBackend {
    node: PathBuf,
    /// The machine's root, where the module's fault points are.
    root: PathBuf,
    device: Device,
}

impl RealBackend {
    /// Opens the device node at `node` of the machine whose root is `root` (and checks the ABI
    /// version).
    pub fn open_in(node: &Path, root: &Path) -> Result<Self, DeviceError> {
        Ok(RealBackend {
            node: node.to_owned(),
            root: root.to_owned(),
            device: Device::open_at(node)?,
        })
    }
}

/// An argument block sent with `command` and read back as the kernel wrote it.
fn round_trip<T: Copy + Default>(device: &Device, command: u32, args: &T) -> Result<T, Refusal> {
    let mut bytes = as_bytes(args);
    device
        .raw_ioctl(command, &mut bytes)
        .map_err(|e| raw_errno(&e))?;
    Ok(from_bytes(&bytes))
}

fn errno_of(error: &DeviceError) -> Refusal {
    match error {
        DeviceError::NoPeerLink { reasons, .. } => Refusal {
            errno: Errno::of(AbiError::NoPeerLink),
            denial_reasons: *reasons,
        },
        DeviceError::Os { source, .. } => Errno(source.raw_os_error().unwrap_or(0)).into(),
        other => Errno(other.abi_error().map_or(0, AbiError::errno)).into(),
    }
}

fn raw_errno(error: &io::Error) -> Refusal {
    Errno(error.raw_os_error().unwrap_or(0)).into()
}

/// The bytes of an ABI argument block.
fn as_bytes<T: Copy>(value: &T) -> Vec<u8> {
    let len = std::mem::size_of::<T>();
    // SAFETY: the ABI's argument blocks are `#[repr(C)]` integers without padding, readable
    // for their size.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), len) }.to_vec()
}

/// An ABI argument block from its bytes (as the kernel wrote them back).
fn from_bytes<T: Copy + Default>(bytes: &[u8]) -> T {
    let mut value = T::default();
    let len = std::mem::size_of::<T>().min(bytes.len());
    // SAFETY: `value` is a `#[repr(C)]` block of integers, for which every byte pattern is
    // valid; at most its size is written.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            std::ptr::from_mut(&mut value).cast::<u8>(),
            len,
        )
    };
    value
}

impl Backend for RealBackend {
    fn submit(&self, request: &Request) -> Result<Reply, Refusal> {
        let device = &self.device;
        match *request {
            Request::Alloc { gpu_id, size } => device
                .alloc(gpu_id, size)
                .map(Reply::Buffer)
                .map_err(|e| errno_of(&e)),
            Request::Free(args) => device
                .raw_ioctl(cmd::FREE, &mut as_bytes(&args))
                .map(|()| Reply::Done)
                .map_err(|e| raw_errno(&e)),
            Request::Info { handle } => device
                .info(handle)
                .map(Reply::Info)
                .map_err(|e| errno_of(&e)),
            Request::MapPeer {
                handle,
                peer_gpu_id,
            } => device
                .map_peer(handle, peer_gpu_id)
                .map(Reply::Mapped)
                .map_err(|e| errno_of(&e)),
            Request::UnmapPeer {
                handle,
                peer_gpu_id,
            } => device
                .unmap_peer(handle, peer_gpu_id)
                .map(|()| Reply::Done)
                .map_err(|e| errno_of(&e)),
            Request::Copy(args) => {
                let done: CopyArgs = round_trip(device, cmd::COPY, &args)?;
                Ok(Reply::Copied(CopyOutcome {
                    path: CopyPath::from_abi(done.path).unwrap_or(CopyPath::Staged),
                    nanoseconds: done.nanoseconds,
                }))
            }
            Request::CopySubmit(args) => round_trip(device, cmd::COPY_SUBMIT, &args)
                .map(|done| Reply::Submitted(done.ticket)),
            Request::CopyWait(args) => round_trip(device, cmd::COPY_WAIT, &args).map(Reply::Waited),
            Request::Mmap { mmap_offset, size } => {
                let (handle, _) = abi::split_mmap_offset(mmap_offset);
                let buffer = Buffer {
                    handle,
                    gpu_id: 0,
                    size,
                    vram_offset: 0,
                    mmap_offset,
                };
                device
                    .mmap(&buffer)
                    .map(|_| Reply::Done)
                    .map_err(|e| errno_of(&e))
            }
            Request::Ioctl { command } => {
                let mut scratch = vec![0u8; 256];
                device
                    .raw_ioctl(command, &mut scratch)
                    .map(|()| Reply::Done)
                    .map_err(|e| raw_errno(&e))
            }
        }
    }

    fn fill(&self, buffer: &Buffer, seed: u64) -> Result<u64, String> {
        let mut mapping = self.device.mmap(buffer).map_err(|e| e.to_string())?;
        fill_random(mapping.as_mut_slice(), seed);
        Ok(checksum(mapping.as_slice()))
    }

    fn checksum(&self, buffer: &Buffer) -> Result<u64, String> {
        let mapping = self.device.mmap(buffer).map_err(|e| e.to_string())?;
        Ok(checksum(mapping.as_slice()))
    }

    fn read(&self, buffer: &Buffer) -> Result<Vec<u8>, String> {
        let mapping = self.device.mmap(buffer).map_err(|e| e.to_string())?;
        Ok(mapping.as_slice().to_vec())
    }

    fn delay_copy_chunks(&self, ms: u32) -> Result<(), String> {
        let point = FaultPoint::find(&self.root, DELAY_COPY_CHUNK_MS)?;
        point.set(u64::from(ms))?;
        // Left armed: the case disarms it with 0 when it is done.
        std::mem::forget(point);
        Ok(())
    }

    fn reopen(&self) -> Result<Box<dyn Backend>, String> {
        RealBackend::open_in(&self.node, &self.root)
            .map(|backend| Box::new(backend) as Box<dyn Backend>)
            .map_err(|error| error.to_string())
    }

    fn probe(&self, probe: &Probe) -> ProbeOutcome {
        probe::run_in_child(&self.node, probe)
    }

    fn node_mode(&self) -> Result<NodeMode, String> {
        let metadata = std::fs::metadata(&self.node)
            .map_err(|error| format!("{}: {error}", self.node.display()))?;
        Ok(NodeMode {
            char_device: metadata.file_type().is_char_device(),
            permissions: metadata.mode() & 0o7777,
            uid: metadata.uid(),
            gid: metadata.gid(),
        })
    }
}
