//! The `kfd` suite on kernels whose amdkfd/amdgpu lack HSA_AMD_P2P: the mi210-pair machine with
//! amdgpu built without CONFIG_HSA_AMD_P2P (p2p_links_count, no peer link, no `pcie_p2p`
//! parameter) and with an amdkfd older than p2p_links (no p2p_links_count at all). Neither is a
//! failure: the tree is compared with what such a kernel publishes, and the case says why there
//! is no peer link in the words `p2pctl why` uses.

mod common;

use common::{assert_all_pass, fixture, run_kfd};
use hsa_p2p_core::gate::DenialReason;
use hsa_p2p_hwtests::kfd_validation::{validate, TreeKind};
use hsa_p2p_hwtests::machine_facts::Inventory;
use hsa_p2p_runtime::explain::{explain_on_machine, Verdict};
use hsa_p2p_runtime::sysfs::read_topology;

/// The first reason `p2pctl why 1 2` gives on the fixture machine, as "name: explanation".
fn why_reason(machine: &str) -> String {
    let root = fixture(machine);
    let tree = read_topology(&root.join("sys/class/kfd/kfd/topology")).unwrap();
    let explanation = explain_on_machine(&tree, 1, 2, &root).unwrap();
    let Verdict::Denied { reasons, .. } = explanation.verdict else {
        panic!("{machine}: pair 1 -> 2 allowed: {explanation:?}");
    };
    format!("{}: {}", reasons[0].name, reasons[0].explanation)
}

fn assert_all_pass_noting(machine: &str, reason: &str) {
    let cases = run_kfd(machine);
    assert_eq!(cases.len(), 4, "{cases:#?}");
    assert_all_pass(machine, &cases);
    for name in [
        "peer_access_matches_gate",
        "p2p_link_properties_match_rules",
    ] {
        let case = cases.iter().find(|case| case.name == name).unwrap();
        assert!(
            case.notes.iter().any(|note| note == reason),
            "{machine}: {name} does not say {reason:?}: {:?}",
            case.notes
        );
    }
}

#[test]
fn without_hsa_amd_p2p_the_tree_passes_and_says_why_there_are_no_peer_links() {
    // kfd_dev_create_p2p_links (kfd_topology.c) adds peer links only #if CONFIG_HSA_AMD_P2P;
    // amdgpu declares pcie_p2p (amdgpu_drv.c) only then too.
    let machine = "mi210-pair-without-hsa-amd-p2p";
    let reason = why_reason(machine);
    let expected = DenialReason::NoHsaAmdP2p;
    assert_eq!(
        reason,
        format!("{}: {}", expected.name(), expected.explanation())
    );
    assert_all_pass_noting(machine, &reason);
}

#[test]
fn before_p2p_links_the_tree_passes_and_says_why_there_are_no_peer_links() {
    // node_show (kfd_topology.c) prints p2p_links_count whenever amdkfd has p2p_links: a tree
    // without it comes from an amdkfd that predates them, whatever the config.
    let machine = "mi210-pair-before-p2p-links";
    let reason = why_reason(machine);
    assert!(reason.starts_with("kernel without p2p_links: "), "{reason}");
    assert_all_pass_noting(machine, &reason);
}

#[test]
fn before_p2p_links_why_still_says_what_a_kernel_with_them_would_decide() {
    // The comparison drops the p2p_links such a kernel cannot publish; the prediction that
    // `p2pctl why` weighs the pair with keeps them (pcie_p2p assumed on without the parameter).
    let root = fixture("mi210-pair-before-p2p-links");
    let tree = read_topology(&root.join("sys/class/kfd/kfd/topology")).unwrap();
    let explanation = explain_on_machine(&tree, 1, 2, &root).unwrap();
    let Verdict::Denied { hints, .. } = explanation.verdict else {
        panic!("pair 1 -> 2 allowed");
    };
    assert!(
        hints.iter().any(|hint| hint
            == "with p2p_links and HSA_AMD_P2P, the rules applied to the machine's PCI facts \
                allow this pair"),
        "{hints:#?}"
    );
}

#[test]
fn before_p2p_links_the_peer_links_the_rules_predict_are_not_missing_links() {
    // Judged as if pcie_p2p were on, the rules give both pairs a peer link
    // (kfd_dev_create_p2p_links); an amdkfd without p2p_links publishes none, which is no
    // disagreement.
    let root = fixture("mi210-pair-before-p2p-links");
    let inventory = Inventory::collect(&root).unwrap();
    let tree = read_topology(&root.join("sys/class/kfd/kfd/topology")).unwrap();
    let validation = validate(&inventory, &tree, TreeKind::Kfd, true).unwrap();
    assert!(validation.predicted.p2p_link(1, 2).is_some());
    assert!(validation.predicted.p2p_link(2, 1).is_some());
    assert_eq!(validation.findings, Vec::new());
}
