//! The `rocm` suite replaying recordings built from published tool outputs
//! (`tests/fixtures/rocm/recordings`, written by `generate_recordings.py`): the passing ones
//! pass, each tampered one fails for its stated reason; and a live run against fake tools
//! records a recording that replays to the same outcomes.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use hsa_p2p_hwtests::report::{Case, Outcome};
use hsa_p2p_hwtests::rocm::recording;
use hsa_p2p_hwtests::{Context, Filter, ModuleState};

fn recording_dir(name: &str) -> PathBuf {
    common::fixture("rocm/recordings").join(name)
}

fn run(context: &Context) -> Vec<Case> {
    hsa_p2p_hwtests::run("rocm-replay", context, &Filter::new(["rocm.*"])).cases
}

fn replay(name: &str) -> Vec<Case> {
    run(&Context::replay(recording_dir(name)))
}

fn outcome<'a>(cases: &'a [Case], name: &str) -> &'a Outcome {
    &cases
        .iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no case {name} in {cases:#?}"))
        .outcome
}

fn notes<'a>(cases: &'a [Case], name: &str) -> &'a [String] {
    &cases.iter().find(|case| case.name == name).unwrap().notes
}

/// Asserts the outcome of every case: `passing` pass, `failing` fail, the rest skip.
fn assert_outcomes(cases: &[Case], passing: &[&str], failing: &[&str]) {
    assert_eq!(cases.len(), 7);
    for case in cases {
        let expected = if passing.contains(&case.name.as_str()) {
            "pass"
        } else if failing.contains(&case.name.as_str()) {
            "fail"
        } else {
            "skip"
        };
        let actual = match case.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        };
        assert_eq!(actual, expected, "{}: {:?}", case.name, case.outcome);
    }
}

fn problems(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Fail(problems) => problems.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

const BANDWIDTH_TEST_CASES: [&str; 3] = [
    "user_space_found",
    "bandwidth_test_access_matches_topology",
    "bandwidth_test_peer_bandwidth",
];

#[test]
fn pcie_p2p_pair_passes_at_64_percent_of_its_gen3_link() {
    let cases = replay("wx8100-pcie-p2p");
    assert_outcomes(&cases, &BANDWIDTH_TEST_CASES, &[]);
    assert!(notes(&cases, "user_space_found")[0]
        .starts_with("rocm_bandwidth_test: /opt/rocm/bin/rocm_bandwidth_test (2.0.1)"));
    assert!(notes(&cases, "bandwidth_test_access_matches_topology")
        .contains(&"2 GPUs, 2 ordered pairs, 2 with a peer link".to_string()));
    let bandwidth = notes(&cases, "bandwidth_test_peer_bandwidth");
    assert!(
        bandwidth.contains(
            &"node 1 (0000:19:00.0) -> node 2 (0000:67:00.0): 10.261 GB/s, 64% of 16000 MB/s, \
              staged path 6.985 GB/s, bidirectional 18.906 GB/s"
                .to_string()
        ),
        "{bandwidth:#?}"
    );
    // No rocm_bandwidth_test -v run was published: a skip that says so, never a pass.
    assert!(matches!(
        outcome(&cases, "bandwidth_test_copies_validated"),
        Outcome::Skip(reason) if reason.ends_with("has no validated copies (rocm_bandwidth_test -v runs)")
    ));
}

#[test]
fn a_slow_peer_copy_fails_below_the_fraction_of_max_bandwidth() {
    let cases = replay("wx8100-pcie-p2p-slow-copy");
    assert_outcomes(
        &cases,
        &["user_space_found", "bandwidth_test_access_matches_topology"],
        &["bandwidth_test_peer_bandwidth"],
    );
    assert_eq!(
        problems(outcome(&cases, "bandwidth_test_peer_bandwidth")),
        [
            "node 1 (0000:19:00.0) -> node 2 (0000:67:00.0): 7.261 GB/s is 45% of the link's \
          max_bandwidth (16000 MB/s), below the 50% required"
        ]
    );
    // The threshold is configurable: at 40% the same recording passes.
    let mut context = Context::replay(recording_dir("wx8100-pcie-p2p-slow-copy"));
    context.bandwidth_fraction = 0.4;
    assert_eq!(
        outcome(&run(&context), "bandwidth_test_peer_bandwidth"),
        &Outcome::Pass
    );
}

#[test]
fn peer_access_without_kfd_links_fails_against_kfd_and_the_prediction() {
    let cases = replay("wx8100-pcie-p2p-kfd-without-links");
    assert_outcomes(
        &cases,
        &["user_space_found"],
        &[
            "bandwidth_test_access_matches_topology",
            "bandwidth_test_peer_bandwidth",
        ],
    );
    let access = problems(outcome(&cases, "bandwidth_test_access_matches_topology"));
    assert!(access.contains(
        &"node 1 (0000:19:00.0) -> node 2 (0000:67:00.0): amdkfd has no peer link, the \
          prediction from the PCI facts a Pcie peer link of weight 40 (16000 MB/s)"
            .to_string()
    ));
    assert!(access.contains(
        &"node 2 (0000:67:00.0) -> node 1 (0000:19:00.0): rocm_bandwidth_test reports peer \
          access, amdkfd has no peer link"
            .to_string()
    ));
    assert_eq!(access.len(), 4, "{access:#?}");
}

#[test]
fn small_bar_pair_passes_with_every_peer_copy_refused() {
    let cases = replay("mi50-small-bar");
    assert_outcomes(&cases, &BANDWIDTH_TEST_CASES, &[]);
    assert!(notes(&cases, "bandwidth_test_access_matches_topology")
        .contains(&"2 GPUs, 2 ordered pairs, 0 with a peer link".to_string()));
    // Nothing measured between the GPUs, nothing to note but the version.
    assert_eq!(
        notes(&cases, "bandwidth_test_peer_bandwidth"),
        ["rocm_bandwidth_test 2.6.0"]
    );
}

#[test]
fn a_small_bar_pair_reported_as_p2p_fails() {
    let cases = replay("mi50-small-bar-reported-p2p");
    assert_outcomes(
        &cases,
        &["user_space_found"],
        &[
            "bandwidth_test_access_matches_topology",
            "bandwidth_test_peer_bandwidth",
        ],
    );
    assert_eq!(
        problems(outcome(&cases, "bandwidth_test_peer_bandwidth")),
        [
            "node 1 (0000:19:00.0) -> node 2 (0000:67:00.0): rocm_bandwidth_test measured a \
          unidirectional peer copy (9.500 GB/s) although amdkfd has no peer link: reported as P2P"
        ]
    );
    assert_eq!(
        problems(outcome(&cases, "bandwidth_test_access_matches_topology")),
        [
            "node 1 (0000:19:00.0) -> node 2 (0000:67:00.0): rocm_bandwidth_test reports peer \
          access, amdkfd has no peer link"
        ]
    );
}

#[test]
fn xgmi_hive_matches_rocm_smi_link_types_weights_and_hops() {
    let cases = replay("mi308x-xgmi-hive");
    assert_outcomes(
        &cases,
        &["user_space_found", "rocm_smi_links_match_topology"],
        &[],
    );
    let notes = notes(&cases, "rocm_smi_links_match_topology");
    assert!(notes.contains(&"8 GPUs, 56 ordered pairs, 56 with a peer link".to_string()));
    assert!(
        notes.contains(&"no --showbus addresses: GPUs matched in PCI address order".to_string())
    );
}

#[test]
fn a_wrong_xgmi_weight_fails_naming_the_pair() {
    let cases = replay("mi308x-xgmi-hive-wrong-weight");
    assert_outcomes(
        &cases,
        &["user_space_found"],
        &["rocm_smi_links_match_topology"],
    );
    assert_eq!(
        problems(outcome(&cases, "rocm_smi_links_match_topology")),
        [
            "node 2 (0000:05:00.0) -> node 3 (0000:26:00.0): rocm-smi reports weight 30, amdkfd \
          has a Xgmi peer link of weight 15 (64000 MB/s)"
        ]
    );
}

#[test]
fn xgmi_hive_matches_amd_smi_access_link_types_and_hops_despite_zero_weights() {
    let cases = replay("mi355x-xgmi-hive");
    assert_outcomes(
        &cases,
        &["user_space_found", "amd_smi_links_match_topology"],
        &[],
    );
    assert_eq!(
        notes(&cases, "amd_smi_links_match_topology"),
        [
            "amd-smi reports weight 0 for every pair: weights not compared",
            "8 GPUs, 56 ordered pairs, 56 with a peer link",
        ]
    );
}

#[test]
fn an_xgmi_pair_reported_as_pcie_by_amd_smi_fails() {
    let cases = replay("mi355x-xgmi-hive-pcie-link");
    assert_outcomes(
        &cases,
        &["user_space_found"],
        &["amd_smi_links_match_topology"],
    );
    assert_eq!(
        problems(outcome(&cases, "amd_smi_links_match_topology")),
        [
            "node 2 (0000:0d:00.0) -> node 3 (0000:26:00.0): amd-smi reports link type Pcie, \
          amdkfd has a Xgmi peer link of weight 15 (64000 MB/s)"
        ]
    );
}

#[test]
fn xgmi_hive_copies_with_transfer_bench_at_link_speed() {
    let cases = replay("mi350x-xgmi-hive");
    assert_outcomes(
        &cases,
        &["user_space_found", "transfer_bench_peer_bandwidth"],
        &[],
    );
    let notes = notes(&cases, "transfer_bench_peer_bandwidth");
    assert_eq!(notes.len(), 57, "a version line and one per ordered pair");
    assert!(
        notes.contains(
            &"node 9 (0000:f5:00.0) -> node 3 (0000:15:00.0): 46.660 GB/s, 73% of 64000 MB/s, \
          staged path 24.885 GB/s, bidirectional 92.790 GB/s"
                .to_string()
        ),
        "{notes:#?}"
    );
}

#[test]
fn a_copy_between_hive_members_amdkfd_does_not_link_fails() {
    let cases = replay("mi350x-xgmi-hive-missing-link");
    assert_outcomes(
        &cases,
        &["user_space_found"],
        &["transfer_bench_peer_bandwidth"],
    );
    let problems = problems(outcome(&cases, "transfer_bench_peer_bandwidth"));
    assert_eq!(
        problems,
        [
            "node 5 (0000:75:00.0) -> node 8 (0000:e5:00.0): TransferBench measured a \
             unidirectional peer copy (57.380 GB/s) although amdkfd has no peer link: reported \
             as P2P",
            "node 5 (0000:75:00.0) -> node 8 (0000:e5:00.0): TransferBench measured a \
             bidirectional peer copy (79.330 GB/s) although amdkfd has no peer link: reported \
             as P2P",
            "node 8 (0000:e5:00.0) -> node 5 (0000:75:00.0): TransferBench measured a \
             unidirectional peer copy (57.310 GB/s) although amdkfd has no peer link: reported \
             as P2P",
            "node 8 (0000:e5:00.0) -> node 5 (0000:75:00.0): TransferBench measured a \
             bidirectional peer copy (109.030 GB/s) although amdkfd has no peer link: reported \
             as P2P",
        ]
    );
}

/// Copies `from` into `to`, symbolic links as links.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            symlink(fs::read_link(&source).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&source, &target);
        } else {
            fs::copy(&source, &target).unwrap();
        }
    }
}

/// A machine: the WX 8100 pair's facts, and a fake `rocm_bandwidth_test` under
/// `/opt/rocm-2.3.0/bin` that prints the published output and exits `validation_status` for
/// `-v` runs.
fn fake_runner(validation_status: u8) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("machine");
    copy_tree(&recording_dir("wx8100-pcie-p2p").join("root"), &root);
    let bin = root.join("opt/rocm-2.3.0/bin");
    fs::create_dir_all(&bin).unwrap();
    let output = common::fixture("rocm/outputs/rocm_bandwidth_test-2.0.1-wx8100-p2p.txt");
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in\n  *\" -v \"*) echo \"validated $*\"; exit {validation_status};;\n  *) cat '{}';;\nesac\n",
        output.display()
    );
    let tool = bin.join("rocm_bandwidth_test");
    fs::write(&tool, script).unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_live_run_validates_copies_and_records_what_replays_identically() {
    let dir = fake_runner(0);
    let root = dir.path().join("machine");
    let context = Context::new(&root, ModuleState::Unknown);
    let live = run(&context);
    assert_outcomes(
        &live,
        &[
            "user_space_found",
            "bandwidth_test_access_matches_topology",
            "bandwidth_test_peer_bandwidth",
            "bandwidth_test_copies_validated",
        ],
        &[],
    );
    assert_eq!(
        notes(&live, "bandwidth_test_copies_validated"),
        [
            "node 1 (0000:19:00.0) -> node 2 (0000:67:00.0): copy verified (`-s 1 -d 2 -v`)",
            "node 2 (0000:67:00.0) -> node 1 (0000:19:00.0): copy verified (`-s 2 -d 1 -v`)",
        ]
    );

    let recorded = dir.path().join("recorded");
    let found = context.rocm_tools().unwrap();
    let runs = context.rocm_runs().unwrap();
    let tarball = recording::write(&recorded, "a test runner", &root, found, runs).unwrap();
    assert_eq!(tarball, dir.path().join("recorded.tar"));
    let replayed = run(&Context::replay(&recorded));
    // The same outcomes and notes; the skips (tools absent) say "not in the recording" instead.
    let strip = |cases: &[Case]| -> Vec<(String, Option<Outcome>, Vec<String>)> {
        cases
            .iter()
            .map(|c| {
                let outcome = (!matches!(c.outcome, Outcome::Skip(_))).then(|| c.outcome.clone());
                (c.name.clone(), outcome, c.notes.clone())
            })
            .collect()
    };
    assert_eq!(strip(&replayed), strip(&live));

    // The tarball holds the recording, deterministically: written again, byte for byte equal.
    let first = fs::read(&tarball).unwrap();
    recording::tarball(&recorded).unwrap();
    assert_eq!(fs::read(&tarball).unwrap(), first);
    let mut archive = tar::Archive::new(first.as_slice());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect();
    for expected in [
        "recorded/recording.json",
        "recorded/outputs/00-rocm_bandwidth_test-topology.out",
        "recorded/outputs/01-rocm_bandwidth_test-validate-1-2.out",
        "recorded/root/sys/bus/pci/devices/0000:19:00.0",
        "recorded/root/sys/devices/virtual/kfd/kfd/topology/nodes/1/p2p_links/0/properties",
        "recorded/root/proc/cmdline",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} not in {names:#?}"
        );
    }
}

#[test]
fn a_failed_verification_fails_naming_the_pair() {
    let dir = fake_runner(1);
    let context = Context::new(dir.path().join("machine"), ModuleState::Unknown);
    let cases = run(&context);
    let problems = problems(outcome(&cases, "bandwidth_test_copies_validated"));
    assert_eq!(problems.len(), 2);
    assert!(problems[0]
        .starts_with("node 1 (0000:19:00.0) -> node 2 (0000:67:00.0): verification failed: `"));
    assert!(problems[0].ends_with("rocm_bandwidth_test -s 1 -d 2 -v` exited with 1: "));
}

#[test]
fn without_tools_every_case_skips_saying_what_is_missing() {
    let cases = run(&Context::new(
        common::fixture("mi210-pair"),
        ModuleState::Unknown,
    ));
    for case in &cases {
        assert_eq!(
            case.outcome,
            Outcome::skip(
                "no ROCm user space: none of rocm_bandwidth_test, TransferBench, rocm-smi, \
                 amd-smi in PATH or /opt/rocm*/bin"
            ),
            "{}",
            case.name
        );
    }
    // With a tool but without a second GPU, the GPU is what is missing.
    let dir = fake_runner(0);
    let root = dir.path().join("machine");
    // amdkfd's tree without node 2 and the links to it.
    let nodes = root.join("sys/devices/virtual/kfd/kfd/topology/nodes");
    fs::remove_dir_all(nodes.join("2")).unwrap();
    fs::remove_dir_all(nodes.join("0/io_links/1")).unwrap();
    fs::remove_dir_all(nodes.join("1/p2p_links")).unwrap();
    for (node, key, count) in [("0", "io_links_count", "2"), ("1", "p2p_links_count", "1")] {
        let path = nodes.join(node).join("properties");
        let text = fs::read_to_string(&path).unwrap();
        let edited = text.replace(
            &format!("{key} {count}\n"),
            &format!("{key} {}\n", count.parse::<u32>().unwrap() - 1),
        );
        assert_ne!(edited, text);
        fs::write(&path, edited).unwrap();
    }
    let cases = run(&Context::new(&root, ModuleState::Unknown));
    assert_eq!(
        outcome(&cases, "bandwidth_test_access_matches_topology"),
        &Outcome::skip("1 GPU in amdkfd's topology: a peer pair needs a second GPU")
    );
    assert_eq!(
        outcome(&cases, "rocm_smi_links_match_topology"),
        &Outcome::skip("rocm-smi not found in PATH or /opt/rocm*/bin (package rocm-smi-lib)")
    );
}
