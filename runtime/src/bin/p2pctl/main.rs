//! `p2pctl`: inspect a KFD topology's peer-to-peer links, predict them for a machine
//! description, and explain why a GPU pair has no P2P.

mod bench;
mod copy;
mod error_text;
mod explain_cmd;
mod export_cmd;
mod gpu_selection;
mod heatmap_cmd;
mod matrix_cmd;
mod output;
mod predict_cmd;
mod source;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use hsa_p2p_runtime::cli::{Cli, Command};
use hsa_p2p_runtime::report;

use output::{emit, emit_json};

fn run(command: Command) -> Result<()> {
    match command {
        Command::Topo { source, output } => {
            let loaded = source::load(&source)?;
            if output.json {
                let document = report::json::topology_document(
                    &loaded.topology,
                    &loaded.labels,
                    loaded.source,
                );
                emit_json(&document, output)?;
            } else {
                emit(report::table::render_topology(
                    &loaded.topology,
                    &loaded.labels,
                ))?;
            }
        }
        Command::Matrix(args) => matrix_cmd::run(&args)?,
        Command::Why(args) => explain_cmd::run(&args)?,
        Command::Heatmap(args) => heatmap_cmd::run(&args)?,
        Command::Export(args) => export_cmd::run(&args)?,
        Command::Copy(args) => copy::run(&args)?,
        Command::Bench(args) => bench::run(&args)?,
        Command::Predict(args) => predict_cmd::run(&args)?,
        Command::Snapshot { root } => {
            let snapshot = hsa_p2p_runtime::snapshot::snapshot(&root)
                .map_err(|message| anyhow::anyhow!("snapshot of {}: {message}", root.display()))?;
            emit(
                snapshot
                    .to_toml()
                    .map_err(|message| anyhow::anyhow!("snapshot: {message}"))?,
            )?;
        }
        Command::Dot {
            source,
            cpu_links,
            machine_root,
        } => {
            let mut loaded = source::load(&source)?;
            if let Some(root) = source.machine_root(machine_root.as_ref()) {
                loaded = loaded.with_machine_facts(&root);
            }
            let input = loaded.view_input();
            emit(report::dot::render_dot(
                &input,
                report::dot::DotOptions { cpu_links },
            ))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("p2pctl: error: {}", error_text::error_text(&error));
            ExitCode::FAILURE
        }
    }
}
