//! The PCI core's host-bridge rules for P2P DMA (drivers/pci/p2pdma.c), once: when the
//! traffic must cross the host bridge, `pci_p2pdma_distance` allows it only if
//! `cpu_supports_p2pdma()` or `host_bridge_whitelist()` says so. Used for specs
//! (`spec::LayoutP2pdma`) and for a running machine's sysfs (`machine_facts`).

/// `PCI_ANY_ID` in a whitelist entry: every device of the vendor.
const ANY_DEVICE: Option<u16> = None;

/// An entry of `pci_p2pdma_whitelist`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WhitelistEntry {
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id; `None` for `PCI_ANY_ID`.
    pub device: Option<u16>,
    /// `REQ_SAME_HOST_BRIDGE`: both devices must sit under this one host bridge.
    pub same_host_bridge_only: bool,
}

const fn entry(vendor: u16, device: Option<u16>, same_host_bridge_only: bool) -> WhitelistEntry {
    WhitelistEntry {
        vendor,
        device,
        same_host_bridge_only,
    }
}

const INTEL: u16 = 0x8086;
const GOOGLE: u16 = 0x1ae0;
const NVIDIA: u16 = 0x10de;

/// `pci_p2pdma_whitelist` of Linux 7.3, in its order (the first vendor/device match decides).
pub const P2PDMA_WHITELIST: &[WhitelistEntry] = &[
    // Intel Xeon E5 / Core i7.
    entry(INTEL, Some(0x3c00), true),
    entry(INTEL, Some(0x3c01), true),
    // Intel Xeon E7 v3 / Xeon E5 v3 / Core i7.
    entry(INTEL, Some(0x2f00), true),
    entry(INTEL, Some(0x2f01), true),
    // Intel Skylake-E.
    entry(INTEL, Some(0x2030), false),
    entry(INTEL, Some(0x2031), false),
    entry(INTEL, Some(0x2032), false),
    entry(INTEL, Some(0x2033), false),
    entry(INTEL, Some(0x2020), false),
    entry(INTEL, Some(0x09a2), false),
    // Intel DSA/IAX/QAT root-complex integrated endpoints (SPR, GNR-D, DMR).
    entry(INTEL, Some(0x0b25), false),
    entry(INTEL, Some(0x0cfe), false),
    entry(INTEL, Some(0x11fb), false),
    entry(INTEL, Some(0x1212), false),
    entry(INTEL, Some(0x1216), false),
    entry(INTEL, Some(0x4940), false),
    entry(INTEL, Some(0x4942), false),
    entry(INTEL, Some(0x4944), false),
    entry(INTEL, Some(0x4946), false),
    entry(INTEL, Some(0x4948), false),
    // Google SoCs.
    entry(GOOGLE, ANY_DEVICE, false),
    // Nvidia CPUs.
    entry(NVIDIA, Some(0x2f95), false),
    entry(NVIDIA, Some(0x2f96), false),
    entry(NVIDIA, Some(0x2f97), false),
    entry(NVIDIA, Some(0x2f98), false),
];

/// `/proc/cpuinfo`'s `vendor_id` of AMD CPUs.
pub const AMD_CPU_VENDOR: &str = "AuthenticAMD";
/// The first Zen family (`cpu_supports_p2pdma`: family >= 0x17).
pub const ZEN_FAMILY: u32 = 0x17;

/// `cpu_supports_p2pdma()`: any AMD CPU of family Zen (0x17) or newer.
pub fn cpu_supports_p2pdma(vendor: &str, family: u32) -> bool {
    vendor == AMD_CPU_VENDOR && family >= ZEN_FAMILY
}

/// `__host_bridge_whitelist()`: whether the host bridge device `(vendor, device)` (its root
/// bus's device 00.0 or first root port) allows P2P, for two devices under the same host
/// bridge or not. `None` (no such device, or unknown) never does.
pub fn host_bridge_whitelisted(id: Option<(u16, u16)>, same_host_bridge: bool) -> bool {
    let Some((vendor, device)) = id else {
        return false;
    };
    P2PDMA_WHITELIST
        .iter()
        .find(|e| e.vendor == vendor && e.device.is_none_or(|d| d == device))
        .is_some_and(|e| same_host_bridge || !e.same_host_bridge_only)
}

/// `host_bridge_whitelist(a, b)`: under one host bridge, that bridge decides with
/// `same_host_bridge`; under two, both must allow it without.
pub fn host_bridges_whitelisted(a: Option<(u16, u16)>, b: Option<(u16, u16)>, same: bool) -> bool {
    if same {
        host_bridge_whitelisted(a, true)
    } else {
        host_bridge_whitelisted(a, false) && host_bridge_whitelisted(b, false)
    }
}
