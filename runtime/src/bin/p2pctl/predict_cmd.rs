//! `p2pctl predict SPEC.toml`: the topology the kernel rules produce for a machine description.

use std::path::Path;

use anyhow::{Context, Result};

use hsa_p2p_core::facts::PeerBandwidthRule;
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::cli::PredictArgs;
use hsa_p2p_runtime::peers::peer_pairs;
use hsa_p2p_runtime::predict::predict_with;
use hsa_p2p_runtime::report::shell_word::shell_word;
use hsa_p2p_runtime::report::{self, Labels};
use hsa_p2p_runtime::spec::apply_settings;
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
    if !args.set.is_empty() {
        return what_if(args, rule);
    }
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

/// The verdict of every ordered GPU pair: (accessor, owner, verdict, denied).
fn pair_verdicts(topology: &Topology, labels: &Labels) -> Vec<(String, String, String, bool)> {
    peer_pairs(topology)
        .into_iter()
        .map(|pair| {
            let (from, to) = (labels.name(pair.from), labels.name(pair.to));
            match (pair.link, pair.denial) {
                (Some((via, link)), _) if pair.has_access() => {
                    let verdict = format!(
                        "P2P, {} via {}, weight {}, {}",
                        link.link_type.name(),
                        via.name(),
                        link.weight,
                        report::bandwidth::max_bandwidth_text(topology, labels, link)
                    );
                    (from, to, verdict, false)
                }
                (_, Some(denial)) => {
                    let reasons: Vec<_> = denial.reasons.iter().map(|r| r.name()).collect();
                    (from, to, format!("no P2P: {}", reasons.join(", ")), true)
                }
                _ => (from, to, "no P2P".to_string(), false),
            }
        })
        .collect()
}

/// One line per ordered GPU pair.
fn verdicts(topology: &Topology, labels: &Labels, spec: &Path) -> String {
    let pairs = pair_verdicts(topology, labels);
    if pairs.is_empty() {
        return "Fewer than two GPUs: no peer pairs.\n".to_string();
    }
    let mut out = String::from("Peer access (accessor -> owner of the VRAM)\n");
    for (from, to, verdict, denied) in pairs {
        out += &format!("  {from} -> {to}: {verdict}");
        if denied {
            let spec = spec.display().to_string();
            let why = ["p2pctl", "why", &from, &to, "--spec", &spec].map(shell_word);
            out += &format!(" (details: {})", why.join(" "));
        }
        out += "\n";
    }
    out
}

/// `--set`: the pairs whose verdict changes when the settings are applied to the spec.
fn what_if(args: &PredictArgs, rule: PeerBandwidthRule) -> Result<()> {
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("cannot read topology spec {}", args.spec.display()))?;
    let before = load_spec(&args.spec, rule)?;
    let changed = apply_settings(&text, &args.set)
        .map_err(|message| anyhow::anyhow!("{}: {message}", args.spec.display()))?;
    let after = predict_with(&changed, rule)?;
    let old = pair_verdicts(&before.topology, &before.labels);
    // Pairs are compared by position (GPUs keep their spec order); named as the spec names them.
    let new = pair_verdicts(&after.topology, &before.labels);
    let changes: Vec<String> = old
        .iter()
        .zip(&new)
        .filter(|(was, now)| was.2 != now.2)
        .map(|(was, now)| format!("  {} -> {}: {}\n    now: {}\n", was.0, was.1, was.2, now.2))
        .collect();
    let mut out = format!(
        "What if {} (spec {})\n",
        args.set.join(", "),
        args.spec.display()
    );
    if changes.is_empty() {
        out += &format!("No pair changes its verdict ({} pairs).\n", old.len());
    } else {
        out += &format!("{} of {} pairs change:\n", changes.len(), old.len());
        out += &changes.concat();
    }
    emit(out)?;
    Ok(())
}
