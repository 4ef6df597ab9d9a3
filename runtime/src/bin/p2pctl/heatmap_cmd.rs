//! `p2pctl heatmap -o FILE.svg|png`.

use anyhow::{Context, Result};

use hsa_p2p_runtime::bench_report::BenchReport;
use hsa_p2p_runtime::cli::{HeatmapArgs, HeatmapTable};
use hsa_p2p_runtime::report::heatmap::Heatmap;
use hsa_p2p_runtime::views::build_table;

use crate::gpu_selection::select_gpus;
use crate::source;

pub fn run(args: &HeatmapArgs) -> Result<()> {
    let map = match &args.bench {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report: BenchReport = serde_json::from_str(&text).with_context(|| {
                format!("{}: not a p2pctl bench --json document", path.display())
            })?;
            Heatmap::from_bench(&report)
        }
        None => {
            let loaded = source::load(&args.source)?;
            let mut input = loaded.view_input();
            select_gpus(&mut input, &args.gpus)?;
            let table = build_table(args.table.table(), &input);
            Heatmap::from_table(
                &table,
                input.gpus.len(),
                args.table.unit(),
                args.table == HeatmapTable::Bandwidth,
            )
        }
    };
    map.write(&args.output)?;
    Ok(())
}
