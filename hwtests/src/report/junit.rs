//! JUnit XML in the dialect GitHub Actions reporters, GitLab and Jenkins read: `testsuites` >
//! `testsuite` > `testcase` with `failure` / `skipped` children and `time` in seconds.
//!
//! Notes of a case go to its `system-out`.

use std::fmt::Write as _;

use super::{suites, Case, Outcome, Summary};

/// Escapes text for attributes and element content; drops characters XML 1.0 forbids.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

fn seconds(cases: &[&Case]) -> f64 {
    cases.iter().map(|case| case.duration.as_secs_f64()).sum()
}

/// The JUnit document for `cases`, `run_name` naming the root `testsuites`.
pub fn junit(run_name: &str, cases: &[Case]) -> String {
    let total = Summary::of(cases);
    let all: Vec<&Case> = cases.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        escape(run_name),
        cases.len(),
        total.failed,
        total.skipped,
        seconds(&all)
    );
    for (suite, members) in suites(cases) {
        let counts = Summary::of(members.iter().copied());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            escape(suite),
            members.len(),
            counts.failed,
            counts.skipped,
            seconds(&members)
        );
        for case in members {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(suite),
                escape(&case.name),
                case.duration.as_secs_f64()
            );
            if case.outcome == Outcome::Pass && case.notes.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            match &case.outcome {
                Outcome::Pass => {}
                Outcome::Fail(_) => {
                    let lines = case.outcome.failure_lines();
                    let _ = writeln!(
                        out,
                        "      <failure message=\"{}\" type=\"failure\">{}</failure>",
                        escape(lines[0]),
                        escape(&lines.join("\n"))
                    );
                }
                Outcome::Skip(reason) => {
                    let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(reason));
                }
            }
            if !case.notes.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    escape(&case.notes.join("\n"))
                );
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
