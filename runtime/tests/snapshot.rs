//! `p2pctl snapshot` round-trips on every hwtests fixture machine: the spec it writes predicts
//! exactly the topology the fixture tests expect there (the rules applied to the machine's
//! facts by `kfd_validation::validate`, as `cargo xtask test-hw` does).

use hsa_p2p_core::facts::PeerBandwidthRule;
use hsa_p2p_core::gate::DenialReason;
use hsa_p2p_runtime::kfd_validation::{validate, TreeKind};
use hsa_p2p_runtime::machine_facts::Inventory;
use hsa_p2p_runtime::peers::peer_pairs;
use hsa_p2p_runtime::predict::predict_with;
use hsa_p2p_runtime::snapshot::snapshot;
use hsa_p2p_runtime::spec::Spec;
use hsa_p2p_runtime::sysfs::read_topology;

mod common;

use common::hw_fixture as fixture;

#[test]
fn snapshot_predicts_what_the_fixture_tests_expect() {
    let machines = [
        (
            "four-gpu-intel",
            "sys/class/kfd/kfd/topology",
            TreeKind::Kfd,
        ),
        ("mi210-pair", "sys/class/kfd/kfd/topology", TreeKind::Kfd),
        (
            "vm-mixed-three-gpus",
            "sys/kernel/hsa_p2p/topology",
            TreeKind::HsaP2p,
        ),
    ];
    for (machine, tree_path, kind) in machines {
        let root = fixture(machine);
        let inventory = Inventory::collect(&root).unwrap();
        let tree = read_topology(&root.join(tree_path)).unwrap();
        let pcie_p2p = inventory.platform.pcie_p2p.unwrap_or(true);
        let expected = validate(&inventory, &tree, kind, pcie_p2p)
            .unwrap()
            .predicted;

        let text = snapshot(&root).unwrap().to_toml().unwrap();
        let spec = Spec::parse(&text, machine).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let rule = match kind {
            TreeKind::Kfd => PeerBandwidthRule::AsAmdkfd,
            TreeKind::HsaP2p => PeerBandwidthRule::Corrected,
        };
        let predicted = predict_with(&spec, rule).unwrap().topology;

        // Every fixture machine has peer links to compare.
        assert!(
            expected.nodes.iter().any(|n| !n.p2p_links.is_empty()),
            "{machine}"
        );
        assert_eq!(predicted.nodes.len(), expected.nodes.len(), "{machine}");
        for (got, want) in predicted.nodes.iter().zip(&expected.nodes) {
            let at = format!("{machine}: node {}", want.id);
            assert_eq!(got.pci_address(), want.pci_address(), "{at}");
            assert_eq!(got.io_links, want.io_links, "{at}: io_links");
            assert_eq!(got.p2p_links, want.p2p_links, "{at}: p2p_links");
            assert_eq!(got.p2p_denials, want.p2p_denials, "{at}: p2p_denials");
            assert_eq!(got.mem_banks, want.mem_banks, "{at}: mem_banks");
        }
    }
}

/// The command writes the spec to stdout, and says why when there is nothing to describe.
#[test]
fn p2pctl_snapshot_writes_a_spec_or_says_what_is_missing() {
    let run = |root: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_p2pctl"))
            .args(["snapshot", "--root"])
            .arg(root)
            .output()
            .unwrap()
    };
    let out = run(&fixture("mi210-pair"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let spec = Spec::parse(&text, "snapshot").unwrap();
    assert_eq!(spec.gpus.len(), 2);
    assert_eq!(spec.platform.cpu_vendor.as_deref(), Some("AuthenticAMD"));

    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("sys/bus/pci/devices")).unwrap();
    let out = run(empty.path());
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no GPU topology below") && err.contains("needs amdgpu and amdkfd"),
        "{err}"
    );
}

/// On a machine whose amdgpu has no pcie_p2p parameter (built without CONFIG_HSA_AMD_P2P) the
/// spec says so, every pair is predicted `no HSA_AMD_P2P`, and the comment says how to ask
/// what the option would do; with the option the prediction is the fixture's.
#[test]
fn snapshot_of_a_kernel_without_hsa_amd_p2p_says_so_and_what_if() {
    let scratch = tempfile::tempdir().unwrap();
    let machine = common::without_pcie_p2p_parameter(scratch.path(), "mi210-pair");
    let text = snapshot(&machine).unwrap().to_toml().unwrap();
    assert!(text.contains("kernel = \"without-hsa-amd-p2p\""), "{text}");
    assert!(
        text.contains("--set platform.kernel=hsa-amd-p2p` shows what it would do"),
        "{text}"
    );
    let spec = Spec::parse(&text, "snapshot").unwrap();
    let without = predict_with(&spec, PeerBandwidthRule::AsAmdkfd)
        .unwrap()
        .topology;
    let gpus: Vec<u32> = without
        .nodes
        .iter()
        .filter(|n| n.is_gpu())
        .map(|n| n.id)
        .collect();
    let reasons = without.denial(gpus[0], gpus[1]).unwrap().reasons;
    assert_eq!(reasons.primary(), Some(DenialReason::NoHsaAmdP2p));

    let with =
        hsa_p2p_runtime::spec::apply_settings(&text, &["platform.kernel=hsa-amd-p2p".into()])
            .unwrap();
    let with = predict_with(&with, PeerBandwidthRule::AsAmdkfd)
        .unwrap()
        .topology;
    assert!(with.p2p_link(gpus[0], gpus[1]).is_some());
    assert!(with.p2p_link(gpus[1], gpus[0]).is_some());
}

/// Without amdkfd's tree (amdgpu or amdkfd not loaded) the PCI facts alone give a spec with the
/// same verdicts for every pair; what only amdkfd tells is said to be assumed.
#[test]
fn snapshot_from_pci_facts_alone_keeps_every_verdict() {
    let scratch = tempfile::tempdir().unwrap();
    let machine = common::copy_fixture(scratch.path(), "four-gpu-intel");
    std::fs::remove_dir_all(machine.join("sys/devices/virtual/kfd")).unwrap();
    std::fs::remove_dir_all(machine.join("sys/class/kfd")).unwrap();
    let verdicts = |root: &std::path::Path| {
        let text = snapshot(root).unwrap().to_toml().unwrap();
        let spec = Spec::parse(&text, "snapshot").unwrap();
        let topology = predict_with(&spec, PeerBandwidthRule::AsAmdkfd)
            .unwrap()
            .topology;
        let pairs: Vec<_> = peer_pairs(&topology)
            .iter()
            .map(|p| (p.from, p.to, p.has_access(), p.denial.map(|d| d.reasons)))
            .collect();
        (text, pairs)
    };
    let (with_tree, expected) = verdicts(&fixture("four-gpu-intel"));
    let (pci_only, got) = verdicts(&machine);
    assert!(!with_tree.contains("PCI facts only"), "{with_tree}");
    assert!(
        pci_only.contains("(PCI facts only: no GPU topology)"),
        "{pci_only}"
    );
    assert!(
        pci_only.contains("# assumed: gfx_target_version"),
        "{pci_only}"
    );
    assert_eq!(got, expected);
    assert!(expected.iter().any(|p| p.2) && expected.iter().any(|p| !p.2));
}
