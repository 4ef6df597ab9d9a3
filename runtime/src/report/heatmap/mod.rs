//! `p2pctl heatmap`: a GPU x GPU table (bandwidth, weight, hops) or a `p2pctl bench` result as
//! a labelled heat-map with a colour scale, written as SVG or PNG by `plotters` — no external
//! program and no system font (the text font is compiled in).

mod colour;
mod draw;
mod font;

use std::path::Path;

use crate::bench_report::BenchReport;
use crate::views::{Cell, ViewTable};

pub use colour::scale_colour;
pub use draw::{render_png, render_svg};

/// A square matrix of values to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// Heading.
    pub title: String,
    /// What the colour scale measures (`MB/s`, `hops`).
    pub unit: String,
    /// Row and column labels (row = from, column = to).
    pub labels: Vec<String>,
    /// Row-major cells: a value, or the symbol to print in a grey cell (`X`, `-`, `?`).
    pub cells: Vec<Vec<Result<f64, String>>>,
    /// The line under the grid saying what the grey cells mean.
    pub note: String,
}

/// What the grey cells of every heat-map mean.
const GREY_NOTE: &str = "grey: X = the GPU itself, - = no link, ? = not known";

/// Why a heat-map could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HeatmapError {
    /// The file name ends in neither `.svg` nor `.png`.
    #[error("{0}: the output must end in .svg or .png")]
    Format(String),
    /// Drawing or writing failed.
    #[error("{path}: {message}")]
    Write {
        /// The output.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl Heatmap {
    /// The GPU rows and columns of a view table (the CPU rows and columns of link tables are
    /// left out: `gpus` is how many of the first rows are GPUs). With `zero_unreported`, a 0 is
    /// a grey `0` cell outside the scale (amdkfd's "bandwidth not reported").
    pub fn from_table(table: &ViewTable, gpus: usize, unit: &str, zero_unreported: bool) -> Self {
        let cells = table
            .rows
            .iter()
            .take(gpus)
            .map(|row| {
                row.cells
                    .iter()
                    .take(gpus)
                    .map(|cell| match cell {
                        Cell::Number(0) if zero_unreported => Err("0".to_string()),
                        Cell::Number(n) => Ok(*n as f64),
                        other => Err(other.symbol()),
                    })
                    .collect()
            })
            .collect();
        Heatmap {
            title: table.title.clone(),
            unit: unit.to_string(),
            labels: table.columns.iter().take(gpus).cloned().collect(),
            cells,
            note: if zero_unreported {
                format!("{GREY_NOTE}, 0 = not reported by amdkfd")
            } else {
                GREY_NOTE.to_string()
            },
        }
    }

    /// The direct-copy bandwidth of a `p2pctl bench` run (pairs without a direct path: `-`).
    pub fn from_bench(report: &BenchReport) -> Self {
        let mut nodes: Vec<u32> = report.pairs.iter().flat_map(|p| [p.from, p.to]).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let cells = nodes
            .iter()
            .map(|&from| {
                nodes
                    .iter()
                    .map(|&to| {
                        if from == to {
                            return Err(Cell::Diagonal.symbol());
                        }
                        report
                            .pairs
                            .iter()
                            .find(|p| p.from == from && p.to == to)
                            .and_then(|p| p.direct_gbps)
                            .ok_or_else(|| Cell::NoLink.symbol())
                    })
                    .collect()
            })
            .collect();
        Heatmap {
            title: format!(
                "Direct copy bandwidth ({} MiB copies, best of {})",
                report.size_bytes >> 20,
                report.iterations
            ),
            unit: "GB/s".to_string(),
            labels: nodes.iter().map(|n| format!("node{n}")).collect(),
            cells,
            note: format!("{GREY_NOTE} (no direct path: the copy was staged)"),
        }
    }

    /// The smallest and largest value, `None` when no cell has one.
    pub fn range(&self) -> Option<(f64, f64)> {
        let values = self.cells.iter().flatten().filter_map(|c| c.as_ref().ok());
        values.fold(None, |range, &v| match range {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
    }

    /// Writes the heat-map to `path`, SVG or PNG by its extension.
    pub fn write(&self, path: &Path) -> Result<(), HeatmapError> {
        let name = path.display().to_string();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_lowercase);
        let bytes = match extension.as_deref() {
            Some("svg") => render_svg(self).map(String::into_bytes),
            Some("png") => render_png(self),
            _ => return Err(HeatmapError::Format(name)),
        }
        .map_err(|message| HeatmapError::Write {
            path: name.clone(),
            message,
        })?;
        std::fs::write(path, bytes).map_err(|error| HeatmapError::Write {
            path: name,
            message: error.to_string(),
        })
    }
}
