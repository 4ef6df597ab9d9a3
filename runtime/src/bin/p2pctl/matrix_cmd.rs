//! `p2pctl matrix`: the view tables as text, CSV or JSON.

use anyhow::Result;

use hsa_p2p_runtime::cli::MatrixArgs;
use hsa_p2p_runtime::views::{build_table, render_csv, TableKind};
use hsa_p2p_runtime::{libhsakmt, report};

use crate::gpu_selection::select_gpus;
use crate::output::{emit, emit_json};
use crate::source;

pub fn run(args: &MatrixArgs) -> Result<()> {
    let mut loaded = source::load(&args.source)?;
    if let Some(root) = args.source.machine_root(args.machine_root.as_ref()) {
        loaded = loaded.with_machine_facts(&root);
    }
    let mut input = loaded.view_input();
    select_gpus(&mut input, &args.gpus)?;
    let kinds = args
        .table
        .map_or(TableKind::ALL.to_vec(), |kind| vec![kind]);
    if args.csv {
        // clap makes --csv require --table: exactly one table.
        for kind in kinds {
            emit(render_csv(&build_table(kind, &input)))?;
        }
    } else if args.output.json {
        let document = report::json::matrix_document(&input, &kinds, loaded.source.clone());
        emit_json(&document, args.output)?;
    } else {
        let mut text = report::matrix::render_matrices(&input, &kinds);
        if libhsakmt::predates_p2p_links(&loaded.topology) {
            text += &libhsakmt::render_synthesized(&loaded.topology, &loaded.labels);
        }
        emit(text)?;
    }
    Ok(())
}
