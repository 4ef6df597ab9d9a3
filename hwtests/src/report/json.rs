//! The JSON report: every case with its outcome, reasons, notes and duration, the counts, the
//! deselected tests, the environment (preflight findings) and the copies an outside observer
//! can verify. It reads back into the same [`Run`] (the emulated machines' host does).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Case, CopyRecord, Outcome, Run, Summary};

/// The JSON document.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Copies left in VRAM for an outside observer.
    #[serde(default)]
    pub copies: Vec<CopyRecord>,
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonOutcome {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Skipped.
    Skip,
}

/// One case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JsonCase {
    /// Suite.
    pub suite: String,
    /// Name.
    pub name: String,
    /// `pass`, `fail` or `skip`.
    pub outcome: JsonOutcome,
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
                outcome: match case.outcome {
                    Outcome::Pass => JsonOutcome::Pass,
                    Outcome::Fail(_) => JsonOutcome::Fail,
                    Outcome::Skip(_) => JsonOutcome::Skip,
                },
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
        copies: run.copies.clone(),
    }
}

impl From<JsonReport> for Run {
    fn from(report: JsonReport) -> Self {
        Run {
            name: report.run,
            cases: report
                .cases
                .into_iter()
                .map(|case| Case {
                    outcome: match case.outcome {
                        JsonOutcome::Pass => Outcome::Pass,
                        JsonOutcome::Fail => Outcome::Fail(case.reasons),
                        JsonOutcome::Skip => Outcome::Skip(case.reasons.join("; ")),
                    },
                    suite: case.suite,
                    name: case.name,
                    notes: case.notes,
                    duration: Duration::try_from_secs_f64(case.seconds).unwrap_or_default(),
                })
                .collect(),
            deselected: report.deselected,
            environment: report.environment.into_iter().collect(),
            copies: report.copies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_survives_the_trip_through_json() {
        let run = Run {
            name: "vm".into(),
            cases: vec![
                Case::new("abi", "a", Outcome::Pass, Duration::from_millis(250)),
                Case::new("abi", "b", Outcome::fail("EINVAL"), Duration::ZERO),
                Case::new("device", "c", Outcome::skip("no GPU"), Duration::ZERO),
            ],
            deselected: vec!["kfd.x".into()],
            environment: vec![("root".into(), "/".into())],
            copies: vec![CopyRecord {
                from: 1,
                to: 2,
                src_offset: 0,
                dst_offset: 4096,
                size: 8192,
                seed: 5,
                path: hsa_p2p_runtime::device::CopyPath::Staged,
                direct_refused: true,
                map_type: 0,
                bus_address: 0,
                phys_address: 0xfe00_1000,
            }],
        };
        let text = serde_json::to_string(&json(&run)).unwrap();
        let back: Run = serde_json::from_str::<JsonReport>(&text).unwrap().into();
        assert_eq!(back.cases, run.cases);
        assert_eq!(back.copies, run.copies);
        assert_eq!(back.deselected, run.deselected);
        assert_eq!(back.environment, run.environment);
    }
}
