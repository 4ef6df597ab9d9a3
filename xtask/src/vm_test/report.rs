//! Results of vm-test cases: KTAP on the console, JUnit XML under `target/vm-test/`.
//!
//! The rendering is the hwtests report code (`hsa_p2p_hwtests::report`), the same KTAP and JUnit
//! writers `cargo xtask test-hw` and the `hwtests` binary use, so every runner's output reads
//! alike; this module keeps vm-test's case type (seconds as `f64`) and converts.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use hsa_p2p_hwtests::report::{self as hw, Summary};

pub use hsa_p2p_hwtests::report::Outcome;

/// A named test case in a suite (one suite per spec).
#[derive(Clone, Debug)]
pub struct Case {
    /// Suite (the spec's name).
    pub suite: String,
    /// Test name.
    pub name: String,
    /// Result.
    pub outcome: Outcome,
    /// Seconds spent (the VM boot is charged to the suite's first case).
    pub seconds: f64,
}

fn to_report(cases: &[Case]) -> Vec<hw::Case> {
    cases
        .iter()
        .map(|case| {
            hw::Case::new(
                case.suite.clone(),
                case.name.clone(),
                case.outcome.clone(),
                Duration::try_from_secs_f64(case.seconds).unwrap_or_default(),
            )
        })
        .collect()
}

/// KTAP v1: one subtest block per suite.
pub fn ktap(cases: &[Case]) -> String {
    hw::ktap(&to_report(cases))
}

/// JUnit XML (the dialect GitHub Actions, GitLab and Jenkins read).
pub fn junit(cases: &[Case]) -> String {
    hw::junit("vm-test", &to_report(cases))
}

/// `N passed, N failed, N skipped`.
pub fn summary(cases: &[Case]) -> String {
    Summary::of(&to_report(cases)).to_string()
}

/// Writes the JUnit file.
pub fn write_junit(cases: &[Case], path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, junit(cases)).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome) -> Case {
        Case {
            suite: "same-switch".into(),
            name: name.into(),
            outcome,
            seconds: 1.5,
        }
    }

    #[test]
    fn ktap_and_junit_carry_every_outcome() {
        let cases = vec![
            case("boot", Outcome::Pass),
            case("matches", Outcome::Fail(vec!["nodes/1/x: <bad>".into()])),
            case("why", Outcome::Skip("no p2pctl".into())),
        ];
        let ktap = ktap(&cases);
        assert!(ktap.starts_with("KTAP version 1\n1..1\n"));
        assert!(ktap.contains("    ok 1 boot\n"));
        assert!(ktap.contains("    # nodes/1/x: <bad>\n    not ok 2 matches\n"));
        assert!(ktap.contains("    ok 3 why # SKIP no p2pctl\n"));
        assert!(ktap.ends_with("not ok 1 same-switch\n"));
        let junit = junit(&cases);
        assert!(junit.contains("<testsuites name=\"vm-test\" tests=\"3\" failures=\"1\""));
        assert!(junit.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""));
        assert!(junit.contains("<failure message=\"nodes/1/x: &lt;bad&gt;\""));
        assert!(junit.contains("time=\"1.500\""));
        assert_eq!(summary(&cases), "1 passed, 1 failed, 1 skipped");
    }
}
