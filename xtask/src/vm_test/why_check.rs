//! `p2pctl why` run in the guest on the module's topology, for every ordered GPU pair, checked
//! against the explanation of the predicted topology: the user-facing verdict (access, and the
//! condition named when there is none) must be the same in the guest as on the host.

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::explain::{explain, Verdict};

use crate::vm::protocol::{print_documents, read_documents};

/// The section the answers travel in, one `p2pctl why --json` document per line.
const WHY: &str = "why";

/// The part of a `p2pctl why --json` document (`hsa-p2p/why/v1`) compared here.
#[derive(Debug, serde::Deserialize)]
struct WhyAnswer {
    from: u32,
    to: u32,
    access: bool,
    reasons: Vec<WhyReason>,
}

#[derive(Debug, serde::Deserialize)]
struct WhyReason {
    name: String,
}

/// The guest step: `p2pctl why A B --json` on one line for every ordered pair of GPU nodes
/// under `root` (the static p2pctl is at /bin/p2pctl).
pub fn why_step(root: &str) -> String {
    print_documents(
        WHY,
        &format!(
            "gpus=$(for n in {root}/nodes/*; do [ \"$(cat $n/gpu_id)\" != 0 ] && basename $n; done); \
             for a in $gpus; do for b in $gpus; do if [ $a != $b ]; then \
             if ! p2pctl why $a $b --root {root} --json > /tmp/why.json; then fail p2pctl why $a $b; fi; \
             tr -d '\\n' < /tmp/why.json; echo; fi; done; done"
        ),
    )
}

/// Differences between the guest's verdicts and the prediction's; also the human summary of
/// each denied pair (for the log).
pub fn check_why(console: &str, predicted: &Topology) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut denied = Vec::new();
    let answers = match read_documents::<WhyAnswer>(console, WHY) {
        Ok(answers) => answers,
        Err(problem) => return (vec![problem], denied),
    };
    let mut pairs = 0;
    for answer in answers {
        let answer = match answer {
            Ok(answer) => answer,
            Err(problem) => {
                problems.push(format!("p2pctl why printed no answer: {problem}"));
                continue;
            }
        };
        pairs += 1;
        let (from, to) = (answer.from, answer.to);
        let guest_reasons: Vec<&str> = answer.reasons.iter().map(|r| r.name.as_str()).collect();
        let Ok(expected) = explain(predicted, from, to) else {
            problems.push(format!("{from} -> {to}: not a GPU pair in the prediction"));
            continue;
        };
        let (expected_access, expected_reasons): (bool, Vec<String>) = match expected.verdict {
            Verdict::Allowed { .. } => (true, Vec::new()),
            Verdict::Denied { reasons, .. } => {
                (false, reasons.into_iter().map(|r| r.name).collect())
            }
        };
        if answer.access != expected_access || guest_reasons != expected_reasons {
            problems.push(format!(
                "{from} -> {to}: guest says access {} reasons {guest_reasons:?}, \
                 predicted access {expected_access} reasons {expected_reasons:?}",
                answer.access
            ));
        }
        if !answer.access {
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
