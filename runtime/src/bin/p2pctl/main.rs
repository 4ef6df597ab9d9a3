//! `p2pctl`: inspect a KFD topology's peer-to-peer links, predict them for a machine
//! description, and explain why a GPU pair has no P2P.

mod bench;
mod copy;
mod error_text;
mod explain_cmd;
mod output;
mod predict_cmd;
mod source;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use hsa_p2p_runtime::cli::{Cli, Command};
use hsa_p2p_runtime::{libhsakmt, report};

use output::emit;

fn run(command: Command) -> Result<()> {
    match command {
        Command::Topo { source, json } => {
            let loaded = source::load(&source)?;
            if json {
                let document = report::json::topology_document(
                    &loaded.topology,
                    &loaded.labels,
                    loaded.source,
                );
                emit(serde_json::to_string_pretty(&document)? + "\n")?;
            } else {
                emit(report::table::render_topology(
                    &loaded.topology,
                    &loaded.labels,
                ))?;
            }
        }
        Command::Matrix { source, json } => {
            let loaded = source::load(&source)?;
            if json {
                let document =
                    report::json::matrix_document(&loaded.topology, &loaded.labels, loaded.source);
                emit(serde_json::to_string_pretty(&document)? + "\n")?;
            } else {
                let mut text = report::matrix::render_matrices(&loaded.topology, &loaded.labels);
                if libhsakmt::predates_p2p_links(&loaded.topology) {
                    text += &libhsakmt::render_synthesized(&loaded.topology, &loaded.labels);
                }
                emit(text)?;
            }
        }
        Command::Why(args) => explain_cmd::run(&args)?,
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
        Command::Dot { source } => {
            let loaded = source::load(&source)?;
            emit(report::dot::render_dot(&loaded.topology, &loaded.labels))?;
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
