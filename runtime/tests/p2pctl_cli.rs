//! `p2pctl` as a user runs it: exit codes, the verdicts it prints, the JSON documents it emits
//! and the sysfs tree it writes.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use common::hw_fixture;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec(name: &str) -> String {
    repo()
        .join(format!("topologies/{name}.toml"))
        .display()
        .to_string()
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn p2pctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2pctl"))
        .args(args)
        .output()
        .expect("p2pctl runs")
}

fn success(args: &[&str]) -> String {
    let output = p2pctl(args);
    assert!(
        output.status.success(),
        "p2pctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn failure(args: &[&str]) -> String {
    let output = p2pctl(args);
    assert!(!output.status.success(), "p2pctl {args:?} succeeded");
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&success(args)).expect("valid JSON")
}

/// `p2pctl why FROM TO --root TREE --machine-root MACHINE --json`.
fn why_on_machine(from: &str, to: &str, tree: &str, machine: &str) -> Value {
    json(&[
        "why",
        from,
        to,
        "--root",
        tree,
        "--machine-root",
        machine,
        "--json",
    ])
}

#[test]
fn predict_json_is_the_topology_document_with_peer_verdicts() {
    let doc = json(&["predict", &spec("xgmi-hive-4"), "--json"]);
    assert_eq!(doc["schema"], "hsa-p2p/topology/v1");
    assert_eq!(doc["source"]["kind"], "spec");
    assert_eq!(doc["source"]["name"], "xgmi-hive-4");
    let peers = doc["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 12, "4 GPUs: 12 ordered pairs");
    for peer in peers {
        assert_eq!(peer["access"], true);
        assert_eq!(peer["link_type"], "XGMI");
        assert_eq!(peer["via"], "io_links");
        let weight = peer["weight"].as_u64().unwrap();
        assert_eq!(weight, 15, "fully connected quad hive: one hop");
    }
    let gpu = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["kind"] == "gpu")
        .unwrap();
    assert!(gpu["io_links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["type"] == 11));
    assert!(gpu["pci_address"].as_str().unwrap().starts_with("0000:"));
}

#[test]
fn matrix_json_has_a_null_diagonal_and_row_major_access() {
    let doc = json(&["matrix", "--spec", &spec("small-bar"), "--json"]);
    assert_eq!(doc["schema"], "hsa-p2p/matrix/v1");
    let labels: Vec<_> = doc["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|gpu| gpu["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(labels, ["large", "small"]);
    assert_eq!(
        doc["access"],
        serde_json::json!([[null, false], [true, null]])
    );
    assert_eq!(doc["weight"], serde_json::json!([[null, null], [40, null]]));
}

#[test]
fn why_json_for_small_bar_pair_in_both_directions() {
    let denied = json(&[
        "why",
        "large",
        "small",
        "--spec",
        &spec("small-bar"),
        "--json",
    ]);
    assert_eq!(denied["schema"], "hsa-p2p/why/v1");
    assert_eq!(denied["access"], false);
    assert_eq!(denied["reasons"][0]["name"], "small BAR");
    assert_eq!(denied["reasons"][0]["recorded"], true);
    assert!(denied["reasons"][0]["remedy"]
        .as_str()
        .unwrap()
        .contains("Resizable BAR"));
    assert_eq!(denied["reverse_access"], true);
    let allowed = json(&[
        "why",
        "small",
        "large",
        "--spec",
        &spec("small-bar"),
        "--json",
    ]);
    assert_eq!(allowed["access"], true);
    assert_eq!(allowed["weight"], 40);
}

/// A shipped spec as a kernel of another generation (`[platform] kernel = ...`).
fn spec_with_kernel(dir: &std::path::Path, name: &str, kernel: &str) -> String {
    let text = std::fs::read_to_string(spec(name)).unwrap().replace(
        "[platform]\n",
        &format!("[platform]\nkernel = \"{kernel}\"\n"),
    );
    let path = dir.join(format!("{name}-{kernel}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Each kernel generation has its own reason: without CONFIG_HSA_AMD_P2P kfd_dev_create_p2p_links
/// adds no peer link (and amdgpu_device_is_peer_accessible is false), recorded as such; before
/// p2p_links node_show prints no p2p_links_count, which `why` reads from the tree.
#[test]
fn why_names_each_kernel_generation() {
    let scratch = tempfile::tempdir().unwrap();
    let cases = [
        ("hsa-amd-p2p", None),
        ("without-hsa-amd-p2p", Some(("no HSA_AMD_P2P", true))),
        (
            "before-p2p-links",
            Some(("kernel without p2p_links", false)),
        ),
    ];
    for (kernel, expected) in cases {
        let path = spec_with_kernel(scratch.path(), "same-switch", kernel);
        let doc = json(&["why", "gpu0", "gpu1", "--spec", &path, "--json"]);
        match expected {
            None => assert_eq!(doc["access"], true, "{kernel}: {doc}"),
            Some((reason, recorded)) => {
                assert_eq!(doc["access"], false, "{kernel}: {doc}");
                assert_eq!(doc["reasons"][0]["name"], reason, "{kernel}: {doc}");
                assert_eq!(doc["reasons"][0]["recorded"], recorded, "{kernel}: {doc}");
            }
        }
    }
}

#[test]
fn an_io_error_is_said_once() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(scratch.path().join("nodes/0/properties")).unwrap();
    std::fs::write(scratch.path().join("nodes/0/gpu_id"), "0\n").unwrap();
    std::fs::write(scratch.path().join("nodes/0/name"), "cpu\n").unwrap();
    std::fs::write(scratch.path().join("generation_id"), "1\n").unwrap();
    let err = failure(&["topo", "--root", &scratch.path().display().to_string()]);
    let io = std::io::Error::from_raw_os_error(libc::EISDIR).to_string();
    assert_eq!(err.matches(&io).count(), 1, "{err}");
}

/// `why` and `copy` take the same GPU names (`gpuN` included): `copy` gets as far as opening the
/// device.
#[test]
fn why_and_copy_accept_the_same_gpu_names() {
    let tree = fixture("predicted/small-bar");
    for (from, to) in [("gpu0", "gpu1"), ("1", "node2"), ("node1", "gpu1")] {
        let out = success(&["why", from, to, "--root", &tree]);
        assert!(out.starts_with("node1 -> node2: "), "{from} {to}: {out}");
        let err = failure(&[
            "copy",
            "--root",
            &tree,
            "--from",
            from,
            "--to",
            to,
            "--device",
            "/nonexistent",
        ]);
        assert!(
            err.starts_with("p2pctl: error: cannot open /nonexistent: "),
            "{from} {to}: {err}"
        );
    }
}

/// A suggested command can be pasted into a shell even when the spec path has spaces or quotes.
#[test]
fn suggested_why_commands_are_shell_quoted() {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("my spec's.toml");
    std::fs::copy(spec("small-bar"), &path).unwrap();
    let path = path.display().to_string();
    let out = success(&["predict", &path]);
    let quoted = format!("'{}'", path.replace('\'', r"'\''"));
    let expected = format!(
        "  large -> small: no P2P: small BAR (details: p2pctl why large small --spec {quoted})"
    );
    assert!(
        out.lines().any(|line| line == expected),
        "{expected}\nnot in\n{out}"
    );
}

/// What a `max_bandwidth` of 0 means depends on the link; each verdict says it.
#[test]
fn zero_bandwidth_verdicts_say_what_the_zero_means() {
    let scratch = tempfile::tempdir().unwrap();
    let unreported_hive = scratch.path().join("hive-without-bandwidth.toml");
    std::fs::write(
        &unreported_hive,
        std::fs::read_to_string(spec("xgmi-hive-4"))
            .unwrap()
            .replace(
                "id = 0x5a5a0001\n",
                "id = 0x5a5a0001\nlink_bandwidth_mbs = 0\n",
            ),
    )
    .unwrap();
    let unreported_hive = unreported_hive.display().to_string();
    let cases = [
        (
            spec("two-socket"),
            "gpu0 -> gpu2: P2P, PCIE via p2p_links, weight 72, bandwidth not reported (the path \
             crosses the link between CPU nodes 0 and 1, whose bandwidth amdkfd does not know)",
        ),
        (
            spec("mi250-8gcd"),
            "gcd0 -> gcd3: P2P, XGMI via io_links, weight 30, bandwidth not reported (XGMI over 2 \
             hops; amdkfd reports bandwidth only between directly linked hive members)",
        ),
        (
            spec("xgmi-hive-4"),
            "gpu0 -> gpu1: P2P, XGMI via io_links, weight 15, 50000 MB/s",
        ),
        (
            unreported_hive,
            "gpu0 -> gpu1: P2P, XGMI via io_links, weight 15, bandwidth not reported (direct XGMI \
             link, but the hive reports no per-link bandwidth)",
        ),
    ];
    for (spec, verdict) in cases {
        let out = success(&["predict", &spec]);
        assert!(
            out.lines().any(|line| line.trim() == verdict),
            "{spec}: no line {verdict:?} in\n{out}"
        );
    }
}

#[test]
fn emitted_sysfs_tree_reads_back_to_the_same_json() {
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("topology");
    let tree_arg = tree.display().to_string();
    success(&["predict", &spec("two-socket"), "--emit-sysfs", &tree_arg]);
    let predicted = json(&["topo", "--spec", &spec("two-socket"), "--json"]);
    let read = json(&["topo", "--root", &tree_arg, "--json"]);
    // Everything but the source and the labels (spec ids vs node ids) must agree.
    for key in ["generation_id", "system", "peers"] {
        assert_eq!(predicted[key], read[key], "{key}");
    }
    let strip = |doc: &Value| -> Vec<Value> {
        doc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                let mut node = node.clone();
                node.as_object_mut().unwrap().remove("label");
                node
            })
            .collect()
    };
    assert_eq!(strip(&predicted), strip(&read));
    // A second emit into the non-empty directory is refused without --force.
    let err = failure(&["predict", &spec("two-socket"), "--emit-sysfs", &tree_arg]);
    assert!(err.contains("is not empty; pass --force"), "{err}");
    // --force replaces the tree it wrote.
    success(&[
        "predict",
        &spec("same-switch"),
        "--emit-sysfs",
        &tree_arg,
        "--force",
    ]);
    assert_eq!(
        json(&["topo", "--root", &tree_arg, "--json"])["peers"],
        json(&["topo", "--spec", &spec("same-switch"), "--json"])["peers"]
    );
}

#[test]
fn emit_sysfs_force_refuses_a_directory_it_did_not_write() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("notes.txt"), "keep me").unwrap();
    let dir = scratch.path().display().to_string();
    let err = failure(&[
        "predict",
        &spec("two-socket"),
        "--emit-sysfs",
        &dir,
        "--force",
    ]);
    assert!(
        err.contains("is not a topology tree written by `p2pctl predict --emit-sysfs`"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn why_on_an_amdkfd_tree_names_the_condition_from_the_machines_pci_facts() {
    // A 4-GPU Intel machine (hwtests fixture: amdkfd tree + sysfs PCI facts): node 3 has a
    // small BAR, node 4 sits behind another root port of a host bridge that is not whitelisted.
    let machine = hw_fixture("four-gpu-intel");
    let tree = machine.join("sys/class/kfd/kfd/topology");
    let (tree, machine) = (tree.display().to_string(), machine.display().to_string());

    // The tree alone does not record why 3 cannot reach 4 (its text: why_verdicts.rs).
    let alone = json(&["why", "3", "4", "--root", &tree, "--json"]);
    assert_eq!(alone["access"], false);
    assert_eq!(alone["reasons"], serde_json::json!([]), "{alone}");

    let chipset = why_on_machine("3", "4", &tree, &machine);
    assert_eq!(chipset["access"], false);
    assert_eq!(chipset["reasons"][0]["name"], "chipset");
    assert_eq!(chipset["reasons"][0]["basis"], "pci facts");
    assert_eq!(chipset["reasons"][0]["recorded"], false);

    let small_bar = why_on_machine("1", "3", &tree, &machine);
    assert_eq!(small_bar["reasons"][0]["name"], "small BAR");
    assert_eq!(small_bar["reasons"][0]["basis"], "pci facts");
    assert_eq!(
        small_bar["p2pdma_distance"], 4,
        "same switch: the PCI core allows the path"
    );

    let allowed = why_on_machine("1", "2", &tree, &machine);
    assert_eq!(allowed["access"], true);
}

/// amdgpu has its pcie_p2p parameter only with CONFIG_HSA_AMD_P2P (amdgpu_drv.c): on a machine
/// without it whose kernel publishes p2p_links, the missing option is the first reason, and the
/// other conditions are judged as amdgpu_device_is_peer_accessible would with the option (not
/// as "pcie_p2p disabled").
#[test]
fn why_on_a_machine_without_the_pcie_p2p_parameter_names_the_missing_option() {
    let scratch = tempfile::tempdir().unwrap();
    let machine = common::without_pcie_p2p_parameter(scratch.path(), "four-gpu-intel");
    let tree = machine.join("sys/class/kfd/kfd/topology");
    let (tree, machine) = (tree.display().to_string(), machine.display().to_string());
    let doc = why_on_machine("3", "4", &tree, &machine);
    let names: Vec<&str> = doc["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["no HSA_AMD_P2P", "chipset"], "{doc}");
}

/// `predict --as-amdkfd` reproduces kfd_add_peer_prop's (kfd_topology.c) max_bandwidth =
/// min(iolink2, iolink2): the accessor's own link, even when the owner's link is narrower; the
/// default reports the narrowest hop.
#[test]
fn predict_as_amdkfd_reports_the_accessors_link_bandwidth() {
    let dir = tempfile::tempdir().unwrap();
    common::edited_spec(dir.path(), "same-switch", "narrow-owner.toml", |text| {
        text + "pcie = { gen = 3, width = 16 }\n"
    });
    for (name, flags) in [("corrected", &[][..]), ("as-amdkfd", &["--as-amdkfd"][..])] {
        let args: Vec<&str> = ["predict", "narrow-owner.toml"]
            .iter()
            .chain(flags)
            .copied()
            .collect();
        let out = common::p2pctl_in(dir.path(), &args);
        insta::assert_snapshot!(format!("predict-narrow-owner-{name}"), out);
    }
}
