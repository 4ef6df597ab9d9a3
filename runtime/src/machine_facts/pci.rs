//! One PCI function as sysfs shows it under `/sys/bus/pci/devices/<address>`.

use std::fs;
use std::path::{Path, PathBuf};

use hsa_p2p_core::facts::PciAddress;
use hsa_p2p_core::pcie::{PcieGen, PcieLink};

use super::acs;
use super::FactsError;

/// One line of the `resource` file: a BAR (lines 0..=5), the ROM, or a bridge window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// First bus address.
    pub start: u64,
    /// Last bus address (inclusive); 0 with `start` 0 for an unused resource.
    pub end: u64,
    /// `IORESOURCE_*` flags.
    pub flags: u64,
}

impl Resource {
    /// Size in bytes (0 when unused).
    pub fn size(&self) -> u64 {
        if self.end <= self.start && self.start == 0 {
            0
        } else {
            self.end.saturating_sub(self.start).saturating_add(1)
        }
    }
}

/// What the rules need to know about one PCI function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// Its address.
    pub address: PciAddress,
    /// The resolved device directory (below `/sys/devices/pciDDDD:BB/…`).
    pub path: PathBuf,
    /// The host bridge directory name (`pci0000:00`), i.e. the root bus it hangs off.
    pub host_bridge: String,
    /// The bridges above it, nearest first, up to the root port (what `pci_upstream_bridge`
    /// walks).
    pub upstream: Vec<PciAddress>,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class code (24 bits).
    pub class: u32,
    /// The `resource` lines.
    pub resources: Vec<Resource>,
    /// Current link (`current_link_speed` / `current_link_width`).
    pub current_link: Option<PcieLink>,
    /// Maximum link (`max_link_speed` / `max_link_width`).
    pub max_link: Option<PcieLink>,
    /// NUMA node (`numa_node`; None for -1).
    pub numa_node: Option<u32>,
    /// IOMMU group number (the `iommu_group` link).
    pub iommu_group: Option<u32>,
    /// The group's domain type (`/sys/kernel/iommu_groups/N/type`: `DMA`, `DMA-FQ`, `identity`…).
    pub iommu_group_type: Option<String>,
    /// DMA mask width (`dma_mask_bits`).
    pub dma_mask_bits: Option<u32>,
    /// amdgpu's `mem_info_vram_total` (bytes).
    pub vram_total: Option<u64>,
    /// amdgpu's `mem_info_vis_vram_total` (bytes visible through the BAR).
    pub visible_vram_total: Option<u64>,
    /// Bound driver (the `driver` link's name).
    pub driver: Option<String>,
    /// ACS redirect (RR, CR or EC enabled) on this bridge, if its config space was readable.
    pub acs_redirect: Option<bool>,
}

impl PciDevice {
    /// Whether this is a PCI-PCI bridge (class 0x0604), i.e. a root or switch port.
    pub fn is_bridge(&self) -> bool {
        self.class >> 8 == 0x0604
    }

    /// Whether this is a display controller (class 0x03xxxx), which AMD GPUs are.
    pub fn is_display(&self) -> bool {
        self.class >> 16 == 0x03
    }

    /// BAR `index` (0..=5), when it is in use.
    pub fn bar(&self, index: usize) -> Option<Resource> {
        self.resources
            .get(index)
            .copied()
            .filter(|bar| index < 6 && bar.size() > 0)
    }

    /// The link amdgpu reports as the GPU's PCIe bandwidth.
    ///
    /// amdgpu derives it from the speeds and widths both the GPU and its slot support
    /// (`pcie_gen_mask`/`pcie_mlw_mask`), not from the momentary link state, which power
    /// management lowers at idle. The closest sysfs picture is the GPU's maximum link capped by
    /// its upstream port's; the current link stands in where the maxima are unknown.
    pub fn capable_link(&self, upstream_port: Option<&PciDevice>) -> Option<PcieLink> {
        let own = self.max_link.or(self.current_link)?;
        let Some(port) = upstream_port.and_then(|port| port.max_link) else {
            return Some(own);
        };
        Some(PcieLink {
            gen: own.gen.min(port.gen),
            width: own.width.min(port.width),
        })
    }
}

/// Parses `DDDD:BB:DD.F`.
pub fn parse_address(text: &str) -> Option<PciAddress> {
    let (domain, rest) = text.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (device, function) = rest.split_once('.')?;
    Some(PciAddress {
        domain: u32::from_str_radix(domain, 16).ok()?,
        bus: u8::from_str_radix(bus, 16).ok()?,
        device: u8::from_str_radix(device, 16).ok().filter(|d| *d < 32)?,
        function: u8::from_str_radix(function, 16).ok().filter(|f| *f < 8)?,
    })
}

/// `0x1002` (sysfs hex) to a number.
fn parse_hex(text: &str) -> Option<u64> {
    let text = text.trim();
    u64::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

/// `16.0 GT/s PCIe` (or `16 GT/s`) to a generation; 64 GT/s (Gen6) counts as Gen5, the
/// fastest amdgpu's bandwidth table knows.
fn parse_speed(text: &str) -> Option<PcieGen> {
    let rate: f64 = text.split_whitespace().next()?.parse().ok()?;
    let gen = match rate {
        r if r < 4.0 => PcieGen::Gen1,
        r if r < 7.0 => PcieGen::Gen2,
        r if r < 12.0 => PcieGen::Gen3,
        r if r < 24.0 => PcieGen::Gen4,
        _ => PcieGen::Gen5,
    };
    Some(gen)
}

fn parse_link(speed: Option<String>, width: Option<String>) -> Option<PcieLink> {
    let gen = parse_speed(&speed?)?;
    let width: u32 = width?.trim().parse().ok()?;
    (width > 0).then_some(PcieLink { gen, width })
}

/// The lines of a device's sysfs `resource` file (`start end flags`, hexadecimal), in order.
pub fn parse_resources(text: &str) -> Vec<Resource> {
    text.lines()
        .map(|line| {
            let mut fields = line.split_whitespace().map(parse_hex);
            let mut next = || fields.next().flatten().unwrap_or(0);
            Resource {
                start: next(),
                end: next(),
                flags: next(),
            }
        })
        .collect()
}

fn read_text(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn link_name(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// Reads the device whose entry is `entry` (`<sys>/bus/pci/devices/<address>`); `sys` is the
/// sysfs root, for the IOMMU group types.
pub fn read_device(sys: &Path, entry: &Path) -> Result<PciDevice, FactsError> {
    let name = entry
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bad = |message: String| FactsError::Device {
        path: entry.to_path_buf(),
        message,
    };
    let address = parse_address(&name).ok_or_else(|| bad("not a PCI address".into()))?;
    let path = fs::canonicalize(entry).map_err(|e| bad(format!("cannot resolve: {e}")))?;

    // .../devices/pci0000:00/0000:00:01.1/0000:01:00.0/<address>: the host bridge directory,
    // then every bridge down to the device.
    let components: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let host_index = components
        .iter()
        .rposition(|c| c.starts_with("pci") && c.contains(':'))
        .ok_or_else(|| bad(format!("{} is not below a host bridge", path.display())))?;
    let host_bridge = components[host_index].clone();
    let mut upstream: Vec<PciAddress> = components[host_index + 1..]
        .iter()
        .filter_map(|c| parse_address(c))
        .filter(|a| *a != address)
        .collect();
    upstream.reverse();

    let hex = |file: &str| read_text(&path.join(file)).and_then(|t| parse_hex(&t));
    let decimal =
        |file: &str| read_text(&path.join(file)).and_then(|t| t.trim().parse::<i64>().ok());
    let vendor = hex("vendor").ok_or_else(|| bad("no vendor".into()))? as u16;
    let device = hex("device").ok_or_else(|| bad("no device".into()))? as u16;
    let class = hex("class").unwrap_or(0) as u32;
    let iommu_group = link_name(&path.join("iommu_group")).and_then(|n| n.parse().ok());
    let iommu_group_type = iommu_group.and_then(|group: u32| {
        read_text(&sys.join(format!("kernel/iommu_groups/{group}/type")))
            .map(|t| t.trim().to_string())
    });
    let config = fs::read(path.join("config")).unwrap_or_default();
    Ok(PciDevice {
        address,
        host_bridge,
        upstream,
        vendor,
        device,
        class,
        resources: read_text(&path.join("resource"))
            .map(|t| parse_resources(&t))
            .unwrap_or_default(),
        current_link: parse_link(
            read_text(&path.join("current_link_speed")),
            read_text(&path.join("current_link_width")),
        ),
        max_link: parse_link(
            read_text(&path.join("max_link_speed")),
            read_text(&path.join("max_link_width")),
        ),
        numa_node: decimal("numa_node").and_then(|n| u32::try_from(n).ok()),
        iommu_group,
        iommu_group_type,
        dma_mask_bits: decimal("dma_mask_bits").and_then(|n| u32::try_from(n).ok()),
        vram_total: decimal("mem_info_vram_total").and_then(|n| u64::try_from(n).ok()),
        visible_vram_total: decimal("mem_info_vis_vram_total").and_then(|n| u64::try_from(n).ok()),
        driver: link_name(&path.join("driver")),
        acs_redirect: acs::redirect_enabled(&config),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysfs_values() {
        assert_eq!(
            parse_address("0000:c1:00.0"),
            Some(PciAddress {
                domain: 0,
                bus: 0xc1,
                device: 0,
                function: 0
            })
        );
        assert_eq!(parse_address("0000:00:20.0"), None);
        assert_eq!(parse_speed("16.0 GT/s PCIe"), Some(PcieGen::Gen4));
        assert_eq!(parse_speed("2.5 GT/s PCIe"), Some(PcieGen::Gen1));
        assert_eq!(parse_speed("Unknown"), None);
        let resources = parse_resources(
            "0x0000030000000000 0x00000307ffffffff 0x000000000014220c\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n",
        );
        assert_eq!(resources[0].size(), 32 << 30);
        assert_eq!(resources[1].size(), 0);
    }
}
