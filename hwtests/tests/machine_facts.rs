//! PCI facts and the P2PDMA approximation read from fixture sysfs trees.

mod common;

use common::fixture;
use hsa_p2p_core::facts::{IommuMode, PciAddress};
use hsa_p2p_core::pcie::{PcieGen, PcieLink};
use hsa_p2p_hwtests::machine_facts::{parse_address, Inventory};
use hsa_p2p_runtime::p2pdma::P2pdmaPath;

fn address(text: &str) -> PciAddress {
    parse_address(text).unwrap()
}

#[test]
fn the_hierarchy_bars_and_links_come_from_sysfs() {
    let inventory = Inventory::collect(&fixture("mi210-pair")).unwrap();
    let gpu = inventory.device(address("0000:04:00.0")).unwrap();
    assert_eq!(gpu.host_bridge, "pci0000:00");
    assert_eq!(
        gpu.upstream,
        vec![
            address("0000:02:01.0"),
            address("0000:01:00.0"),
            address("0000:00:01.1")
        ]
    );
    let bar = gpu.bar(0).unwrap();
    assert_eq!((bar.start, bar.size()), (0x39000000000, 64 << 30));
    assert_eq!(gpu.vram_total, Some(68702699520));
    assert_eq!(gpu.driver.as_deref(), Some("amdgpu"));
    assert_eq!(gpu.iommu_group_type.as_deref(), Some("identity"));
    // The GPU is x16-capable but its slot is x8: amdgpu reports the common capability.
    assert_eq!(
        gpu.capable_link(inventory.upstream_port(gpu)),
        Some(PcieLink {
            gen: PcieGen::Gen4,
            width: 8
        })
    );
    assert_eq!(inventory.amdgpu_devices().len(), 2);
    assert_eq!(
        inventory.iommu_mode(&inventory.amdgpu_devices()),
        IommuMode::Passthrough
    );
    assert_eq!(inventory.platform.pcie_p2p, Some(true));
    assert_eq!(inventory.platform.cpu_supports_p2pdma(), Some(true));
}

#[test]
fn p2pdma_follows_the_kernel_walk() {
    let amd = Inventory::collect(&fixture("mi210-pair")).unwrap();
    let (a, b) = (
        amd.device(address("0000:03:00.0")).unwrap(),
        amd.device(address("0000:04:00.0")).unwrap(),
    );
    // Up two levels on each side to the switch's upstream port.
    assert_eq!(amd.p2pdma(a, b), P2pdmaPath::Switch { distance: 4 });

    let intel = Inventory::collect(&fixture("four-gpu-intel")).unwrap();
    let device = |text| intel.device(address(text)).unwrap();
    assert_eq!(
        intel.p2pdma(device("0000:03:00.0"), device("0000:05:00.0")),
        P2pdmaPath::Switch { distance: 4 }
    );
    // Different root ports of a host bridge (8086:a700) that is not whitelisted.
    assert_eq!(
        intel.p2pdma(device("0000:03:00.0"), device("0000:06:00.0")),
        P2pdmaPath::NotSupported {
            acs_redirected: false
        }
    );
    assert_eq!(intel.iommu_mode(&intel.amdgpu_devices()), IommuMode::Remap);
    // The switch ports' config space shows ACS without redirect.
    assert_eq!(device("0000:02:08.0").acs_redirect, Some(false));
    assert_eq!(device("0000:01:00.0").acs_redirect, None);
}

#[test]
fn the_preflight_description_names_iommu_acs_bars_and_pcie_p2p() {
    let inventory = Inventory::collect(&fixture("four-gpu-intel")).unwrap();
    let facts = inventory.describe();
    let value = |key: &str| {
        facts
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        value("iommu"),
        "units: dmar0; command line: intel_iommu=on; GPUs see: Remap"
    );
    assert!(value("acs_redirect").starts_with("no bridge redirects"));
    assert!(value("gpu_bars").contains("0000:05:00.0: BAR0 256 MiB, VRAM 32752 MiB"));
    assert_eq!(value("pcie_p2p"), "amdgpu pcie_p2p=Y");
}
