//! KFD `gpu_id`s and node names.
//!
//! amdkfd hashes PCI facts into a 16-bit, non-zero, machine-unique `gpu_id`; user space uses it
//! as the GPU's handle. The exact hash is not ABI; a stable one derived from the same facts is.

use crate::facts::GpuFacts;

/// FNV-1a over the facts that identify a GPU, folded to 16 bits, never 0.
pub fn gpu_id_hash(gpu: &GpuFacts) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |value: u32| {
        for byte in value.to_le_bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(gpu.pci.domain);
    feed(gpu.pci.location_id());
    feed(gpu.vendor_id);
    feed(gpu.device_id);
    feed(gpu.unique_id as u32);
    feed((gpu.unique_id >> 32) as u32);
    let folded = (hash ^ (hash >> 16)) & 0xffff;
    if folded == 0 {
        1
    } else {
        folded
    }
}

/// Most GPUs one topology holds (far above KFD's practical limit).
pub const MAX_GPUS: usize = 128;

/// The `gpu_id` of GPU `index` among `gpus`: its hash, moved past any earlier GPU's id on
/// collision (as amdkfd does), so that ids are unique. 0 when `index` is out of range.
pub fn gpu_id(gpus: &[GpuFacts], index: usize) -> u32 {
    if index >= gpus.len() || index >= MAX_GPUS {
        return 0;
    }
    let mut ids = [0u32; MAX_GPUS];
    for current in 0..=index {
        let mut id = gpu_id_hash(&gpus[current]);
        while ids[..current].contains(&id) {
            id = if id >= 0xffff { 1 } else { id + 1 };
        }
        ids[current] = id;
    }
    ids[index]
}

/// The KFD node name of a GPU: `gfx` + target version digits (90010 -> "gfx90a").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GfxName(pub u32);

impl core::fmt::Display for GfxName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let major = self.0 / 10000;
        let minor = (self.0 / 100) % 100;
        let stepping = self.0 % 100;
        write!(f, "gfx{major}{minor:x}{stepping:x}")
    }
}
