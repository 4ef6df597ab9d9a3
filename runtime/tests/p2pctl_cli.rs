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
fn why_names_the_chipset_and_the_fix() {
    let out = success(&[
        "why",
        "gpu0",
        "gpu1",
        "--spec",
        &spec("separate-root-ports"),
    ]);
    assert!(out.contains("no P2P"), "{out}");
    assert!(out.contains("reason: chipset"), "{out}");
    assert!(
        out.contains("fix: place both GPUs behind one PCIe switch"),
        "{out}"
    );
    // The same verdict from the emitted sysfs tree, by node id.
    let out = success(&[
        "why",
        "1",
        "2",
        "--root",
        &fixture("predicted/separate-root-ports"),
    ]);
    assert!(out.contains("reason: chipset"), "{out}");
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

#[test]
fn why_on_an_old_kernel_tree_infers_small_bar_and_says_what_it_cannot_know() {
    let out = success(&["why", "1", "2", "--root", &fixture("old-kernel")]);
    assert!(
        out.contains("reason (inferred from the tree): small BAR"),
        "{out}"
    );
    assert!(
        out.contains("reason (inferred from the tree): kernel without p2p_links"),
        "{out}"
    );
    assert!(
        out.contains(
            "libhsakmt synthesizes no io_link node 1 -> node 2 on such kernels: node 2 has no \
             public (large-BAR) frame buffer"
        ),
        "{out}"
    );
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
    // pcie_p2p is amdgpu's parameter only with CONFIG_HSA_AMD_P2P.
    let path = spec_with_kernel(scratch.path(), "same-switch", "before-p2p-links");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("[platform]\n", "[platform]\npcie_p2p = false\n"),
    )
    .unwrap();
    let err = failure(&["predict", &path]);
    assert!(
        err.contains("pcie_p2p = false needs kernel = \"hsa-amd-p2p\""),
        "{err}"
    );
}

/// On a kernel before p2p_links, `matrix` says what libhsakmt synthesizes
/// (topology_create_indirect_gpu_links / get_indirect_iolink_info): the CPU's link type and
/// the summed weights, none across sockets joined by a QPI link heavier than 20.
#[test]
fn matrix_on_a_kernel_before_p2p_links_shows_libhsakmts_indirect_links() {
    let scratch = tempfile::tempdir().unwrap();
    let cases = [
        (
            "same-switch",
            "gpu0         -  PCIE 40\ngpu1    PCIE 40       -\n",
        ),
        (
            "two-socket",
            "gpu0         -  PCIE 40       -       -\ngpu1    PCIE 40       -       -       -\n\
             gpu2         -       -       -  PCIE 40\n",
        ),
    ];
    for (name, expected) in cases {
        let path = spec_with_kernel(scratch.path(), name, "before-p2p-links");
        let out = success(&["matrix", "--spec", &path]);
        assert!(
            out.contains("ROCm's libhsakmt synthesizes indirect GPU -> GPU io_links"),
            "{out}"
        );
        let squeezed: String = out
            .split('\n')
            .map(|l| l.trim_end().to_string() + "\n")
            .collect();
        assert!(
            squeezed.contains(expected),
            "{name}: {expected:?} in\n{out}"
        );
    }
    // A current kernel's matrix has no such note.
    let out = success(&["matrix", "--spec", &spec("same-switch")]);
    assert!(!out.contains("libhsakmt"), "{out}");
}

#[test]
fn why_rejects_cpu_nodes_and_unknown_names() {
    let err = failure(&["why", "0", "1", "--spec", &spec("same-switch")]);
    assert!(err.contains("node 0 is a CPU node"), "{err}");
}

/// The exact error line of commands a new user gets wrong: each says it once, with what would
/// have worked.
#[test]
fn error_texts_say_each_thing_once_and_name_what_exists() {
    let same_switch = fixture("predicted/same-switch");
    let cases: [(&[&str], String); 6] = [
        (
            &["copy", "--root", "/nonexistent", "--from", "0", "--to", "1"],
            "cannot read the topology: /nonexistent: not a KFD topology (no `generation_id` file \
             or `nodes/` directory); is the driver loaded?"
                .to_string(),
        ),
        (
            &["matrix", "--root", &fixture("malformed/dangling-node-to")],
            format!(
                "{}/nodes/2/p2p_links/0/properties: node_to 7 names no node (the topology has \
                 nodes 0 to 2)",
                fixture("malformed/dangling-node-to")
            ),
        ),
        (
            &["why", "gpu0", "gpu9", "--spec", &spec("same-switch")],
            "no GPU named \"gpu9\": the GPUs are gpu0 (node 1), gpu1 (node 2); a node id, nodeN \
             or gpuN (the N-th GPU, from 0) works as well"
                .to_string(),
        ),
        (
            &["why", "large", "x", "--spec", &spec("small-bar")],
            "no GPU named \"x\": the GPUs are large = gpu0 (node 1), small = gpu1 (node 2); a \
             node id, nodeN or gpuN (the N-th GPU, from 0) works as well"
                .to_string(),
        ),
        (
            &[
                "copy",
                "--root",
                &same_switch,
                "--from",
                "gpu0",
                "--to",
                "large",
            ],
            "no GPU named \"large\": the GPUs are gpu0 (node 1), gpu1 (node 2); a node id, nodeN \
             or gpuN (the N-th GPU, from 0) works as well"
                .to_string(),
        ),
        (
            &["why", "1", "9", "--spec", &spec("same-switch")],
            "node 9 does not exist (the topology has nodes 0 to 2)".to_string(),
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(
            failure(args),
            format!("p2pctl: error: {expected}\n"),
            "{args:?}"
        );
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
fn malformed_tree_fails_with_the_file_and_line() {
    let err = failure(&["topo", "--root", &fixture("malformed/non-numeric-value")]);
    assert!(err.contains("nodes/2/io_links/0/properties:6:"), "{err}");
    let err = failure(&["matrix", "--root", &fixture("malformed/dangling-node-to")]);
    assert!(err.contains("node_to 7 names no node"), "{err}");
}

#[test]
fn missing_spec_file_and_bad_spec_are_reported() {
    let err = failure(&["predict", "/nonexistent/spec.toml"]);
    assert!(err.contains("/nonexistent/spec.toml"), "{err}");
    let scratch = tempfile::tempdir().unwrap();
    let bad = scratch.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\n[[cpu]]\ncores = 4\nmemory = \"8G\"\nbogus = 1\n",
    )
    .unwrap();
    let err = failure(&["predict", &bad.display().to_string()]);
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn topo_table_lists_nodes_links_and_denials() {
    let out = success(&["topo", "--root", &fixture("predicted/small-bar")]);
    assert!(
        out.starts_with("generation_id 1: 3 nodes (1 CPU, 2 GPU)"),
        "{out}"
    );
    assert!(out.contains("node2  gpu"), "{out}");
    assert!(out.contains("small"), "{out}");
    assert!(out.contains("node2  node1  p2p  PCIE  40"), "{out}");
    assert!(out.contains("node1  node2  small BAR"), "{out}");
}

#[test]
fn why_on_an_amdkfd_tree_names_the_condition_from_the_machines_pci_facts() {
    // A 4-GPU Intel machine (hwtests fixture: amdkfd tree + sysfs PCI facts): node 3 has a
    // small BAR, node 4 sits behind another root port of a host bridge that is not whitelisted.
    let machine = hw_fixture("four-gpu-intel");
    let tree = machine.join("sys/class/kfd/kfd/topology");
    let (tree, machine) = (tree.display().to_string(), machine.display().to_string());

    // The tree alone does not record why 3 cannot reach 4.
    let alone = success(&["why", "3", "4", "--root", &tree]);
    assert!(alone.contains("the tree does not record why"), "{alone}");
    assert!(!alone.contains("reason"), "{alone}");

    let chipset = json(&[
        "why",
        "3",
        "4",
        "--root",
        &tree,
        "--machine-root",
        &machine,
        "--json",
    ]);
    assert_eq!(chipset["access"], false);
    assert_eq!(chipset["reasons"][0]["name"], "chipset");
    assert_eq!(chipset["reasons"][0]["basis"], "pci facts");
    assert_eq!(chipset["reasons"][0]["recorded"], false);

    let small_bar = json(&[
        "why",
        "1",
        "3",
        "--root",
        &tree,
        "--machine-root",
        &machine,
        "--json",
    ]);
    assert_eq!(small_bar["reasons"][0]["name"], "small BAR");
    assert_eq!(small_bar["reasons"][0]["basis"], "pci facts");
    assert_eq!(
        small_bar["p2pdma_distance"], 4,
        "same switch: the PCI core allows the path"
    );

    let allowed = json(&[
        "why",
        "1",
        "2",
        "--root",
        &tree,
        "--machine-root",
        &machine,
        "--json",
    ]);
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
    let doc = json(&[
        "why",
        "3",
        "4",
        "--root",
        &tree,
        "--machine-root",
        &machine,
        "--json",
    ]);
    let names: Vec<&str> = doc["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["no HSA_AMD_P2P", "chipset"], "{doc}");
}

#[test]
fn why_says_when_the_machine_facts_cannot_be_read() {
    let tree = hw_fixture("four-gpu-intel").join("sys/class/kfd/kfd/topology");
    let scratch = tempfile::tempdir().unwrap();
    let out = success(&[
        "why",
        "3",
        "4",
        "--root",
        &tree.display().to_string(),
        "--machine-root",
        &scratch.path().display().to_string(),
    ]);
    assert!(
        out.contains("the machine's PCI facts could not be read"),
        "{out}"
    );
}

/// `predict --as-amdkfd` reproduces kfd_add_peer_prop's (kfd_topology.c) max_bandwidth =
/// min(iolink2, iolink2): the accessor's own link, even when the owner's link is narrower; the
/// default reports the narrowest hop.
#[test]
fn predict_as_amdkfd_reports_the_accessors_link_bandwidth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("narrow-owner.toml");
    let narrow =
        std::fs::read_to_string(spec("same-switch")).unwrap() + "pcie = { gen = 3, width = 16 }\n";
    std::fs::write(&path, narrow).unwrap();
    let path = path.to_str().unwrap();
    let corrected = success(&["predict", path]);
    assert!(corrected.contains("gpu0 -> gpu1: P2P, PCIE via p2p_links, weight 40, 16000 MB/s"));
    assert!(corrected.contains("gpu1 -> gpu0: P2P, PCIE via p2p_links, weight 40, 16000 MB/s"));
    let amdkfd = success(&["predict", "--as-amdkfd", path]);
    assert!(amdkfd.contains("gpu0 -> gpu1: P2P, PCIE via p2p_links, weight 40, 32000 MB/s"));
    assert!(amdkfd.contains("gpu1 -> gpu0: P2P, PCIE via p2p_links, weight 40, 16000 MB/s"));
}

/// `predict --set KEY=VALUE`: what-if questions answered with the pairs whose verdict changes;
/// a key or value the spec cannot take is refused naming the setting.
#[test]
fn predict_set_prints_the_pairs_whose_verdict_changes() {
    let cases: [(&str, &[&str], &str); 7] = [
        // ROCm/amdgpu#210: BARs above the DMA mask behind a switch, IOMMU remapping, amdgpu
        // without HSA_AMD_P2P; with it, the IOMMU makes them reachable, without remapping not.
        (
            "mi50-pex88096-without-hsa-amd-p2p",
            &["platform.kernel=hsa-amd-p2p"],
            "2 of 2 pairs change:\n  mi50a -> mi50b: no P2P: no HSA_AMD_P2P\n    now: P2P, PCIE \
             via p2p_links, weight 40, 32000 MB/s\n",
        ),
        (
            "mi50-pex88096-without-hsa-amd-p2p",
            &["platform.kernel=hsa-amd-p2p", "platform.iommu=passthrough"],
            "  mi50b -> mi50a: no P2P: no HSA_AMD_P2P\n    now: no P2P: DMA mask\n",
        ),
        (
            "small-bar",
            &["gpu1.bar=32G"],
            "1 of 2 pairs change:\n  large -> small: no P2P: small BAR\n    now: P2P, PCIE via \
             p2p_links, weight 40, 32000 MB/s\n",
        ),
        (
            "dma-mask-limit",
            &["platform.iommu=remap"],
            "1 of 2 pairs change:\n  gpu0 -> gpu1: no P2P: DMA mask\n    now: P2P, PCIE via \
             p2p_links, weight 40, 32000 MB/s\n",
        ),
        (
            "separate-root-ports",
            &[
                "platform.cpu_vendor=AuthenticAMD",
                "platform.cpu_family=0x19",
            ],
            "2 of 2 pairs change:\n  gpu0 -> gpu1: no P2P: chipset\n    now: P2P",
        ),
        (
            "same-switch",
            &["platform.kernel=without-hsa-amd-p2p"],
            "  gpu0 -> gpu1: P2P, PCIE via p2p_links, weight 40, 32000 MB/s\n    now: no P2P: no \
             HSA_AMD_P2P\n",
        ),
        (
            "small-bar",
            &["platform.iommu=remap"],
            "No pair changes its verdict (2 pairs).\n",
        ),
    ];
    for (name, settings, expected) in cases {
        let path = spec(name);
        let mut args = vec!["predict", path.as_str()];
        for setting in settings {
            args.extend(["--set", setting]);
        }
        let out = success(&args);
        assert!(
            out.contains(expected),
            "{name} {settings:?}: {expected:?} in\n{out}"
        );
    }
    let refusals: [(&str, &str); 5] = [
        (
            "gpu1.barr=1",
            "--set gpu1.barr=1: unknown field `barr`, expected one of",
        ),
        (
            "nope.bar=1",
            "--set nope.bar=1: \"nope\" names no GPU, root port, switch or host bridge (ids: \
             large, small, rp0, sw0), and is not platform, cpuN or gpuN",
        ),
        (
            "platform.iommu=remapp",
            "--set platform.iommu=remapp: unknown variant `remapp`, expected one of `remap`",
        ),
        (
            "gpu1.vram",
            "--set gpu1.vram: expected KEY=VALUE, e.g. gpu0.bar=32G",
        ),
        (
            "gpu1.parent=sw0.0",
            "--set gpu1.parent=sw0.0: \"large\" and \"small\" both sit on port",
        ),
    ];
    for (setting, expected) in refusals {
        let err = failure(&["predict", &spec("small-bar"), "--set", setting]);
        assert!(err.contains(expected), "{setting}: {expected:?} in {err}");
    }
}
