//! `p2pctl predict SPEC.toml`: the topology the kernel rules produce for a machine description.

use std::path::Path;

use anyhow::Result;

use hsa_p2p_core::facts::PeerBandwidthRule;
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::cli::PredictArgs;
use hsa_p2p_runtime::peers::peer_pairs;
use hsa_p2p_runtime::report::shell_word::shell_word;
use hsa_p2p_runtime::report::{self, Labels};
use hsa_p2p_runtime::sysfs::emit_tree;
use hsa_p2p_runtime::views::TableKind;

use crate::output::{emit, emit_json};
use crate::source::load_spec;

pub fn run(args: &PredictArgs) -> Result<()> {
    let rule = if args.as_amdkfd {
        PeerBandwidthRule::AsAmdkfd
    } else {
        PeerBandwidthRule::Corrected
    };
    let loaded = load_spec(&args.spec, rule)?;
    if let Some(dir) = &args.emit_sysfs {
        emit_tree(dir, loaded.topology.render_sysfs(), args.force)?;
    }
    if args.output.json {
        let document =
            report::json::topology_document(&loaded.topology, &loaded.labels, loaded.source);
        emit_json(&document, args.output)?;
        return Ok(());
    }
    if let report::json::Source::Spec { name, .. } = &loaded.source {
        emit(
            format!(
                "Predicted KFD topology for spec {name:?} ({})\n",
                args.spec.display()
            ) + "\n",
        )?;
    }
    emit(verdicts(&loaded.topology, &loaded.labels, &args.spec))?;
    emit("\n")?;
    emit(report::matrix::render_matrices(
        &loaded.view_input(),
        &TableKind::ALL,
    ))?;
    if let Some(dir) = &args.emit_sysfs {
        emit(format!("sysfs tree written to {}", dir.display()) + "\n")?;
    }
    Ok(())
}

/// One line per ordered GPU pair.
fn verdicts(topology: &Topology, labels: &Labels, spec: &Path) -> String {
    let pairs = peer_pairs(topology);
    if pairs.is_empty() {
        return "Fewer than two GPUs: no peer pairs.\n".to_string();
    }
    let mut out = String::from("Peer access (accessor -> owner of the VRAM)\n");
    for pair in pairs {
        let (from, to) = (labels.name(pair.from), labels.name(pair.to));
        match (pair.link, pair.denial) {
            (Some((via, link)), _) if pair.has_access() => {
                out += &format!(
                    "  {from} -> {to}: P2P, {} via {}, weight {}, {}\n",
                    link.link_type.name(),
                    via.name(),
                    link.weight,
                    report::bandwidth::max_bandwidth_text(topology, labels, link)
                );
            }
            (_, Some(denial)) => {
                let reasons: Vec<_> = denial.reasons.iter().map(|r| r.name()).collect();
                let why = [
                    "p2pctl",
                    "why",
                    &from,
                    &to,
                    "--spec",
                    &spec.display().to_string(),
                ]
                .map(shell_word)
                .join(" ");
                out += &format!(
                    "  {from} -> {to}: no P2P: {} (details: {why})\n",
                    reasons.join(", ")
                );
            }
            _ => out += &format!("  {from} -> {to}: no P2P\n"),
        }
    }
    out
}
