//! The emulated GPU's descriptor page: round trip and every refusal.

use hsa_p2p_core::descriptor::{Descriptor, DescriptorError, PciIdentity, DESCRIPTOR_LEN};
use hsa_p2p_core::facts::{PciAddress, XgmiFacts, XgmiPeer, XgmiWiring, XGMI_MAX_HIVE};
use hsa_p2p_core::pcie::{PcieGen, PcieLink};
use proptest::prelude::*;

fn sample() -> Descriptor {
    Descriptor {
        vram_size: 128 << 20,
        numa_node: 1,
        dma_mask_bits: 44,
        pcie: PcieLink {
            gen: PcieGen::Gen4,
            width: 16,
        },
        pcie_atomics: true,
        xgmi_connected_to_cpu: false,
        xgmi: Some(XgmiFacts::member(0xabcd, 2, 4, 23000, XgmiWiring::Ring(2))),
        gfx_target_version: 90010,
        simd_count: 416,
        unique_id: 0x1122_3344_5566_7788,
    }
}

#[test]
fn round_trips() {
    let mut page = vec![0u8; 4096];
    page[..DESCRIPTOR_LEN].copy_from_slice(&sample().encode());
    assert_eq!(Descriptor::decode(&page), Ok(sample()));
    let no_hive = Descriptor {
        xgmi: None,
        ..sample()
    };
    assert_eq!(Descriptor::decode(&no_hive.encode()), Ok(no_hive));
}

#[test]
fn facts_round_trip_through_the_descriptor_and_the_pci_identity() {
    let pci = PciIdentity {
        pci: PciAddress {
            domain: 0,
            bus: 3,
            device: 0,
            function: 0,
        },
        vendor_id: 0x1af4,
        device_id: 0x1110,
        bar_base: 0xfe00_0000,
        bar_size: 64 << 20,
    };
    let facts = sample().gpu_facts(pci);
    assert_eq!(Descriptor::of(&facts), sample());
    assert_eq!(
        (facts.pci, facts.bar_size, facts.drm_render_minor),
        (pci.pci, pci.bar_size, 0)
    );
}

#[test]
fn refuses_missing_short_corrupt_and_invalid_pages() {
    assert_eq!(Descriptor::decode(&[0; 16]), Err(DescriptorError::TooShort));
    assert_eq!(
        Descriptor::decode(&[0; DESCRIPTOR_LEN]),
        Err(DescriptorError::BadMagic(0))
    );
    let mut corrupt = sample().encode();
    corrupt[0x10] ^= 1;
    assert_eq!(
        Descriptor::decode(&corrupt),
        Err(DescriptorError::BadChecksum)
    );
    let mut future = sample().encode();
    future[4] = 9;
    assert_eq!(
        Descriptor::decode(&future),
        Err(DescriptorError::UnsupportedVersion(9))
    );
    let bad_mask = Descriptor {
        dma_mask_bits: 16,
        ..sample()
    };
    assert_eq!(
        Descriptor::decode(&bad_mask.encode()),
        Err(DescriptorError::InvalidField("dma_mask_bits"))
    );
    let bad_width = Descriptor {
        pcie: PcieLink {
            gen: PcieGen::Gen3,
            width: 3,
        },
        ..sample()
    };
    assert_eq!(
        Descriptor::decode(&bad_width.encode()),
        Err(DescriptorError::InvalidField("pcie_width"))
    );
}

/// The XGMI topology table a descriptor carries must be one the PSP could report
/// (`psp_xgmi_node_info`): nothing for itself or beyond the hive, 1..=7 hops to each peer
/// (amdgpu_xgmi_get_hops_count reads 3 bits), links only to a peer one hop away.
#[test]
fn refuses_xgmi_tables_the_psp_could_not_report() {
    type Edit = dyn Fn(&mut [XgmiPeer; XGMI_MAX_HIVE]);
    let with_peers = |edit: &Edit| {
        let mut xgmi = sample().xgmi.unwrap();
        edit(&mut xgmi.peers);
        Descriptor::decode(
            &Descriptor {
                xgmi: Some(xgmi),
                ..sample()
            }
            .encode(),
        )
    };
    let invalid = Err(DescriptorError::InvalidField("xgmi_peers"));
    // sample(): position 2 of a ring of 4: peers 1 and 3 one hop (2 links), peer 0 two hops.
    assert_eq!(with_peers(&|_| {}), Ok(sample()));
    let cases: [(&str, &Edit); 5] = [
        ("an entry for itself", &|p| p[2].num_hops = 1),
        ("an entry beyond the hive", &|p| p[4].num_hops = 1),
        ("a peer with no hops", &|p| p[0].num_hops = 0),
        ("eight hops", &|p| p[0].num_hops = 8),
        ("links to a peer two hops away", &|p| p[0].num_links = 1),
    ];
    for (what, edit) in cases {
        assert_eq!(with_peers(edit), invalid, "{what}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Descriptor::decode(&bytes);
    }

    #[test]
    fn any_single_bit_flip_is_detected(byte in 0..DESCRIPTOR_LEN, bit in 0..8u8) {
        let mut encoded = sample().encode();
        encoded[byte] ^= 1 << bit;
        prop_assert_ne!(Descriptor::decode(&encoded), Ok(sample()));
    }
}
