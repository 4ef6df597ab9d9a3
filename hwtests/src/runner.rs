//! Named tests, the `--only` filter, and running them into a [`Run`].
//!
//! A test is a function of the [`Context`] that returns its outcome and notes. Tests the filter
//! leaves out are listed as deselected: they are neither passed nor skipped, and do not appear
//! in KTAP or JUnit.

use std::time::Instant;

use crate::context::Context;
use crate::report::{Case, CopyRecord, Outcome, Run};

/// What a test function returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutput {
    /// Result.
    pub outcome: Outcome,
    /// Remarks that do not change the outcome.
    pub notes: Vec<String>,
    /// Copies left in VRAM for an outside observer to verify.
    pub copies: Vec<CopyRecord>,
}

impl TestOutput {
    /// An outcome with notes.
    pub fn with_notes(outcome: Outcome, notes: Vec<String>) -> Self {
        TestOutput {
            outcome,
            notes,
            copies: Vec::new(),
        }
    }
}

impl From<Outcome> for TestOutput {
    fn from(outcome: Outcome) -> Self {
        TestOutput::with_notes(outcome, Vec::new())
    }
}

/// A named test.
#[derive(Clone, Copy)]
pub struct Test {
    /// Suite, e.g. `kfd`.
    pub suite: &'static str,
    /// Name inside the suite.
    pub name: &'static str,
    /// One sentence: what must hold.
    pub description: &'static str,
    /// The check.
    pub run: fn(&Context) -> TestOutput,
}

impl Test {
    /// `suite.name`.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.suite, self.name)
    }
}

impl std::fmt::Debug for Test {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full_name())
    }
}

/// The `--only` patterns: a test runs when any pattern matches its `suite.name`. A pattern with
/// `*` is a glob over the whole name (`kfd.*`, `*bandwidth*`); one without is a substring.
/// No pattern selects everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    patterns: Vec<String>,
}

impl Filter {
    /// A filter from `--only` values.
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Filter {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `full_name` is selected.
    pub fn selects(&self, full_name: &str) -> bool {
        self.patterns.is_empty()
            || self.patterns.iter().any(|pattern| {
                if pattern.contains('*') {
                    glob_matches(pattern, full_name)
                } else {
                    full_name.contains(pattern.as_str())
                }
            })
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Runs the selected `tests` in order.
pub fn run(name: &str, tests: &[Test], filter: &Filter, context: &Context) -> Run {
    let mut run = Run {
        name: name.to_string(),
        ..Run::default()
    };
    for test in tests {
        if !filter.selects(&test.full_name()) {
            run.deselected.push(test.full_name());
            continue;
        }
        let started = Instant::now();
        let output = (test.run)(context);
        run.copies.extend(output.copies);
        run.cases.push(Case {
            suite: test.suite.to_string(),
            name: test.name.to_string(),
            outcome: output.outcome,
            notes: output.notes,
            duration: started.elapsed(),
        });
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches("kfd.*", "kfd.tree_is_consistent"));
        assert!(glob_matches("*bandwidth*", "kfd.max_bandwidth_x"));
        assert!(glob_matches("*.p2p_*_match", "kfd.p2p_links_match"));
        assert!(!glob_matches("kfd.*", "hsa_p2p.tree"));
        assert!(!glob_matches("*.tree", "kfd.tree_is"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a*a", "a"));
    }

    #[test]
    fn plain_patterns_are_substrings_and_no_pattern_selects_all() {
        assert!(Filter::default().selects("anything.at_all"));
        let filter = Filter::new(["transfer", "kfd.tree*"]);
        assert!(filter.selects("transfer.push_verified"));
        assert!(filter.selects("kfd.tree_is_consistent"));
        assert!(!filter.selects("kfd.gpus_match_pci_devices"));
    }
}
