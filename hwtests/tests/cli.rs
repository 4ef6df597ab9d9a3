//! The `hwtests` binary: exit status, printed KTAP and summary, written reports.

mod common;

use std::process::Command;

use common::fixture;

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
        stdout.ends_with("hwtests: 4 passed, 0 failed, 40 skipped\n"),
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
        stdout.ends_with("hwtests: 0 passed, 0 failed, 44 skipped\n"),
        "{stdout}"
    );
    assert!(stdout.contains(
        "ok 1 tree_is_consistent # SKIP preflight: the running kernel has no CONFIG_RUST"
    ));
    assert!(!stdout
        .lines()
        .any(|l| l.trim_start().starts_with("ok ") && !l.contains("# SKIP")));
}
