//! The JSON report: every case with its outcome, reasons, notes and duration, the counts, the
//! deselected tests and the environment (preflight findings).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Outcome, Run, Summary};

/// The JSON document.
#[derive(Clone, Debug, Serialize)]
pub struct JsonReport {
    /// Name of the run.
    pub run: String,
    /// Counts.
    pub summary: Summary,
    /// Tests left out by `--only`.
    pub deselected: Vec<String>,
    /// Facts about the machine and preflight.
    pub environment: BTreeMap<String, String>,
    /// Every case in order.
    pub cases: Vec<JsonCase>,
}

/// One case.
#[derive(Clone, Debug, Serialize)]
pub struct JsonCase {
    /// Suite.
    pub suite: String,
    /// Name.
    pub name: String,
    /// `pass`, `fail` or `skip`.
    pub outcome: &'static str,
    /// Failure lines, or the skip reason as the only element.
    pub reasons: Vec<String>,
    /// Notes (known deviations and the like).
    pub notes: Vec<String>,
    /// Seconds spent.
    pub seconds: f64,
}

/// The JSON document for `run`.
pub fn json(run: &Run) -> JsonReport {
    JsonReport {
        run: run.name.clone(),
        summary: run.summary(),
        deselected: run.deselected.clone(),
        environment: run.environment.iter().cloned().collect(),
        cases: run
            .cases
            .iter()
            .map(|case| JsonCase {
                suite: case.suite.clone(),
                name: case.name.clone(),
                outcome: case.outcome.keyword(),
                reasons: match &case.outcome {
                    Outcome::Pass => Vec::new(),
                    Outcome::Fail(_) => case
                        .outcome
                        .failure_lines()
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                    Outcome::Skip(reason) => vec![reason.clone()],
                },
                notes: case.notes.clone(),
                seconds: case.duration.as_secs_f64(),
            })
            .collect(),
    }
}
