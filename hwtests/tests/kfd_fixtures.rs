//! KFD validation on committed fixture machines: good trees pass (the prediction reproduces
//! upstream's max_bandwidth bug, so nothing is left to excuse), deliberately wrong trees fail
//! with the link and field named.

mod common;

use common::{assert_all_pass, fixture, run_kfd};
use hsa_p2p_core::gate::DenialReason;
use hsa_p2p_core::link::LinkFlags;
use hsa_p2p_hwtests::kfd_validation::{validate, TreeKind};
use hsa_p2p_hwtests::machine_facts::Inventory;
use hsa_p2p_hwtests::report::{Case, Outcome};
use hsa_p2p_hwtests::{Context, Filter, ModuleState};
use hsa_p2p_runtime::sysfs::read_topology;

fn case<'a>(cases: &'a [Case], name: &str) -> &'a Case {
    cases
        .iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no case {name} in {cases:#?}"))
}

#[test]
fn mi210_pair_passes_with_amdkfds_bandwidth_bug_predicted() {
    let cases = run_kfd("mi210-pair");
    assert_eq!(cases.len(), 4);
    assert_all_pass("mi210-pair", &cases);
    let properties = case(&cases, "p2p_link_properties_match_rules");
    assert_eq!(properties.notes, Vec::<String>::new());
    // kfd_add_peer_prop (kfd_topology.c): max_bandwidth = min(iolink2, iolink2), the accessor's
    // x16 link (32000), although the owner sits on x8 (16000, the corrected figure).
    let root = fixture("mi210-pair");
    let inventory = Inventory::collect(&root).unwrap();
    let tree = read_topology(&root.join("sys/class/kfd/kfd/topology")).unwrap();
    let validation = validate(&inventory, &tree, TreeKind::Kfd, true).unwrap();
    assert_eq!(
        validation.predicted.p2p_link(1, 2).unwrap().max_bandwidth,
        32000
    );
    assert_eq!(
        validation.predicted.p2p_link(2, 1).unwrap().max_bandwidth,
        16000
    );
}

#[test]
fn four_gpu_machine_with_small_bar_and_chipset_refusals_passes() {
    let cases = run_kfd("four-gpu-intel");
    assert_all_pass("four-gpu-intel", &cases);
    // No deviation: every accessor's link is the slower one of its pairs.
    assert!(case(&cases, "p2p_link_properties_match_rules")
        .notes
        .is_empty());
}

#[test]
fn the_prediction_refuses_exactly_the_pairs_the_rules_refuse() {
    let root = fixture("four-gpu-intel");
    let inventory = Inventory::collect(&root).unwrap();
    let tree = read_topology(&root.join("sys/class/kfd/kfd/topology")).unwrap();
    let validation = validate(&inventory, &tree, TreeKind::Kfd, true).unwrap();
    assert!(validation.findings.is_empty(), "{:?}", validation.findings);
    let predicted = &validation.predicted;
    let reasons = |from, to| {
        predicted
            .denial(from, to)
            .map(|denial| denial.reasons.iter().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    // Nobody reaches the small-BAR MI50 (node 3); it reaches the MI100s behind its switch.
    assert_eq!(reasons(1, 3), vec![DenialReason::SmallBar]);
    assert_eq!(reasons(2, 3), vec![DenialReason::SmallBar]);
    assert!(predicted.p2p_link(3, 1).is_some());
    // Node 4 sits on another root port of a host bridge that is not whitelisted.
    assert_eq!(reasons(1, 4), vec![DenialReason::Chipset]);
    assert_eq!(reasons(4, 1), vec![DenialReason::Chipset]);
    assert_eq!(
        reasons(4, 3),
        vec![DenialReason::Chipset, DenialReason::SmallBar]
    );
    assert_eq!(reasons(3, 4), vec![DenialReason::Chipset]);
    // The MI50 cannot do atomics: its peer links carry NO_ATOMICS; with no link back they are
    // not marked NON_COHERENT (kfd_fill_iolink_non_crat_info / kfd_set_iolink_non_coherent,
    // kfd_topology.c): flags 13.
    let flags = predicted.p2p_link(3, 1).unwrap().flags;
    assert_eq!(flags, LinkFlags(13));
    // No CPU -> GPU io_link to the small-BAR MI50 (kfd_fill_gpu_direct_io_link_to_cpu,
    // kfd_crat.c), in the prediction as in the tree.
    assert!(predicted.io_link(0, 3).is_none() && tree.io_link(0, 3).is_none());
}

#[test]
fn a_wrong_link_weight_fails_naming_link_and_field() {
    let cases = run_kfd("mi210-pair-wrong-weight");
    assert_eq!(
        case(&cases, "peer_access_matches_gate").outcome,
        Outcome::Pass
    );
    assert_eq!(
        case(&cases, "p2p_link_properties_match_rules").outcome,
        Outcome::Fail(vec![
            "node 2 (0000:04:00.0) -> node 1 (0000:03:00.0): weight is 60, the rules predict 40"
                .into()
        ])
    );
}

#[test]
fn a_link_to_a_small_bar_gpu_fails_with_the_gate_reason() {
    let cases = run_kfd("four-gpu-intel-small-bar-link");
    assert_eq!(
        case(&cases, "peer_access_matches_gate").outcome,
        Outcome::Fail(vec![
            "node 1 (0000:03:00.0) -> node 3 (0000:05:00.0): p2p link present, but the rules \
             refuse peer access (small BAR)"
                .into()
        ])
    );
}

#[test]
fn without_hsa_amd_p2p_every_peer_link_is_unexpected() {
    // The same tree judged as if amdgpu had no pcie_p2p: the gate refuses every pair.
    let root = fixture("mi210-pair");
    let inventory = Inventory::collect(&root).unwrap();
    let tree = read_topology(&root.join("sys/class/kfd/kfd/topology")).unwrap();
    let validation = validate(&inventory, &tree, TreeKind::Kfd, false).unwrap();
    let problems = validation.presence_problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].ends_with("(pcie_p2p disabled)"), "{problems:?}");
}

#[test]
fn module_and_transfer_tests_are_skipped_on_a_kfd_machine() {
    let context = Context::new(fixture("mi210-pair"), ModuleState::Unknown);
    let run = hsa_p2p_hwtests::run("fixture", &context, &Filter::default());
    for case in run.cases.iter().filter(|c| c.suite != "kfd") {
        assert!(
            case.outcome.is_skip(),
            "{}: {:?}",
            case.full_name(),
            case.outcome
        );
    }
}
