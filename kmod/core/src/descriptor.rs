//! The per-device descriptor page at the start of an emulated GPU's VRAM.
//!
//! An emulated GPU is one QEMU `ivshmem-plain` device whose BAR2 is its VRAM. Everything the
//! PCI core cannot tell about it (real VRAM size behind a possibly smaller BAR, NUMA node, DMA
//! mask, XGMI hive, PCIe link) is written by the VM harness into the first bytes of the BAR's
//! backing file before boot and validated by the module at probe. The first
//! [`DESCRIPTOR_PAGE_SIZE`] bytes of VRAM are reserved for it.
//!
//! Layout: little-endian, fixed offsets, [`DESCRIPTOR_LEN`] bytes, FNV-1a checksum of the bytes
//! before the checksum field.

use crate::facts::{GpuFacts, PciAddress, XgmiFacts, XgmiPeer, XGMI_MAX_HIVE};
use crate::pcie::{PcieGen, PcieLink};

/// `"HP2P"` read as a little-endian u32.
pub const DESCRIPTOR_MAGIC: u32 = u32::from_le_bytes(*b"HP2P");
/// Layout version this code reads and writes.
pub const DESCRIPTOR_VERSION: u32 = 2;
/// Encoded length in bytes.
pub const DESCRIPTOR_LEN: usize = 0x80;
/// VRAM bytes reserved for the descriptor (buffers start after it).
pub const DESCRIPTOR_PAGE_SIZE: u64 = 4096;

const FLAG_PCIE_ATOMICS: u32 = 1 << 0;
const FLAG_XGMI_CONNECTED_TO_CPU: u32 = 1 << 1;
const KNOWN_FLAGS: u32 = FLAG_PCIE_ATOMICS | FLAG_XGMI_CONNECTED_TO_CPU;
/// The member's XGMI topology table: (`num_hops`, `num_links`) byte pairs by peer position.
const XGMI_PEERS_OFFSET: usize = 0x50;

const CHECKSUM_OFFSET: usize = DESCRIPTOR_LEN - 4;

/// The facts a descriptor carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Real VRAM size in bytes (the BAR may be smaller: small BAR).
    pub vram_size: u64,
    /// CPU node the GPU hangs off.
    pub numa_node: u32,
    /// DMA mask width in bits.
    pub dma_mask_bits: u32,
    /// PCIe link.
    pub pcie: PcieLink,
    /// PCIe atomics supported.
    pub pcie_atomics: bool,
    /// XGMI connects the GPU to the CPU.
    pub xgmi_connected_to_cpu: bool,
    /// XGMI hive membership.
    pub xgmi: Option<XgmiFacts>,
    /// gfx target version.
    pub gfx_target_version: u32,
    /// SIMD units.
    pub simd_count: u32,
    /// Unique id.
    pub unique_id: u64,
}

/// Why a descriptor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptorError {
    /// Fewer than [`DESCRIPTOR_LEN`] bytes.
    TooShort,
    /// No magic: the harness did not write a descriptor.
    BadMagic(u32),
    /// A layout version this module does not know.
    UnsupportedVersion(u32),
    /// The checksum does not match: the page is corrupt.
    BadChecksum,
    /// A field holds an impossible value.
    InvalidField(&'static str),
}

impl core::fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DescriptorError::TooShort => {
                write!(f, "descriptor shorter than {DESCRIPTOR_LEN} bytes")
            }
            DescriptorError::BadMagic(found) => {
                write!(
                    f,
                    "no descriptor (magic {found:#010x}, expected {DESCRIPTOR_MAGIC:#010x})"
                )
            }
            DescriptorError::UnsupportedVersion(version) => {
                write!(
                    f,
                    "descriptor version {version}, this module reads {DESCRIPTOR_VERSION}"
                )
            }
            DescriptorError::BadChecksum => f.write_str("descriptor checksum mismatch"),
            DescriptorError::InvalidField(field) => {
                write!(f, "descriptor field {field} is invalid")
            }
        }
    }
}

fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

fn read_u32(bytes: &[u8; DESCRIPTOR_LEN], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8; DESCRIPTOR_LEN], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

fn put(bytes: &mut [u8; DESCRIPTOR_LEN], offset: usize, value: &[u8]) {
    bytes[offset..offset + value.len()].copy_from_slice(value);
}

/// The member's XGMI topology table: no entry beyond the hive, none for itself, a hop count
/// (1..=7) for every peer and links only to a peer one hop away.
fn read_xgmi_peers(
    bytes: &[u8; DESCRIPTOR_LEN],
    position: u32,
    hive_size: u32,
) -> Result<[XgmiPeer; XGMI_MAX_HIVE], DescriptorError> {
    let mut peers = [XgmiPeer::default(); XGMI_MAX_HIVE];
    for (index, peer) in peers.iter_mut().enumerate() {
        let offset = XGMI_PEERS_OFFSET + 2 * index;
        *peer = XgmiPeer {
            num_hops: bytes[offset],
            num_links: bytes[offset + 1],
        };
        let valid = if index as u32 >= hive_size || index as u32 == position {
            *peer == XgmiPeer::default()
        } else {
            (1..=7).contains(&peer.num_hops) && (peer.num_links == 0 || peer.num_hops == 1)
        };
        if !valid {
            return Err(DescriptorError::InvalidField("xgmi_peers"));
        }
    }
    Ok(peers)
}

/// What the PCI core knows about a GPU, which its descriptor does not carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciIdentity {
    /// Its address.
    pub pci: PciAddress,
    /// PCI vendor id.
    pub vendor_id: u32,
    /// PCI device id.
    pub device_id: u32,
    /// Start of the VRAM BAR.
    pub bar_base: u64,
    /// Size of the VRAM BAR.
    pub bar_size: u64,
}

impl Descriptor {
    /// The descriptor carrying what `facts` says beyond the PCI core (what the emulated
    /// machine's harness writes).
    pub fn of(facts: &GpuFacts) -> Descriptor {
        Descriptor {
            vram_size: facts.vram_size,
            numa_node: facts.numa_node,
            dma_mask_bits: facts.dma_mask_bits,
            pcie: facts.pcie,
            pcie_atomics: facts.pcie_atomics,
            xgmi_connected_to_cpu: facts.xgmi_connected_to_cpu,
            xgmi: facts.xgmi,
            gfx_target_version: facts.gfx_target_version,
            simd_count: facts.simd_count,
            unique_id: facts.unique_id,
        }
    }

    /// The GPU's facts: this descriptor's and the PCI core's (what the module reads at probe;
    /// an emulated GPU has no DRM render node).
    pub fn gpu_facts(&self, pci: PciIdentity) -> GpuFacts {
        GpuFacts {
            pci: pci.pci,
            vendor_id: pci.vendor_id,
            device_id: pci.device_id,
            gfx_target_version: self.gfx_target_version,
            simd_count: self.simd_count,
            vram_size: self.vram_size,
            bar_base: pci.bar_base,
            bar_size: pci.bar_size,
            numa_node: self.numa_node,
            dma_mask_bits: self.dma_mask_bits,
            xgmi: self.xgmi,
            xgmi_connected_to_cpu: self.xgmi_connected_to_cpu,
            pcie: self.pcie,
            pcie_atomics: self.pcie_atomics,
            drm_render_minor: 0,
            unique_id: self.unique_id,
        }
    }

    /// Encodes the descriptor.
    pub fn encode(&self) -> [u8; DESCRIPTOR_LEN] {
        let mut bytes = [0u8; DESCRIPTOR_LEN];
        let xgmi = self.xgmi;
        let mut flags = 0;
        if self.pcie_atomics {
            flags |= FLAG_PCIE_ATOMICS;
        }
        if self.xgmi_connected_to_cpu {
            flags |= FLAG_XGMI_CONNECTED_TO_CPU;
        }
        put(&mut bytes, 0x00, &DESCRIPTOR_MAGIC.to_le_bytes());
        put(&mut bytes, 0x04, &DESCRIPTOR_VERSION.to_le_bytes());
        put(&mut bytes, 0x08, &(DESCRIPTOR_LEN as u32).to_le_bytes());
        put(&mut bytes, 0x0c, &flags.to_le_bytes());
        put(&mut bytes, 0x10, &self.vram_size.to_le_bytes());
        put(
            &mut bytes,
            0x18,
            &xgmi.map_or(0, |x| x.hive_id).to_le_bytes(),
        );
        put(&mut bytes, 0x20, &self.numa_node.to_le_bytes());
        put(&mut bytes, 0x24, &self.dma_mask_bits.to_le_bytes());
        put(&mut bytes, 0x28, &self.pcie.gen.number().to_le_bytes());
        put(&mut bytes, 0x2c, &self.pcie.width.to_le_bytes());
        put(&mut bytes, 0x30, &self.gfx_target_version.to_le_bytes());
        put(&mut bytes, 0x34, &self.simd_count.to_le_bytes());
        put(
            &mut bytes,
            0x38,
            &xgmi.map_or(0, |x| x.position).to_le_bytes(),
        );
        put(
            &mut bytes,
            0x3c,
            &xgmi.map_or(0, |x| x.hive_size).to_le_bytes(),
        );
        put(
            &mut bytes,
            0x40,
            &xgmi.map_or(0, |x| x.link_bandwidth_mbs).to_le_bytes(),
        );
        put(&mut bytes, 0x48, &self.unique_id.to_le_bytes());
        if let Some(xgmi) = xgmi {
            for (index, peer) in xgmi.peers.iter().enumerate() {
                put(
                    &mut bytes,
                    XGMI_PEERS_OFFSET + 2 * index,
                    &[peer.num_hops, peer.num_links],
                );
            }
        }
        let sum = checksum(&bytes[..CHECKSUM_OFFSET]);
        put(&mut bytes, CHECKSUM_OFFSET, &sum.to_le_bytes());
        bytes
    }

    /// Decodes and validates a descriptor from the start of `page`.
    pub fn decode(page: &[u8]) -> Result<Descriptor, DescriptorError> {
        let bytes: &[u8; DESCRIPTOR_LEN] = page
            .get(..DESCRIPTOR_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(DescriptorError::TooShort)?;
        let magic = read_u32(bytes, 0x00);
        if magic != DESCRIPTOR_MAGIC {
            return Err(DescriptorError::BadMagic(magic));
        }
        let version = read_u32(bytes, 0x04);
        if version != DESCRIPTOR_VERSION {
            return Err(DescriptorError::UnsupportedVersion(version));
        }
        if read_u32(bytes, CHECKSUM_OFFSET) != checksum(&bytes[..CHECKSUM_OFFSET]) {
            return Err(DescriptorError::BadChecksum);
        }
        if read_u32(bytes, 0x08) as usize != DESCRIPTOR_LEN {
            return Err(DescriptorError::InvalidField("length"));
        }
        let flags = read_u32(bytes, 0x0c);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DescriptorError::InvalidField("flags"));
        }
        let vram_size = read_u64(bytes, 0x10);
        if vram_size == 0 {
            return Err(DescriptorError::InvalidField("vram_size"));
        }
        let dma_mask_bits = read_u32(bytes, 0x24);
        if !(32..=64).contains(&dma_mask_bits) {
            return Err(DescriptorError::InvalidField("dma_mask_bits"));
        }
        let gen = PcieGen::from_number(read_u32(bytes, 0x28))
            .ok_or(DescriptorError::InvalidField("pcie_gen"))?;
        let width = read_u32(bytes, 0x2c);
        if !crate::pcie::PCIE_WIDTHS.contains(&width) {
            return Err(DescriptorError::InvalidField("pcie_width"));
        }
        let hive_id = read_u64(bytes, 0x18);
        let xgmi = if hive_id == 0 {
            None
        } else {
            let position = read_u32(bytes, 0x38);
            let hive_size = read_u32(bytes, 0x3c);
            if hive_size == 0 || hive_size as usize > XGMI_MAX_HIVE || position >= hive_size {
                return Err(DescriptorError::InvalidField("xgmi_position"));
            }
            Some(XgmiFacts {
                hive_id,
                position,
                hive_size,
                link_bandwidth_mbs: read_u32(bytes, 0x40),
                peers: read_xgmi_peers(bytes, position, hive_size)?,
            })
        };
        Ok(Descriptor {
            vram_size,
            numa_node: read_u32(bytes, 0x20),
            dma_mask_bits,
            pcie: PcieLink { gen, width },
            pcie_atomics: flags & FLAG_PCIE_ATOMICS != 0,
            xgmi_connected_to_cpu: flags & FLAG_XGMI_CONNECTED_TO_CPU != 0,
            xgmi,
            gfx_target_version: read_u32(bytes, 0x30),
            simd_count: read_u32(bytes, 0x34),
            unique_id: read_u64(bytes, 0x48),
        })
    }
}
