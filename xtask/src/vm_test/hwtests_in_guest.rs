//! The hardware-in-the-loop runner (`hwtests`, the one `cargo xtask test-hw` runs on real
//! machines) run inside the guest against the module it just loaded: its module-topology,
//! transfer and isolation cases become vm-test cases of the spec's suite, named
//! `hwtests.<suite>.<test>`.
//!
//! The amdkfd suite is left out: the guest has no amdgpu, so it could only skip.

use serde_json::Value;

use super::report::{Case, Outcome};

const BEGIN: &str = "@@HWTESTS_JSON";
const END: &str = "@@HWTESTS_JSON_END";

/// The guest snippet (the static runner is /bin/hwtests, the module is loaded).
pub fn hwtests_command() -> String {
    format!(
        "hwtests --module-loaded --only 'hsa_p2p.*' --only 'transfer.*' --only 'isolation.*' --report /tmp/hwtests > /tmp/hwtests.ktap 2>&1; \
         echo '{BEGIN}'; cat /tmp/hwtests/report.json; echo; echo '{END}'"
    )
}

/// The runner's cases as vm-test cases of `suite`; a missing or unreadable report is a failure.
pub fn hwtests_cases(console: &str, suite: &str) -> Vec<Case> {
    let case = |name: String, outcome: Outcome, seconds: f64| Case {
        suite: suite.to_string(),
        name,
        outcome,
        seconds,
    };
    let report = report_json(console);
    let Some(cases) = report.as_ref().and_then(|r| r["cases"].as_array()) else {
        return vec![case(
            "hwtests".into(),
            Outcome::fail("the guest's hwtests printed no JSON report"),
            0.0,
        )];
    };
    if cases.is_empty() {
        return vec![case(
            "hwtests".into(),
            Outcome::fail("the guest's hwtests selected no case"),
            0.0,
        )];
    }
    cases
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or("?").to_string();
            let reasons: Vec<String> = c["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let outcome = match c["outcome"].as_str() {
                Some("pass") => Outcome::Pass,
                Some("skip") => Outcome::Skip(reasons.join("; ")),
                Some("fail") => Outcome::Fail(reasons),
                other => Outcome::fail(format!("unknown hwtests outcome {other:?}")),
            };
            case(
                format!("hwtests.{}.{}", text("suite"), text("name")),
                outcome,
                c["seconds"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

fn report_json(console: &str) -> Option<Value> {
    let report = crate::vm::console::section(console, BEGIN, END)?;
    serde_json::from_str(&report.lines.join("\n")).ok()
}
