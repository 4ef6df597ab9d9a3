//! The guest's `hwtests` (the runner `cargo xtask test-hw` runs on real machines) against the
//! module it just loaded: its typed report comes back over the console and its cases become
//! cases of the machine's suite, named `hwtests.<suite>.<test>`.

use std::time::Duration;

use hsa_p2p_hwtests::report::{Case, JsonReport, Outcome, Run};

use crate::vm::protocol;

/// The section the report travels in.
const REPORT: &str = "hwtests-report";

/// The step that runs the static `/bin/hwtests` on the suites `only` selects (with `extra`
/// arguments) and prints its JSON report.
pub fn step(only: &[&str], extra: &str) -> String {
    let only: Vec<String> = only.iter().map(|p| format!("--only '{p}'")).collect();
    format!(
        "hwtests --module-loaded {} {extra} --report /tmp/hwtests > /tmp/hwtests.ktap 2>&1; {}",
        only.join(" "),
        protocol::print_document(REPORT, "/tmp/hwtests/report.json")
    )
}

/// The guest's report.
pub fn read(console: &str) -> Result<Run, String> {
    protocol::read_document::<JsonReport>(console, REPORT).map(Run::from)
}

/// The report's cases as cases of `suite`; a missing report, or one without cases, is a
/// failure.
pub fn cases_of(report: &Result<Run, String>, suite: &str) -> Vec<Case> {
    let failure = |reason: &str| {
        vec![Case::new(
            suite,
            "hwtests",
            Outcome::fail(reason),
            Duration::ZERO,
        )]
    };
    match report {
        Err(problem) => failure(problem),
        Ok(run) if run.cases.is_empty() => failure("the guest's hwtests selected no case"),
        Ok(run) => run
            .cases
            .iter()
            .map(|case| Case {
                suite: suite.to_string(),
                name: format!("hwtests.{}", case.full_name()),
                ..case.clone()
            })
            .collect(),
    }
}

/// [`cases_of`] the report in `console`.
pub fn cases(console: &str, suite: &str) -> Vec<Case> {
    cases_of(&read(console), suite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsa_p2p_hwtests::report::json;

    #[test]
    fn the_report_becomes_cases_of_the_machine() {
        let run = Run {
            name: "hwtests".into(),
            cases: vec![
                Case::new("abi", "double_free", Outcome::Pass, Duration::ZERO),
                Case::new(
                    "device",
                    "node_is_0660",
                    Outcome::fail("mode 666"),
                    Duration::ZERO,
                ),
            ],
            ..Run::default()
        };
        let console =
            protocol::printed_document(REPORT, &serde_json::to_string_pretty(&json(&run)).unwrap());
        let cases = cases(&console, "transfers-x");
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["hwtests.abi.double_free", "hwtests.device.node_is_0660"]
        );
        assert_eq!(cases[1].outcome, Outcome::fail("mode 666"));
        assert!(cases.iter().all(|c| c.suite == "transfers-x"));
        let missing = super::cases("no report", "s");
        assert!(missing[0].outcome.is_failure());
    }
}
