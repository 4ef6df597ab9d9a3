//! Checks that run *inside* the guest (`xtask guest …`, a static build of this very binary put
//! in the initramfs as `/bin/hsa-p2p-guest`): peer transfers between every ordered GPU pair and
//! the device's answers to bad input. Results go to the console as lines the host parses:
//!
//! ```text
//! @@XFER from=<node> to=<node> dst_offset=<bytes> src_offset=<bytes> size=<bytes> seed=<n> path=<direct|staged> direct=<ok|EXDEV> map=<type> bus=<addr> phys=<addr> verified=<ok|FAIL>
//! @@CHECK <name> ok
//! @@CHECK <name> FAIL <what happened>
//! ```

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use hsa_p2p_core::abi::{self, cmd, AbiError, CopyArgs, FreeArgs, IOCTL_TYPE};
use hsa_p2p_runtime::device::transfer::{gpus, has_direct_path, read_published, GpuRef};
use hsa_p2p_runtime::device::{
    checksum, fill_random, Buffer, CopyPath, Device, DeviceError, PathChoice,
};
use hsa_p2p_runtime::sysfs::HSA_P2P_TOPOLOGY;

/// Seed of the source buffer on node `node`.
pub fn source_seed(node: u32) -> u64 {
    0x5eed_0000 + u64::from(node)
}

/// `xtask guest …` (hidden): the in-guest half of vm-test.
#[derive(clap::Args, Debug)]
pub struct GuestArgs {
    #[command(subcommand)]
    check: GuestCheck,
}

#[derive(clap::Subcommand, Debug)]
enum GuestCheck {
    /// Copy random data between every ordered GPU pair; buffers stay allocated until exit.
    Transfers {
        /// Bytes per copy.
        #[arg(long, default_value_t = 16 << 20)]
        size: u64,
    },
    /// Feed the device bad input; every case must give its documented error.
    BadInput,
    /// Try to use another process's buffer handle (run by `bad-input`).
    ForeignHandle {
        /// The other process's handle.
        handle: u32,
    },
    /// Map a buffer, free it, touch the mapping: must die of SIGBUS (run by `bad-input`).
    TouchAfterFree,
    /// Map a buffer, unbind its GPU, copy (ENODEV) and touch the mapping: must die of SIGBUS
    /// (run by `bad-input`, which binds the GPU again).
    TouchAfterUnbind {
        /// The GPU's PCI address.
        address: String,
    },
    /// Unbind and bind the last GPU while threads read the topology by the `generation_id`
    /// protocol: no torn tree may be accepted.
    RepublishReaders {
        /// Unbind/bind cycles.
        #[arg(long, default_value_t = 20)]
        cycles: u32,
    },
}

/// Runs a guest check.
pub fn run(args: &GuestArgs) -> Result<()> {
    match &args.check {
        GuestCheck::Transfers { size } => transfers(*size),
        GuestCheck::BadInput => bad_input(),
        GuestCheck::ForeignHandle { handle } => foreign_handle(*handle),
        GuestCheck::TouchAfterFree => touch_after_free(),
        GuestCheck::TouchAfterUnbind { address } => touch_after_unbind(address),
        GuestCheck::RepublishReaders { cycles } => {
            super::republish_readers::republish_readers(*cycles)
        }
    }
}

fn topology_gpus() -> Result<(hsa_p2p_core::topology::Topology, Vec<GpuRef>)> {
    let topology = read_published(&PathBuf::from(HSA_P2P_TOPOLOGY))?;
    let all = gpus(&topology);
    if all.len() < 2 {
        bail!("the published topology has {} GPUs", all.len());
    }
    Ok((topology, all))
}

fn transfers(size: u64) -> Result<()> {
    let (topology, all) = topology_gpus()?;
    let device = Device::open()?;
    let mut sources: BTreeMap<u32, (Buffer, u64)> = BTreeMap::new();
    for gpu in &all {
        let buffer = device.alloc(gpu.gpu_id, size)?;
        let mut mapping = device.mmap(&buffer)?;
        fill_random(mapping.as_mut_slice(), source_seed(gpu.node));
        let sum = checksum(mapping.as_slice());
        sources.insert(gpu.node, (buffer, sum));
    }
    let mut failures = 0;
    // Destinations stay allocated so the host finds every one in the backing files.
    let mut destinations = Vec::new();
    for &from in &all {
        for &to in all.iter().filter(|to| **to != from) {
            let (src, expected) = sources[&from.node];
            let dst = device.alloc(to.gpu_id, size)?;
            destinations.push(dst);
            let linked = has_direct_path(&topology, from, to);
            let mut direct = "ok";
            let mut problems = Vec::new();
            let mut mapping = None;
            match (linked, device.map_peer(dst.handle, from.gpu_id)) {
                (true, Ok(peer)) => mapping = Some(peer),
                (false, Err(DeviceError::NoPeerLink { reasons, .. })) if reasons != 0 => {}
                (linked, result) => {
                    problems.push(format!("map for peer (link {linked}) gave {result:?}"))
                }
            }
            let outcome = match device.copy(src.handle, 0, dst.handle, 0, size, PathChoice::Direct)
            {
                Ok(outcome) if linked => Some(outcome),
                Err(error) if !linked && error.abi_error() == Some(AbiError::NoPeerLink) => {
                    direct = "EXDEV";
                    None
                }
                other => {
                    problems.push(format!("direct copy (link {linked}) gave {other:?}"));
                    None
                }
            };
            let outcome = match outcome {
                Some(outcome) => outcome,
                None => device.copy(src.handle, 0, dst.handle, 0, size, PathChoice::Staged)?,
            };
            let expected_path = if linked {
                CopyPath::Direct
            } else {
                CopyPath::Staged
            };
            if outcome.path != expected_path {
                problems.push(format!("took the {} path", outcome.path.name()));
            }
            let got = checksum(device.mmap(&dst)?.as_slice());
            if got != expected {
                problems.push(format!("checksum {got:016x}, expected {expected:016x}"));
            }
            let phys = device.info(dst.handle)?.phys_address;
            println!(
                "@@XFER from={} to={} src_offset={} dst_offset={} size={size} seed={} path={} direct={direct} map={} bus={:#x} phys={phys:#x} verified={}",
                from.node,
                to.node,
                src.vram_offset,
                dst.vram_offset,
                source_seed(from.node),
                outcome.path.name(),
                mapping.map_or(0, |m| m.map_type),
                mapping.map_or(0, |m| m.bus_address),
                if problems.is_empty() { "ok" } else { "FAIL" }
            );
            for problem in &problems {
                println!("@@XFER_PROBLEM {}->{}: {problem}", from.node, to.node);
            }
            failures += problems.len();
        }
    }
    if failures > 0 {
        bail!("{failures} transfer problems");
    }
    Ok(())
}

/// The errno of a raw ioctl with `bytes` as the argument block.
fn raw_errno(device: &Device, command: u32, bytes: &mut [u8]) -> Option<i32> {
    device
        .raw_ioctl(command, bytes)
        .err()
        .and_then(|e: io::Error| e.raw_os_error())
}

fn as_bytes<T: Copy>(value: &T) -> Vec<u8> {
    let len = std::mem::size_of::<T>();
    // SAFETY: the ABI's argument blocks are `#[repr(C)]` integers without padding.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), len) }.to_vec()
}

struct Checks {
    failures: usize,
}

impl Checks {
    fn expect(&mut self, name: &str, result: Result<(), DeviceError>, expected: AbiError) {
        match result {
            Err(error) if error.abi_error() == Some(expected) => println!("@@CHECK {name} ok"),
            other => {
                self.failures += 1;
                println!(
                    "@@CHECK {name} FAIL expected {}, got {other:?}",
                    expected.name()
                );
            }
        }
    }

    fn expect_errno(&mut self, name: &str, errno: Option<i32>, expected: AbiError) {
        if errno == Some(expected.errno()) {
            println!("@@CHECK {name} ok");
        } else {
            self.failures += 1;
            println!(
                "@@CHECK {name} FAIL expected {}, got errno {errno:?}",
                expected.name()
            );
        }
    }

    fn ok(&mut self, name: &str, result: Result<()>) {
        match result {
            Ok(()) => println!("@@CHECK {name} ok"),
            Err(error) => {
                self.failures += 1;
                println!("@@CHECK {name} FAIL {error:#}");
            }
        }
    }
}

fn copy_raw(device: &Device, args: CopyArgs) -> Option<i32> {
    raw_errno(device, cmd::COPY, &mut as_bytes(&args))
}

fn bad_input() -> Result<()> {
    let (topology, all) = topology_gpus()?;
    let device = Device::open()?;
    let mut checks = Checks { failures: 0 };
    let gpu = all[0];
    let size = 1 << 20;
    let a = device.alloc(gpu.gpu_id, size)?;
    let b = device.alloc(gpu.gpu_id, size)?;
    let copy = |src_offset, dst_offset, len| CopyArgs {
        src_handle: a.handle,
        dst_handle: b.handle,
        src_offset,
        dst_offset,
        size: len,
        ..CopyArgs::default()
    };

    checks.expect_errno(
        "copy_source_offset_out_of_range",
        copy_raw(&device, copy(size, 0, 4096)),
        AbiError::OutOfRange,
    );
    checks.expect_errno(
        "copy_destination_range_past_the_end",
        copy_raw(&device, copy(0, size - 4096, 8192)),
        AbiError::OutOfRange,
    );
    checks.expect_errno(
        "copy_length_overflow",
        copy_raw(&device, copy(4096, 0, u64::MAX - 100)),
        AbiError::Overflow,
    );
    checks.expect_errno(
        "copy_offset_overflow",
        copy_raw(&device, copy(0, u64::MAX, 2)),
        AbiError::Overflow,
    );
    checks.expect_errno(
        "copy_unknown_flags",
        copy_raw(
            &device,
            CopyArgs {
                flags: 0x80,
                ..copy(0, 0, 1)
            },
        ),
        AbiError::InvalidArgument,
    );
    checks.expect_errno(
        "copy_direct_and_staged_at_once",
        copy_raw(
            &device,
            CopyArgs {
                flags: abi::COPY_FLAGS,
                ..copy(0, 0, 1)
            },
        ),
        AbiError::InvalidArgument,
    );
    checks.expect(
        "alloc_size_overflow",
        device.alloc(gpu.gpu_id, u64::MAX).map(drop),
        AbiError::Overflow,
    );
    checks.expect(
        "alloc_size_zero",
        device.alloc(gpu.gpu_id, 0).map(drop),
        AbiError::InvalidArgument,
    );
    checks.expect(
        "alloc_larger_than_vram",
        device.alloc(gpu.gpu_id, abi::MAX_BUFFER_SIZE).map(drop),
        AbiError::NoVram,
    );
    checks.expect(
        "alloc_unknown_gpu",
        device.alloc(0, 4096).map(drop),
        AbiError::UnknownGpu,
    );
    checks.expect(
        "free_unknown_handle",
        device.free(0xdead_beef),
        AbiError::UnknownHandle,
    );
    checks.expect(
        "info_unknown_handle",
        device.info(0xdead_beef).map(drop),
        AbiError::UnknownHandle,
    );
    checks.expect(
        "copy_unknown_handle",
        device
            .copy(0xdead_beef, 0, b.handle, 0, 1, PathChoice::Auto)
            .map(drop),
        AbiError::UnknownHandle,
    );
    checks.expect(
        "map_unknown_peer_gpu",
        device.map_peer(a.handle, 0).map(drop),
        AbiError::UnknownGpu,
    );
    let mut free_reserved = as_bytes(&FreeArgs {
        handle: a.handle,
        reserved: 1,
    });
    checks.expect_errno(
        "free_reserved_field_set",
        raw_errno(&device, cmd::FREE, &mut free_reserved),
        AbiError::InvalidArgument,
    );
    // Unknown command numbers, and a known number with the wrong argument size.
    let mut scratch = vec![0u8; 256];
    checks.expect_errno(
        "unknown_ioctl",
        raw_errno(
            &device,
            abi::iowr::<[u8; 16]>(IOCTL_TYPE, 0x7f),
            &mut scratch,
        ),
        AbiError::UnknownCommand,
    );
    checks.expect_errno(
        "known_ioctl_with_wrong_size",
        raw_errno(&device, abi::ior::<[u8; 4]>(IOCTL_TYPE, 0x40), &mut scratch),
        AbiError::UnknownCommand,
    );
    checks.expect_errno(
        "foreign_ioctl_type",
        raw_errno(&device, abi::ior::<u32>(b'T'.into(), 0x01), &mut scratch),
        AbiError::UnknownCommand,
    );

    // A handle of another open file (another process) names nothing here.
    let status = Command::new(std::env::current_exe()?)
        .args(["guest", "foreign-handle", &a.handle.to_string()])
        .status()
        .context("cannot run the foreign-handle child")?;
    checks.ok(
        "another_process_cannot_use_a_handle",
        if status.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the child process reported {status}"))
        },
    );
    checks.ok(
        "the_owner_still_has_its_buffer",
        device.info(a.handle).map(drop).map_err(anyhow::Error::from),
    );

    // A freed buffer's user mapping is gone: touching it kills the process with SIGBUS.
    let status = Command::new(std::env::current_exe()?)
        .args(["guest", "touch-after-free"])
        .status()
        .context("cannot run the touch-after-free child")?;
    checks.ok(
        "freed_buffer_mapping_faults",
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(7) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("expected death by SIGBUS, got {status}"))
        },
    );

    // Unbinding a GPU revokes the user mappings of its buffers and fails their copies.
    let last = all[all.len() - 1];
    let address = pci_address(&topology, last)?;
    let status = Command::new(std::env::current_exe()?)
        .args(["guest", "touch-after-unbind", &address])
        .status()
        .context("cannot run the touch-after-unbind child")?;
    let rebound = std::fs::write(format!("{DRIVER}/bind"), &address);
    checks.ok(
        "unbound_gpu_buffer_mapping_faults",
        match (std::os::unix::process::ExitStatusExt::signal(&status), rebound) {
            (Some(7), Ok(())) => Ok(()),
            (signal, rebound) => Err(anyhow::anyhow!(
                "expected death by SIGBUS and a rebind, got {status} (signal {signal:?}), rebind {rebound:?}"
            )),
        },
    );

    // Direct copies into a buffer that a linked peer has not mapped are refused.
    let linked = all
        .iter()
        .flat_map(|&f| all.iter().map(move |&t| (f, t)))
        .find(|&(f, t)| f != t && has_direct_path(&topology, f, t));
    if let Some((from, to)) = linked {
        let src = device.alloc(from.gpu_id, 4096)?;
        let dst = device.alloc(to.gpu_id, 4096)?;
        checks.expect(
            "direct_copy_without_peer_mapping",
            device
                .copy(src.handle, 0, dst.handle, 0, 4096, PathChoice::Direct)
                .map(drop),
            AbiError::NotMappedForPeer,
        );
        device.free(src.handle)?;
        device.free(dst.handle)?;
    }
    let unlinked = all
        .iter()
        .flat_map(|&f| all.iter().map(move |&t| (f, t)))
        .find(|&(f, t)| f != t && !has_direct_path(&topology, f, t));
    if let Some((from, to)) = unlinked {
        let dst = device.alloc(to.gpu_id, 4096)?;
        checks.expect(
            "map_for_a_peer_without_p2p_link",
            device.map_peer(dst.handle, from.gpu_id).map(drop),
            AbiError::NoPeerLink,
        );
        device.free(dst.handle)?;
    }

    // mmap: past the end of the buffer, and of an unknown handle.
    checks.expect(
        "mmap_past_the_buffer",
        device
            .mmap(&Buffer {
                size: size * 2,
                ..a
            })
            .map(drop),
        AbiError::OutOfRange,
    );
    checks.expect(
        "mmap_unknown_handle",
        device
            .mmap(&Buffer {
                mmap_offset: abi::mmap_offset(0xdead_beef),
                ..a
            })
            .map(drop),
        AbiError::UnknownHandle,
    );

    // Double free.
    device.free(b.handle)?;
    checks.expect(
        "double_free",
        device.free(b.handle),
        AbiError::UnknownHandle,
    );

    // Closing the file frees its buffers: fill the GPU from a second file, close it, and the
    // same allocations succeed again.
    checks.ok("closing_the_file_frees_its_buffers", close_frees(gpu));
    device.free(a.handle)?;

    if checks.failures > 0 {
        bail!("{} bad-input checks failed", checks.failures);
    }
    Ok(())
}

fn fill_gpu(device: &Device, gpu: GpuRef) -> Result<usize> {
    let mut count = 0;
    loop {
        match device.alloc(gpu.gpu_id, 4 << 20) {
            Ok(_) => count += 1,
            Err(error) if error.abi_error() == Some(AbiError::NoVram) => return Ok(count),
            Err(error) => return Err(error.into()),
        }
    }
}

fn close_frees(gpu: GpuRef) -> Result<()> {
    let first = fill_gpu(&Device::open()?, gpu)?;
    let second = fill_gpu(&Device::open()?, gpu)?;
    if first == 0 || first != second {
        bail!("{first} buffers fit before closing, {second} after");
    }
    Ok(())
}

/// The driver's sysfs directory.
const DRIVER: &str = "/sys/bus/pci/drivers/hsa_p2p";

/// The PCI address (`DDDD:BB:DD.F`) of a GPU node.
fn pci_address(topology: &hsa_p2p_core::topology::Topology, gpu: GpuRef) -> Result<String> {
    let node = topology.node(gpu.node).context("GPU node vanished")?;
    Ok(node.pci_address().to_string())
}

fn touch_after_unbind(address: &str) -> Result<()> {
    let (topology, all) = topology_gpus()?;
    let gpu = all
        .iter()
        .copied()
        .find(|&gpu| pci_address(&topology, gpu).is_ok_and(|a| a == address))
        .with_context(|| format!("no GPU node at {address}"))?;
    let device = Device::open()?;
    let buffer = device.alloc(gpu.gpu_id, 8192)?;
    let mut mapping = device.mmap(&buffer)?;
    mapping.as_mut_slice()[0] = 0x5a;
    std::fs::write(format!("{DRIVER}/unbind"), address)
        .with_context(|| format!("cannot unbind {address}"))?;
    match device.copy(
        buffer.handle,
        0,
        buffer.handle,
        4096,
        4096,
        PathChoice::Auto,
    ) {
        Err(error) if error.abi_error() == Some(AbiError::UnknownGpu) => {
            println!("@@CHECK unbound_gpu_buffer_copy_fails ok")
        }
        other => {
            println!("@@CHECK unbound_gpu_buffer_copy_fails FAIL expected ENODEV, got {other:?}")
        }
    }
    // SAFETY: the pointer is the start of the live mapping, whose pages must be gone.
    let byte = unsafe { std::ptr::read_volatile(mapping.as_slice().as_ptr()) };
    bail!("read {byte:#x} through the mapping of an unbound GPU's buffer")
}

fn touch_after_free() -> Result<()> {
    let (_, all) = topology_gpus()?;
    let device = Device::open()?;
    let buffer = device.alloc(all[0].gpu_id, 4096)?;
    let mut mapping = device.mmap(&buffer)?;
    mapping.as_mut_slice()[0] = 0x5a;
    device.free(buffer.handle)?;
    // SAFETY: the pointer is the start of the live mapping (the mapping itself is still there;
    // only its pages must be gone, which turns this read into SIGBUS).
    let byte = unsafe { std::ptr::read_volatile(mapping.as_slice().as_ptr()) };
    // Only reached if the mapping survived the free.
    bail!("read {byte:#x} through the mapping of a freed buffer")
}

fn foreign_handle(handle: u32) -> Result<()> {
    let device = Device::open()?;
    // This file has buffers of its own, so the lookup is not trivially empty.
    let (_, all) = topology_gpus()?;
    let own = device.alloc(all[0].gpu_id, 4096)?;
    let mut problems = Vec::new();
    let mut expect = |what: &str, result: Result<(), DeviceError>| match result {
        Err(error) if error.abi_error() == Some(AbiError::UnknownHandle) => {}
        other => problems.push(format!("{what}: {other:?}")),
    };
    expect("info", device.info(handle).map(drop));
    expect(
        "copy",
        device
            .copy(handle, 0, own.handle, 0, 4096, PathChoice::Auto)
            .map(drop),
    );
    expect(
        "mmap",
        device
            .mmap(&Buffer {
                handle,
                mmap_offset: abi::mmap_offset(handle),
                ..own
            })
            .map(drop),
    );
    expect("free", device.free(handle));
    if !problems.is_empty() {
        bail!("another file's handle was usable: {}", problems.join("; "));
    }
    Ok(())
}
