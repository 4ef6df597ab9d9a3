//! KFD `gpu_id`s and node names.
//!
//! amdkfd hashes PCI facts into a 16-bit, non-zero, machine-unique `gpu_id`; user space uses it
//! as the GPU's handle. The exact hash is not ABI; a stable one derived from the same facts is.

use crate::facts::{GpuFacts, PciAddress};

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

/// A `gpu_id` handed out before to the GPU at `pci` with `unique_id`: it keeps it when it is
/// bound again (the module remembers these for its lifetime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownGpuId {
    /// Where the GPU is.
    pub pci: PciAddress,
    /// Its unique id (0 when it reports none).
    pub unique_id: u64,
    /// The id it had.
    pub gpu_id: u32,
}

impl KnownGpuId {
    /// Whether this is `gpu`'s record.
    pub fn names(&self, gpu: &GpuFacts) -> bool {
        self.pci == gpu.pci && self.unique_id == gpu.unique_id
    }
}

/// The order in which colliding hashes are resolved: by the GPU's facts, never by the order
/// in which GPUs were bound.
fn collision_key(gpu: &GpuFacts) -> (u32, u32, u32, u64) {
    (
        gpu_id_hash(gpu),
        gpu.pci.domain,
        gpu.pci.location_id(),
        gpu.unique_id,
    )
}

/// The `gpu_id`s of `gpus` (at most [`MAX_GPUS`]; the rest get 0) into `ids`, index by index.
///
/// A GPU in `known` keeps its id. Every other GPU gets its hash, moved past every id already
/// taken or known (a known GPU that is unbound keeps its id reserved) on collision; GPUs whose
/// hashes collide are served in the order of their facts (hash, PCI address, unique id), so the
/// ids do not depend on the order in which the GPUs were bound.
pub fn assign_gpu_ids(gpus: &[GpuFacts], known: &[KnownGpuId], ids: &mut [u32; MAX_GPUS]) {
    *ids = [0; MAX_GPUS];
    let count = gpus.len().min(MAX_GPUS);
    let taken = |ids: &[u32; MAX_GPUS], id: u32| ids[..count].contains(&id);
    for (index, gpu) in gpus[..count].iter().enumerate() {
        if let Some(record) = known.iter().find(|record| record.names(gpu)) {
            if !taken(ids, record.gpu_id) {
                ids[index] = record.gpu_id;
            }
        }
    }
    let mut order = [0usize; MAX_GPUS];
    for (slot, index) in order[..count].iter_mut().zip(0..) {
        *slot = index;
    }
    order[..count].sort_unstable_by_key(|&index| collision_key(&gpus[index]));
    for &index in &order[..count] {
        if ids[index] != 0 {
            continue;
        }
        let mut id = gpu_id_hash(&gpus[index]);
        while taken(ids, id) || known.iter().any(|record| record.gpu_id == id) {
            id = if id >= 0xffff { 1 } else { id + 1 };
        }
        ids[index] = id;
    }
}

/// The `gpu_id` of GPU `index` among `gpus`, given the ids handed out before (see
/// [`assign_gpu_ids`]). 0 when `index` is out of range.
pub fn gpu_id(gpus: &[GpuFacts], known: &[KnownGpuId], index: usize) -> u32 {
    let mut ids = [0u32; MAX_GPUS];
    assign_gpu_ids(gpus, known, &mut ids);
    ids.get(index).copied().unwrap_or(0)
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
