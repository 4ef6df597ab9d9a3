//! KTAP version 1 (Documentation/dev-tools/ktap.rst), as kunit prints it: one subtest per suite.
//!
//! Failure reasons and notes go into diagnostic lines (`# …`) before the result line, skip
//! reasons after the `# SKIP` directive. Names and reasons are kept on one line and free of
//! `#` so that KTAP parsers (kunit.py, LAVA, KernelCI) read them unchanged.

use std::fmt::Write as _;

use super::{suites, Case, Outcome};

/// One line, with `#` (KTAP's directive marker) replaced.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace('#', "no.")
}

/// A test name: KTAP names are a single token in practice (kunit uses identifiers).
fn name(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '#' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unnamed".to_string()
    } else {
        cleaned
    }
}

/// The KTAP document for `cases`.
pub fn ktap(cases: &[Case]) -> String {
    let suites = suites(cases);
    let mut out = format!("KTAP version 1\n1..{}\n", suites.len());
    for (number, (suite, members)) in suites.iter().enumerate() {
        let _ = writeln!(
            out,
            "    KTAP version 1\n    # Subtest: {}\n    1..{}",
            name(suite),
            members.len()
        );
        for (index, case) in members.iter().enumerate() {
            for note in &case.notes {
                let _ = writeln!(out, "    # {}", one_line(note));
            }
            let test = name(&case.name);
            let index = index + 1;
            match &case.outcome {
                Outcome::Pass => {
                    let _ = writeln!(out, "    ok {index} {test}");
                }
                Outcome::Fail(_) => {
                    for line in case.outcome.failure_lines() {
                        let _ = writeln!(out, "    # {}", one_line(line));
                    }
                    let _ = writeln!(out, "    not ok {index} {test}");
                }
                Outcome::Skip(reason) => {
                    let _ = writeln!(out, "    ok {index} {test} # SKIP {}", one_line(reason));
                }
            }
        }
        // A suite whose every case was skipped is itself skipped, as kunit reports it.
        let failed = members.iter().any(|c| c.outcome.is_failure());
        let all_skipped = members.iter().all(|c| c.outcome.is_skip());
        let status = if failed { "not ok" } else { "ok" };
        let directive = if all_skipped && !failed {
            " # SKIP every case was skipped"
        } else {
            ""
        };
        let _ = writeln!(out, "{status} {} {}{directive}", number + 1, name(suite));
    }
    out
}
