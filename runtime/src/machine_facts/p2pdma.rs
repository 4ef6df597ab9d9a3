//! `pci_p2pdma_distance` approximated from sysfs.
//!
//! The PCI core does not publish its P2PDMA verdict, so it is recomputed with the kernel's
//! walk ([`crate::p2pdma::walk`]) from what sysfs shows:
//!
//! - the PCI hierarchy is the device's resolved directory (`/sys/devices/pci0000:00/<root
//!   port>/<switch ports>/<device>`): a common upstream bridge with no ACS redirect on the way
//!   means P2P through the switch (distance = hops up from both ends);
//! - otherwise the traffic crosses the host bridge, which the kernel allows when the CPU is an
//!   AMD Zen or newer (`cpu_supports_p2pdma`, from `/proc/cpuinfo`; without it, an AMD (1022)
//!   host bridge stands in for it) or the host bridge device (device 00.0 of the root bus) is on
//!   `pci_p2pdma_whitelist` (with its "same host bridge" restriction for the older Xeons).
//!
//! Approximations: ACS redirect is known only where the bridge's extended config space was
//! readable (root); a bridge whose state is unknown counts as not redirecting. The host bridge
//! device is looked up at device 00.0 of the root bus, whereas the kernel takes the root bus's
//! first device when it is 00.0 or a root port; the two agree on every x86 server layout.

use hsa_p2p_core::builder::P2pdmaOracle;
use hsa_p2p_core::facts::PciAddress;

use super::{Inventory, PciDevice};
use crate::host_bridge::host_bridges_whitelisted;
use crate::p2pdma::{walk, P2pdmaPath};

/// AMD's PCI vendor id: its host bridges stand in for "AMD CPU" when `/proc/cpuinfo` is absent.
pub const AMD_VENDOR: u16 = 0x1022;

impl Inventory {
    /// The device itself followed by its upstream bridges (the kernel's walk).
    fn chain(device: &PciDevice) -> Vec<PciAddress> {
        std::iter::once(device.address)
            .chain(device.upstream.iter().copied())
            .collect()
    }

    fn acs_redirects(&self, address: PciAddress) -> bool {
        self.device(address)
            .and_then(|device| device.acs_redirect)
            .unwrap_or(false)
    }

    /// The host bridge device of a root bus named `pciDDDD:BB`.
    fn host_bridge_device(&self, host_bridge: &str) -> Option<&PciDevice> {
        let (domain, bus) = host_bridge.strip_prefix("pci")?.split_once(':')?;
        self.device(PciAddress {
            domain: u32::from_str_radix(domain, 16).ok()?,
            bus: u8::from_str_radix(bus, 16).ok()?,
            device: 0,
            function: 0,
        })
    }

    /// The host bridge device's ids, as `__host_bridge_whitelist` compares them.
    fn host_bridge_id(&self, host_bridge: &str) -> Option<(u16, u16)> {
        self.host_bridge_device(host_bridge)
            .map(|root| (root.vendor, root.device))
    }

    fn host_bridges_allow(&self, a: &PciDevice, b: &PciDevice) -> bool {
        match self.platform.cpu_supports_p2pdma() {
            Some(true) => return true,
            // Without /proc/cpuinfo an AMD host bridge stands in for an AMD Zen CPU.
            None if [&a.host_bridge, &b.host_bridge].iter().all(|bridge| {
                self.host_bridge_id(bridge)
                    .is_some_and(|(vendor, _)| vendor == AMD_VENDOR)
            }) =>
            {
                return true
            }
            _ => {}
        }
        host_bridges_whitelisted(
            self.host_bridge_id(&a.host_bridge),
            self.host_bridge_id(&b.host_bridge),
            a.host_bridge == b.host_bridge,
        )
    }

    /// The path for `client` reaching `provider`'s memory.
    pub fn p2pdma(&self, provider: &PciDevice, client: &PciDevice) -> P2pdmaPath {
        walk(&Self::chain(provider), &Self::chain(client), |address| {
            self.acs_redirects(address)
        })
        .path(self.host_bridges_allow(provider, client))
    }
}

/// The oracle for a list of GPUs (builder index -> PCI device).
pub struct SysfsP2pdma<'a> {
    /// The inventory the devices belong to.
    pub inventory: &'a Inventory,
    /// The GPUs in builder order.
    pub gpus: Vec<&'a PciDevice>,
}

impl P2pdmaOracle for SysfsP2pdma<'_> {
    fn p2pdma_distance(&self, owner: usize, accessor: usize) -> Option<u32> {
        let (owner, accessor) = (self.gpus.get(owner)?, self.gpus.get(accessor)?);
        self.inventory.p2pdma(owner, accessor).distance()
    }
}
