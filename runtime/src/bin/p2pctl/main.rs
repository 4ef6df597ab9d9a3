//! `p2pctl`: inspect a KFD topology's peer-to-peer links, predict them for a machine
//! description, and explain why a GPU pair has no P2P.

mod bench;
mod copy;
mod device_args;
mod explain_cmd;
mod output;
mod predict_cmd;
mod source;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use hsa_p2p_runtime::report;

use output::emit;
use source::SourceArgs;

#[derive(Parser)]
#[command(
    name = "p2pctl",
    version,
    about = "Inspect and predict KFD peer-to-peer (HSA_AMD_P2P) topologies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Nodes and links of a topology as tables (or hsa-p2p/topology/v1 JSON).
    Topo {
        #[command(flatten)]
        source: SourceArgs,
        /// Print the hsa-p2p/topology/v1 JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// GPU x GPU access, link type, weight and bandwidth matrices (row = accessor).
    Matrix {
        #[command(flatten)]
        source: SourceArgs,
        /// Print the hsa-p2p/matrix/v1 JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Why GPU A may or may not access GPU B's VRAM, and what to change.
    Why(explain_cmd::WhyArgs),
    /// The topology the kernel rules produce for a machine description (topologies/*.toml).
    Predict(predict_cmd::PredictArgs),
    /// The topology as a Graphviz digraph (`p2pctl dot | dot -Tsvg > topo.svg`).
    Dot {
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Copy between two GPUs' VRAM through /dev/hsa_p2p (direct when allowed), verified.
    Copy(copy::CopyArgs),
    /// Direct and staged copy bandwidth matrix, 4 KiB latency and a memcpy baseline.
    Bench(bench::BenchArgs),
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Topo { source, json } => {
            let loaded = source.load()?;
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
            let loaded = source.load()?;
            if json {
                let document =
                    report::json::matrix_document(&loaded.topology, &loaded.labels, loaded.source);
                emit(serde_json::to_string_pretty(&document)? + "\n")?;
            } else {
                emit(report::matrix::render_matrices(
                    &loaded.topology,
                    &loaded.labels,
                ))?;
            }
        }
        Command::Why(args) => explain_cmd::run(&args)?,
        Command::Copy(args) => copy::run(&args)?,
        Command::Bench(args) => bench::run(&args)?,
        Command::Predict(args) => predict_cmd::run(&args)?,
        Command::Dot { source } => {
            let loaded = source.load()?;
            emit(report::dot::render_dot(&loaded.topology, &loaded.labels))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("p2pctl: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
