//! The `hwtests` binary: exit status, printed KTAP and summary, written reports.

mod common;

use std::process::Command;

use common::fixture;

/// How many cases a run without `--only` has.
fn cases() -> usize {
    hsa_p2p_hwtests::cases::all().len()
}

fn hwtests(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hwtests"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn a_good_fixture_exits_zero_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture("four-gpu-intel");
    let (status, stdout) = hwtests(&[
        "--root",
        root.to_str().unwrap(),
        "--report",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{stdout}");
    assert!(stdout.starts_with("KTAP version 1\n"));
    assert!(
        stdout.ends_with(&format!(
            "hwtests: 4 passed, 0 failed, {} skipped\n",
            cases() - 4
        )),
        "{stdout}"
    );
    for file in ["results.ktap", "junit.xml", "report.json"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
}

#[test]
fn a_wrong_fixture_exits_one() {
    let root = fixture("mi210-pair-wrong-weight");
    let (status, stdout) = hwtests(&["--root", root.to_str().unwrap(), "--only", "kfd"]);
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.ends_with("hwtests: 3 passed, 1 failed, 0 skipped\n"),
        "{stdout}"
    );
}

#[test]
fn a_machine_without_gpus_skips_everything_with_reasons() {
    let empty = tempfile::tempdir().unwrap();
    let (status, stdout) = hwtests(&[
        "--root",
        empty.path().to_str().unwrap(),
        "--module-unavailable",
        "preflight: the running kernel has no CONFIG_RUST",
    ]);
    assert_eq!(status, 0, "{stdout}");
    assert!(
        stdout.ends_with(&format!(
            "hwtests: 0 passed, 0 failed, {} skipped\n",
            cases()
        )),
        "{stdout}"
    );
    assert!(stdout.contains(
        "ok 1 tree_is_consistent # SKIP preflight: the running kernel has no CONFIG_RUST"
    ));
    assert!(!stdout
        .lines()
        .any(|l| l.trim_start().starts_with("ok ") && !l.contains("# SKIP")));
}

#[test]
fn replay_exits_by_the_recordings_outcome_and_record_writes_a_replayable_copy() {
    let recordings = fixture("rocm/recordings");
    let replay = |name: &str| {
        hwtests(&[
            "--replay",
            recordings.join(name).to_str().unwrap(),
            "--only",
            "rocm.*",
            "--only",
            "kfd.*",
        ])
    };
    let (status, stdout) = replay("wx8100-pcie-p2p");
    assert_eq!(status, 0, "{stdout}");
    assert!(
        stdout.ends_with("hwtests: 7 passed, 0 failed, 4 skipped\n"),
        "{stdout}"
    );
    let (status, stdout) = replay("mi308x-xgmi-hive-wrong-weight");
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("not ok 6 rocm_smi_links_match_topology"),
        "{stdout}"
    );

    // A machine without ROCm tools records its facts and an empty list of runs.
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("mi210");
    let (status, stdout) = hwtests(&[
        "--root",
        fixture("mi210-pair").to_str().unwrap(),
        "--only",
        "kfd.*",
        "--record",
        recorded.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{stdout}");
    assert!(dir.path().join("mi210.tar").is_file());
    let (status, stdout) = hwtests(&["--replay", recorded.to_str().unwrap(), "--only", "kfd.*"]);
    assert_eq!(status, 0, "{stdout}");
    assert!(
        stdout.ends_with("hwtests: 4 passed, 0 failed, 0 skipped\n"),
        "{stdout}"
    );
}
