//! `p2pctl why A B`.

use anyhow::Result;
use serde::Serialize;

use hsa_p2p_runtime::cli::WhyArgs;
use hsa_p2p_runtime::explain::{explain, explain_on_machine, Explanation, Reason, Verdict};
use hsa_p2p_runtime::node_names::resolve_node;
use hsa_p2p_runtime::report::json::WHY_SCHEMA;
use hsa_p2p_runtime::report::Labels;

use crate::output::{emit, emit_json};
use crate::source;

#[derive(Serialize)]
struct WhyDocument<'a> {
    schema: &'static str,
    from: u32,
    to: u32,
    from_label: String,
    to_label: String,
    access: bool,
    via: Option<&'static str>,
    link_type: Option<&'static str>,
    weight: Option<u32>,
    max_bandwidth: Option<u32>,
    reasons: &'a [Reason],
    p2pdma_distance: Option<u32>,
    hints: &'a [String],
    reverse_access: bool,
}

pub fn run(args: &WhyArgs) -> Result<()> {
    let loaded = source::load(&args.source)?;
    let from = resolve_node(&loaded.topology, &loaded.labels, &args.accessor)?;
    let to = resolve_node(&loaded.topology, &loaded.labels, &args.owner)?;
    let machine_root = args.source.machine_root(args.machine_root.as_ref());
    let explanation = match &machine_root {
        Some(root) => explain_on_machine(&loaded.topology, from, to, root)?,
        None => explain(&loaded.topology, from, to)?,
    };
    if args.output.json {
        emit_json(&document(&explanation, &loaded.labels), args.output)?;
    } else {
        emit(render(&explanation, &loaded.labels))?;
    }
    Ok(())
}

fn name(labels: &Labels, id: u32) -> String {
    let label = labels.name(id);
    if label == format!("node{id}") {
        label
    } else {
        format!("{label} (node {id})")
    }
}

fn render(explanation: &Explanation, labels: &Labels) -> String {
    let (from, to) = (name(labels, explanation.from), name(labels, explanation.to));
    let mut out = String::new();
    match &explanation.verdict {
        Verdict::Allowed { via, link } => {
            out += &format!(
                "{from} -> {to}: P2P allowed over {} ({}), weight {}, max bandwidth {} MB/s\n",
                link.link_type.name(),
                via.name(),
                link.weight,
                link.max_bandwidth
            );
        }
        Verdict::Denied {
            reasons,
            p2pdma_distance,
            hints,
        } => {
            out += &format!("{from} -> {to}: no P2P ({from} cannot access {to}'s VRAM)\n");
            for reason in reasons {
                let inferred = match reason.basis {
                    "tree" => " (inferred from the tree)",
                    "pci facts" => " (from the machine's PCI facts)",
                    _ => "",
                };
                out += &format!(
                    "  reason{inferred}: {}: {}\n",
                    reason.name, reason.explanation
                );
                out += &format!("  fix: {}\n", reason.remedy);
            }
            if let Some(distance) = p2pdma_distance {
                out += &format!("  (the PCI core allows the path, p2pdma distance {distance})\n");
            }
            for hint in hints {
                out += &format!("  note: {hint}\n");
            }
        }
    }
    let reverse = if explanation.reverse_allowed {
        "allowed"
    } else {
        "not allowed"
    };
    out += &format!("The reverse direction ({to} -> {from}) is {reverse}.\n");
    out
}

fn document<'a>(explanation: &'a Explanation, labels: &Labels) -> WhyDocument<'a> {
    let (link, reasons, distance, hints): (_, &[Reason], _, &[String]) = match &explanation.verdict
    {
        Verdict::Allowed { via, link } => (Some((*via, *link)), &[], None, &[]),
        Verdict::Denied {
            reasons,
            p2pdma_distance,
            hints,
        } => (None, reasons, *p2pdma_distance, hints),
    };
    WhyDocument {
        schema: WHY_SCHEMA,
        from: explanation.from,
        to: explanation.to,
        from_label: labels.name(explanation.from),
        to_label: labels.name(explanation.to),
        access: link.is_some(),
        via: link.map(|(via, _)| via.name()),
        link_type: link.map(|(_, link)| link.link_type.name()),
        weight: link.map(|(_, link)| link.weight),
        max_bandwidth: link.map(|(_, link)| link.max_bandwidth),
        reasons,
        p2pdma_distance: distance,
        hints,
        reverse_access: explanation.reverse_allowed,
    }
}
