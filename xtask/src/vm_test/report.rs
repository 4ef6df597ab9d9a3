//! Results of vm-test cases: KTAP on the console, JUnit XML under `target/vm-test/`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

/// How a test case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed; one line per problem.
    Fail(Vec<String>),
    /// It could not run here; the reason.
    Skip(String),
}

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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// KTAP v1: one subtest block per suite.
pub fn ktap(cases: &[Case]) -> String {
    let mut suites: Vec<&str> = Vec::new();
    for case in cases {
        if !suites.contains(&case.suite.as_str()) {
            suites.push(&case.suite);
        }
    }
    let mut out = format!("KTAP version 1\n1..{}\n", suites.len());
    for (suite_number, suite) in suites.iter().enumerate() {
        let members: Vec<&Case> = cases.iter().filter(|c| c.suite == *suite).collect();
        let _ = writeln!(
            out,
            "    KTAP version 1\n    # Subtest: {suite}\n    1..{}",
            members.len()
        );
        for (number, case) in members.iter().enumerate() {
            let number = number + 1;
            match &case.outcome {
                Outcome::Pass => {
                    let _ = writeln!(out, "    ok {number} {}", case.name);
                }
                Outcome::Fail(problems) => {
                    for problem in problems {
                        let _ = writeln!(out, "    # {problem}");
                    }
                    let _ = writeln!(out, "    not ok {number} {}", case.name);
                }
                Outcome::Skip(reason) => {
                    let _ = writeln!(out, "    ok {number} {} # SKIP {reason}", case.name);
                }
            }
        }
        let failed = members
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail(_)));
        let _ = writeln!(
            out,
            "{} {} {suite}",
            if failed { "not ok" } else { "ok" },
            suite_number + 1
        );
    }
    out
}

/// JUnit XML (the dialect GitHub Actions, GitLab and Jenkins read).
pub fn junit(cases: &[Case]) -> String {
    let mut suites: Vec<&str> = Vec::new();
    for case in cases {
        if !suites.contains(&case.suite.as_str()) {
            suites.push(&case.suite);
        }
    }
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"vm-test\">\n");
    for suite in suites {
        let members: Vec<&Case> = cases.iter().filter(|c| c.suite == suite).collect();
        let count = |f: fn(&Outcome) -> bool| members.iter().filter(|c| f(&c.outcome)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            escape(suite),
            members.len(),
            count(|o| matches!(o, Outcome::Fail(_))),
            count(|o| matches!(o, Outcome::Skip(_)))
        );
        for case in members {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(suite),
                escape(&case.name),
                case.seconds
            );
            match &case.outcome {
                Outcome::Pass => out.push_str("/>\n"),
                Outcome::Fail(problems) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(problems.first().map_or("failed", String::as_str)),
                        escape(&problems.join("\n"))
                    );
                }
                Outcome::Skip(reason) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(reason)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `N passed, N failed, N skipped`.
pub fn summary(cases: &[Case]) -> String {
    let count = |f: fn(&Outcome) -> bool| cases.iter().filter(|c| f(&c.outcome)).count();
    format!(
        "{} passed, {} failed, {} skipped",
        count(|o| *o == Outcome::Pass),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::Skip(_)))
    )
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
        assert!(junit.contains("tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(junit.contains("<failure message=\"nodes/1/x: &lt;bad&gt;\">"));
        assert_eq!(summary(&cases), "1 passed, 1 failed, 1 skipped");
    }
}
