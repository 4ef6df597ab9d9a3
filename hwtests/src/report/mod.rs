//! The outcome model of a test run and its three renderings: KTAP (kernel CI systems), JUnit XML
//! (GitHub Actions, GitLab, Jenkins) and JSON (tools).
//!
//! A case is identified by its suite and name; a skipped case always carries the reason, and a
//! passing case may carry notes (e.g. known upstream deviations) that every format shows.

mod copy_record;
mod json;
mod junit;
mod ktap;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use copy_record::{CopyPath, CopyRecord};
pub use json::{json, JsonCase, JsonOutcome, JsonReport};
pub use junit::junit;
pub use ktap::ktap;

/// How a test case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed; one line per problem (never empty when rendered: an empty list reads "failed").
    Fail(Vec<String>),
    /// It could not run here; why.
    Skip(String),
}

impl Outcome {
    /// A failure with a single reason.
    pub fn fail(reason: impl Into<String>) -> Self {
        Outcome::Fail(vec![reason.into()])
    }

    /// A skip with its reason.
    pub fn skip(reason: impl Into<String>) -> Self {
        Outcome::Skip(reason.into())
    }

    /// Pass when there is no problem, else a failure listing them.
    pub fn from_problems(problems: Vec<String>) -> Self {
        if problems.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail(problems)
        }
    }

    /// Whether this is a failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }

    /// Whether this is a skip.
    pub fn is_skip(&self) -> bool {
        matches!(self, Outcome::Skip(_))
    }

    /// `pass`, `fail` or `skip`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        }
    }

    /// The failure lines, or `["failed"]` for a failure without any.
    pub fn failure_lines(&self) -> Vec<&str> {
        match self {
            Outcome::Fail(problems) if problems.is_empty() => vec!["failed"],
            Outcome::Fail(problems) => problems.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// One finished test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Suite (group of related cases, e.g. `kfd`).
    pub suite: String,
    /// Test name inside the suite.
    pub name: String,
    /// Result.
    pub outcome: Outcome,
    /// Remarks that do not change the outcome (known upstream deviations, measured figures).
    pub notes: Vec<String>,
    /// Time spent.
    pub duration: Duration,
}

impl Case {
    /// A case without notes.
    pub fn new(
        suite: impl Into<String>,
        name: impl Into<String>,
        outcome: Outcome,
        duration: Duration,
    ) -> Self {
        Case {
            suite: suite.into(),
            name: name.into(),
            outcome,
            notes: Vec::new(),
            duration,
        }
    }

    /// `suite.name`, the name `--only` matches.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.suite, self.name)
    }
}

/// Counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases that could not run.
    pub skipped: usize,
}

impl Summary {
    /// The counts of `cases`.
    pub fn of<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Self {
        let mut summary = Summary::default();
        for case in cases {
            match case.outcome {
                Outcome::Pass => summary.passed += 1,
                Outcome::Fail(_) => summary.failed += 1,
                Outcome::Skip(_) => summary.skipped += 1,
            }
        }
        summary
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// The suites of `cases` in order of first appearance, each with its cases.
pub fn suites(cases: &[Case]) -> Vec<(&str, Vec<&Case>)> {
    let mut suites: Vec<(&str, Vec<&Case>)> = Vec::new();
    for case in cases {
        match suites.iter_mut().find(|(name, _)| *name == case.suite) {
            Some((_, members)) => members.push(case),
            None => suites.push((&case.suite, vec![case])),
        }
    }
    suites
}

/// A whole run: the cases, the tests the filter left out, and facts about where it ran.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Name of the run (`test-hw`, `vm-test`), used as the JUnit `testsuites` name.
    pub name: String,
    /// The cases that ran (or were skipped), in order.
    pub cases: Vec<Case>,
    /// Full names of the tests `--only` left out: neither passed nor skipped, and not in KTAP
    /// or JUnit.
    pub deselected: Vec<String>,
    /// Facts about the machine and the preflight, `(key, value)` in order.
    pub environment: Vec<(String, String)>,
    /// The copies whose bytes an observer outside the machine can verify (the emulated
    /// machine's host reads the VRAM backing files).
    pub copies: Vec<CopyRecord>,
}

impl Run {
    /// The counts.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.cases)
    }

    /// Whether any case failed.
    pub fn failed(&self) -> bool {
        self.cases.iter().any(|case| case.outcome.is_failure())
    }
}

/// Paths of the files [`write_reports`] wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// `results.ktap`.
    pub ktap: PathBuf,
    /// `junit.xml`.
    pub junit: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
}

/// Writes `results.ktap`, `junit.xml` and `report.json` into `dir` (created if needed).
pub fn write_reports(run: &Run, dir: &Path) -> std::io::Result<ReportFiles> {
    std::fs::create_dir_all(dir)?;
    let files = ReportFiles {
        ktap: dir.join("results.ktap"),
        junit: dir.join("junit.xml"),
        json: dir.join("report.json"),
    };
    std::fs::write(&files.ktap, ktap(&run.cases))?;
    std::fs::write(&files.junit, junit(&run.name, &run.cases))?;
    let text = serde_json::to_string_pretty(&json(run)).map_err(std::io::Error::other)?;
    std::fs::write(&files.json, text + "\n")?;
    Ok(files)
}
