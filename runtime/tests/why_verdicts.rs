//! `p2pctl why` as a user reads it: one snapshot per denial reason, per kernel generation and
//! per source (spec, predicted tree, amdkfd's tree with and without the machine's PCI facts).

mod common;

use common::{edited_spec, p2pctl, p2pctl_in};

/// Shipped specs whose first pair shows one verdict: (snapshot name, spec, accessor, owner).
const SHIPPED: [(&str, &str, &str, &str); 6] = [
    ("allowed-same-switch", "same-switch", "gpu0", "gpu1"),
    ("chipset", "separate-root-ports", "gpu0", "gpu1"),
    ("small-bar", "small-bar", "large", "small"),
    ("small-bar-reverse-allowed", "small-bar", "small", "large"),
    ("dma-mask", "dma-mask-limit", "gpu0", "gpu1"),
    (
        "no-hsa-amd-p2p",
        "mi50-pex88096-without-hsa-amd-p2p",
        "mi50a",
        "mi50b",
    ),
];

#[test]
fn why_of_each_denial_reason_in_the_shipped_specs() {
    for (name, spec, accessor, owner) in SHIPPED {
        let spec = format!("topologies/{spec}.toml");
        let out = p2pctl(&["why", accessor, owner, "--spec", &spec]);
        insta::assert_snapshot!(format!("why-{name}"), out);
    }
}

/// The reasons no shipped spec shows, and each kernel generation, on edited copies of
/// `same-switch` (gpu0 -> gpu1 is allowed there).
#[test]
fn why_of_each_kernel_generation_and_the_other_reasons() {
    let scratch = tempfile::tempdir().unwrap();
    // (snapshot name, a line for [platform], a line for the last GPU, gpu1).
    let cases = [
        (
            "kernel-without-hsa-amd-p2p",
            "kernel = \"without-hsa-amd-p2p\"",
            "",
        ),
        (
            "kernel-before-p2p-links",
            "kernel = \"before-p2p-links\"",
            "",
        ),
        ("pcie-p2p-disabled", "pcie_p2p = false", ""),
        ("xgmi-connected-to-cpu", "", "xgmi_connected_to_cpu = true"),
    ];
    for (name, platform, gpu1) in cases {
        let file = format!("{name}.toml");
        edited_spec(scratch.path(), "same-switch", &file, |text| {
            text.replace("[platform]\n", &format!("[platform]\n{platform}\n")) + gpu1 + "\n"
        });
        let out = p2pctl_in(scratch.path(), &["why", "gpu0", "gpu1", "--spec", &file]);
        insta::assert_snapshot!(format!("why-{name}"), out);
    }
}

#[test]
fn why_from_trees() {
    let four = "hwtests/tests/fixtures/four-gpu-intel";
    let four_tree = format!("{four}/sys/class/kfd/kfd/topology");
    let cases: [(&str, Vec<&str>); 6] = [
        (
            "predicted-tree-chipset",
            vec![
                "1",
                "2",
                "--root",
                "runtime/tests/fixtures/predicted/separate-root-ports",
            ],
        ),
        (
            "old-kernel-tree",
            vec!["1", "2", "--root", "runtime/tests/fixtures/old-kernel"],
        ),
        ("amdkfd-tree-alone", vec!["3", "4", "--root", &four_tree]),
        (
            "amdkfd-tree-chipset-from-pci-facts",
            vec!["3", "4", "--root", &four_tree, "--machine-root", four],
        ),
        (
            "amdkfd-tree-small-bar-from-pci-facts",
            vec!["1", "3", "--root", &four_tree, "--machine-root", four],
        ),
        (
            "amdkfd-tree-facts-unreadable",
            vec![
                "3",
                "4",
                "--root",
                &four_tree,
                "--machine-root",
                "topologies",
            ],
        ),
    ];
    for (name, args) in cases {
        let args: Vec<&str> = ["why"].into_iter().chain(args).collect();
        insta::assert_snapshot!(format!("why-{name}"), p2pctl(&args));
    }
}
