//! A copy that stays in VRAM after the run, described so that an observer outside the machine
//! can check it: the host of an emulated machine regenerates the source bytes from the seed
//! and reads both ranges in the VRAM backing files.

pub use hsa_p2p_runtime::device::CopyPath;
use serde::{Deserialize, Serialize};

/// One copy between two GPUs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRecord {
    /// Source node.
    pub from: u32,
    /// Destination node.
    pub to: u32,
    /// Source buffer's offset in its GPU's VRAM BAR.
    pub src_offset: u64,
    /// Destination buffer's offset in its GPU's VRAM BAR.
    pub dst_offset: u64,
    /// Bytes copied (from offset 0 of both buffers).
    pub size: u64,
    /// Seed of the source's random stream (`hsa_p2p_runtime::device::fill_random`).
    pub seed: u64,
    /// The path the data took.
    pub path: CopyPath,
    /// Whether the module refused a direct copy first (`EXDEV`: no p2p link).
    pub direct_refused: bool,
    /// `MAP_PEER`'s map type (`abi::MAP_TYPE_*`), 0 when not mapped.
    pub map_type: u32,
    /// The address the accessor was given for the destination, 0 when not mapped.
    pub bus_address: u64,
    /// The destination's CPU physical address.
    pub phys_address: u64,
}

impl CopyRecord {
    /// The bytes the source held, and the destination must hold: the seed's random stream.
    pub fn source_bytes(&self) -> Vec<u8> {
        hsa_p2p_runtime::device::random_bytes(self.size as usize, self.seed)
    }
}
