//! `p2pctl why` run in the guest on the module's topology, for every ordered GPU pair, checked
//! against the explanation of the predicted topology: the user-facing verdict (access, and the
//! condition named when there is none) must be the same in the guest as on the host.

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::explain::{explain, Verdict};
use serde_json::Value;

const BEGIN: &str = "@@WHY";
const END: &str = "@@WHY_END";

/// The guest snippet: one `p2pctl why A B --json` document per line for every ordered pair of
/// GPU nodes under `root` (the static p2pctl is at /bin/p2pctl).
pub fn why_command(root: &str) -> String {
    format!(
        "echo '{BEGIN}'; gpus=$(for n in {root}/nodes/*; do [ \"$(cat $n/gpu_id)\" != 0 ] && basename $n; done); \
         for a in $gpus; do for b in $gpus; do if [ $a != $b ]; then \
         if ! p2pctl why $a $b --root {root} --json > /tmp/why.json; then fail p2pctl why $a $b; fi; \
         tr -d '\\n' < /tmp/why.json; echo; fi; done; done; echo '{END}'"
    )
}

/// Differences between the guest's verdicts and the prediction's; also the human summary of
/// each denied pair (for the log).
pub fn check_why(console: &str, predicted: &Topology) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut denied = Vec::new();
    let Some(answers) = crate::vm::console::section(console, BEGIN, END) else {
        return (vec!["the guest did not run p2pctl why".into()], denied);
    };
    let mut pairs = 0;
    for line in answers.lines {
        let Ok(document) = serde_json::from_str::<Value>(line) else {
            problems.push(format!("p2pctl why printed no JSON: {line:?}"));
            continue;
        };
        pairs += 1;
        let (Some(from), Some(to)) = (document["from"].as_u64(), document["to"].as_u64()) else {
            problems.push(format!("p2pctl why without from/to: {line}"));
            continue;
        };
        let guest_access = document["access"].as_bool();
        let guest_reasons: Vec<&str> = document["reasons"]
            .as_array()
            .map(|reasons| reasons.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        let Ok(expected) = explain(predicted, from as u32, to as u32) else {
            problems.push(format!("{from} -> {to}: not a GPU pair in the prediction"));
            continue;
        };
        let (expected_access, expected_reasons): (bool, Vec<String>) = match expected.verdict {
            Verdict::Allowed { .. } => (true, Vec::new()),
            Verdict::Denied { reasons, .. } => {
                (false, reasons.into_iter().map(|r| r.name).collect())
            }
        };
        if guest_access != Some(expected_access) || guest_reasons != expected_reasons {
            problems.push(format!(
                "{from} -> {to}: guest says access {guest_access:?} reasons {guest_reasons:?}, \
                 predicted access {expected_access} reasons {expected_reasons:?}"
            ));
        }
        if guest_access == Some(false) {
            denied.push(format!(
                "{from} -> {to}: no P2P: {}",
                guest_reasons.join(", ")
            ));
        }
    }
    let gpus = predicted.nodes.iter().filter(|node| node.is_gpu()).count();
    if pairs != gpus * gpus.saturating_sub(1) {
        problems.push(format!(
            "p2pctl why answered {pairs} pairs, expected {}",
            gpus * gpus.saturating_sub(1)
        ));
    }
    (problems, denied)
}
