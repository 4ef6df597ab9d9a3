//! `cargo xtask vm --demo`: a hard-coded 3-GPU machine, the module loaded and unloaded.
//!
//! ```text
//! pcie.0 ─┬─ rp1 (pcie-root-port) ── x3130-upstream ─┬─ xio3130-downstream ── gpu0
//!         │                                          └─ xio3130-downstream ── gpu1
//!         └─ rp2 (pcie-root-port) ── gpu2
//! ```
//!
//! Each GPU is an `ivshmem-plain` device whose BAR2 (the VRAM) is a 64 MiB file in /dev/shm,
//! with a descriptor page written at offset 0 and a marker pattern at 4 KiB before boot.
//! Expected: three devices bound; `pci_p2pdma_distance` 4 for gpu0/gpu1 (same switch) and -1
//! for pairs across the root ports (q35's host bridge is not whitelisted).

use anyhow::Result;
use hsa_p2p_core::descriptor::{Descriptor, DESCRIPTOR_PAGE_SIZE};
use hsa_p2p_core::pcie::{PcieGen, PcieLink};

use super::options::{GuestSettings, GUEST_MODULE};
use super::protocol;
use super::{GuestFile, Initramfs, ShmFile, VmConfig, VmOutcome};
use crate::kernel::KernelEnv;
use crate::util::{note, phase};

/// VRAM (= BAR2) size of each demo GPU.
const VRAM_SIZE: u64 = 64 << 20;

/// The marker written after the descriptor page of GPU `index`.
pub fn marker(index: usize) -> Vec<u8> {
    format!("hsa-p2p demo gpu{index} VRAM\n").into_bytes()
}

fn descriptor(index: usize) -> Descriptor {
    Descriptor {
        vram_size: VRAM_SIZE,
        numa_node: 0,
        dma_mask_bits: 48,
        pcie: PcieLink {
            gen: PcieGen::Gen4,
            width: 16,
        },
        pcie_atomics: true,
        xgmi_connected_to_cpu: false,
        xgmi: None,
        gfx_target_version: 90008,
        simd_count: 240,
        unique_id: 0x4853_4150_0000_0000 | index as u64,
    }
}

/// The guest script: list the devices, load the module, show what it logged and published,
/// unload it, and fail unless three devices were bound and (when the module publishes a
/// topology) exactly the same-switch pair got p2p links, one in each direction.
const SCRIPT: &str = r#"
echo "--- PCI devices"
for d in /sys/bus/pci/devices/*; do
    echo "$(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") class $(cat "$d/class")"
done
echo "--- insmod /hsa_p2p.ko"
insmod /hsa_p2p.ko || exit 10
bound=$(ls /sys/bus/pci/drivers/hsa_p2p 2>/dev/null | grep -c '^0000:')
echo "bound devices: $bound"
for d in /sys/bus/pci/drivers/hsa_p2p/0000:*; do
    [ -e "$d/p2pmem/size" ] && echo "$(basename "$d") p2pmem size $(cat "$d/p2pmem/size")"
done
links=-
if [ -d /sys/kernel/hsa_p2p/topology ]; then
    links=$(ls -d /sys/kernel/hsa_p2p/topology/nodes/*/p2p_links/* 2>/dev/null | wc -l)
    echo "--- /sys/kernel/hsa_p2p/topology: $links p2p links"
    for f in $(find /sys/kernel/hsa_p2p/topology -name properties | grep -E 'p2p_links|p2p_denials' | sort); do
        echo "$f: $(tr '\n' ' ' < "$f")"
    done
fi
echo "--- rmmod hsa_p2p"
rmmod hsa_p2p || exit 11
echo "--- dmesg (hsa_p2p, p2pdma)"
dmesg | grep -iE 'hsa_p2p|p2p'
[ "$bound" = 3 ] || exit 12
[ "$links" = - ] || [ "$links" = 2 ] || exit 13
"#;

fn qemu_args(shm: &[ShmFile]) -> Vec<String> {
    let mut args: Vec<String> = [
        "-smp",
        "1",
        "-device",
        "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1",
        "-device",
        "x3130-upstream,id=up1,bus=rp1",
        "-device",
        "xio3130-downstream,id=dn1,bus=up1,chassis=2,slot=0",
        "-device",
        "xio3130-downstream,id=dn2,bus=up1,chassis=3,slot=1",
        "-device",
        "pcie-root-port,id=rp2,bus=pcie.0,chassis=4,slot=2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (index, (file, bus)) in shm.iter().zip(["dn1", "dn2", "rp2"]).enumerate() {
        args.push("-object".into());
        args.push(format!(
            "memory-backend-file,id=vram{index},share=on,mem-path={},size={}",
            file.path.display(),
            file.size
        ));
        args.push("-device".into());
        args.push(format!("ivshmem-plain,memdev=vram{index},bus={bus}"));
    }
    args
}

/// Boots the demo machine (keeping the VRAM files with `keep_shm`); fails unless the guest
/// script succeeded.
pub fn demo(settings: &GuestSettings, keep_shm: bool) -> Result<VmOutcome> {
    let env = KernelEnv::load_flavour(settings.flavour)?;
    let shm_files: Vec<ShmFile> = (0..3)
        .map(|index| ShmFile {
            path: format!("/dev/shm/hsa-p2p-demo-{}-gpu{index}", std::process::id()).into(),
            size: VRAM_SIZE,
            writes: vec![
                (0, descriptor(index).encode().to_vec()),
                (DESCRIPTOR_PAGE_SIZE, marker(index)),
            ],
        })
        .collect();
    let mut config = VmConfig::new("demo", &env.bzimage);
    config.qemu_args = qemu_args(&shm_files);
    config.shm_files = shm_files.clone();
    config.keep_shm_files = keep_shm;
    config.timeout = settings.timeout;
    config.append.push(protocol::console_loglevel_arg());
    config.initramfs = Initramfs {
        script: SCRIPT.into(),
        files: vec![GuestFile::host(GUEST_MODULE, &settings.module)],
    };
    phase("boot the 3-GPU demo machine (QEMU TCG)");
    let outcome = super::run(&config)?;
    note(outcome.summary());
    outcome.check()?;
    let bound = outcome
        .console_log
        .lines()
        .find_map(|l| l.strip_prefix("bound devices: "))
        .unwrap_or("?");
    note(format!("{bound} devices bound"));
    if keep_shm {
        for (index, file) in shm_files.iter().enumerate() {
            let marker = marker(index);
            let found = file.read(DESCRIPTOR_PAGE_SIZE, marker.len())? == marker;
            note(format!(
                "{} kept (marker {})",
                file.path.display(),
                if found { "intact" } else { "overwritten" }
            ));
        }
    }
    Ok(outcome)
}
