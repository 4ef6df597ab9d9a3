//! APUs' integrated GPUs (`apu = true`): carve-out VRAM in system memory, no BAR. Linux 7.3 has
//! no APU rule in the peer-access gate, so amdkfd publishes what it publishes for a large-BAR
//! GPU whose aperture is the carve-out's physical address. Shipped example:
//! `topologies/ryzen-8700g-apu-with-rx7900xtx.toml`.

mod common;

use common::p2pctl;
use hsa_p2p_core::gate::DenialReason;
use hsa_p2p_core::node::HeapType;
use hsa_p2p_runtime::predict::predict;
use hsa_p2p_runtime::spec::Spec;

const SPEC: &str = "topologies/ryzen-8700g-apu-with-rx7900xtx.toml";
/// KFD node ids: the CPU, then the GPUs in spec order.
const CPU: u32 = 0;
const DGPU: u32 = 1;
const IGPU: u32 = 2;

fn spec(text_edit: impl Fn(String) -> String) -> Result<Spec, String> {
    let text = std::fs::read_to_string(common::repo().join(SPEC)).unwrap();
    Spec::parse(&text_edit(text), "apu.toml").map_err(|error| error.to_string())
}

#[test]
fn the_carve_out_counts_as_a_large_bar_so_both_directions_get_peer_links() {
    let prediction = predict(&spec(|text| text).unwrap()).unwrap();
    let topology = &prediction.topology;
    let igpu = topology.node(IGPU).unwrap();
    // amdgpu_amdkfd_get_local_mem_info: visible == real VRAM (gmc_v11_0_mc_init sets
    // aper_size = real_vram_size for AMD_IS_APU): all of it public.
    assert_eq!(igpu.mem_banks[0].heap_type, HeapType::FrameBufferPublic);
    assert_eq!(igpu.mem_banks[0].size_in_bytes, 2 << 30);
    // kfd_fill_gpu_direct_io_link_to_cpu: kfd_dev_is_large_bar -> BI_DIRECTIONAL, so
    // kfd_parse_subtype_iolink adds the CPU -> iGPU io_link.
    assert!(topology.io_link(CPU, IGPU).is_some());
    // amdgpu_device_is_peer_accessible(owner, accessor): large BAR, the Zen host bridge
    // (cpu_supports_p2pdma), the carve-out below the peer's 44-bit DMA mask; kfd_add_peer_prop
    // records the link on the accessor.
    assert!(topology.p2p_link(DGPU, IGPU).is_some());
    assert!(topology.p2p_link(IGPU, DGPU).is_some());
}

#[test]
fn the_gate_still_applies_to_an_apu_as_to_any_large_bar_owner() {
    // The same machine on an Intel host bridge that is not whitelisted: pci_p2pdma_distance
    // refuses the path through the host bridge, APU or not.
    let prediction = predict(
        &spec(|text| {
            text.replace("\"AuthenticAMD\"", "\"GenuineIntel\"")
                .replace("0x19", "6")
        })
        .unwrap(),
    )
    .unwrap();
    let denial = prediction.topology.denial(DGPU, IGPU).unwrap();
    assert_eq!(
        denial.reasons.iter().collect::<Vec<_>>(),
        vec![DenialReason::Chipset]
    );
}

#[test]
fn an_apu_spec_must_give_its_carve_out_address_and_no_bar() {
    let with_bar = spec(|text| text.replace("apu = true\n", "apu = true\nbar = \"256M\"\n"));
    let error = with_bar.unwrap_err();
    assert!(error.contains("an APU has no VRAM BAR"), "{error}");
    let without_address = spec(|text| text.replace("bar_address = 0x80000000\n", ""));
    let error = without_address.unwrap_err();
    assert!(error.contains("an APU needs `bar_address`"), "{error}");
}

#[test]
fn why_names_the_apu_on_either_side_of_a_pair() {
    for (from, to) in [("rx7900xtx", "radeon780m"), ("radeon780m", "rx7900xtx")] {
        let text = p2pctl(&["why", from, to, "--spec", SPEC]);
        insta::assert_snapshot!(format!("why-{from}-{to}"), text);
    }
}
