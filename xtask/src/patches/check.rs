//! Checks the series one patch at a time, in order, on the scratch tree: does it apply, does
//! the affected directory build with the kernel's clippy lints (`make CLIPPY=1 samples/rust/`),
//! what does `checkpatch.pl --strict` say, and is the Rust code formatted (`make
//! rustfmtcheck`). Later patches are not tried once one does not apply.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::layout::SAMPLE_DIR;
use super::tree::ScratchTree;
use crate::util::note;

/// The directory built after every patch: it holds the sample once the Makefile line exists,
/// and before that proves the tree around it still builds.
pub const BUILT_DIR: &str = "samples/rust";

/// checkpatch's verdict on one patch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checkpatch {
    pub errors: u32,
    pub warnings: u32,
    pub checks: u32,
    /// The `ERROR:`/`WARNING:`/`CHECK:` lines.
    pub messages: Vec<String>,
}

/// Reads checkpatch's `total: N errors, M warnings, K checks, L lines checked` line.
pub fn parse_checkpatch(output: &str) -> Option<Checkpatch> {
    let total = output.lines().find_map(|l| l.strip_prefix("total: "))?;
    let number = |label: &str| -> Option<u32> {
        total.split(", ").find_map(|part| {
            let (n, what) = part.split_once(' ')?;
            what.starts_with(label).then(|| n.parse().ok()).flatten()
        })
    };
    Some(Checkpatch {
        errors: number("error")?,
        warnings: number("warning")?,
        checks: number("check").unwrap_or(0),
        messages: output
            .lines()
            .filter(|l| {
                l.starts_with("ERROR:") || l.starts_with("WARNING:") || l.starts_with("CHECK:")
            })
            .map(str::to_owned)
            .collect(),
    })
}

/// The build of [`BUILT_DIR`] after one patch.
#[derive(Debug)]
pub struct Build {
    pub ok: bool,
    /// Compiler and clippy warnings in the build log.
    pub warnings: Vec<String>,
    /// Whether the sample was enabled and its module object was produced.
    pub sample_built: bool,
    pub log: PathBuf,
}

/// `make rustfmtcheck` after one patch.
#[derive(Debug)]
pub struct Rustfmt {
    /// Files of the sample rustfmt would change.
    pub sample_files: Vec<String>,
    /// Other files of the tree rustfmt would change (the base's business, reported apart).
    pub other_files: usize,
}

/// Everything known about one patch.
#[derive(Debug)]
pub struct PatchResult {
    pub name: String,
    pub applies: Result<(), String>,
    pub build: Option<Build>,
    pub checkpatch: Option<Checkpatch>,
    pub rustfmt: Option<Rustfmt>,
}

impl PatchResult {
    /// What `--check` requires: applies, builds, no checkpatch error.
    pub fn passed(&self) -> bool {
        self.applies.is_ok()
            && self.build.as_ref().is_some_and(|b| b.ok)
            && self.checkpatch.as_ref().is_some_and(|c| c.errors == 0)
            && self.formatted()
    }

    /// The sample's Rust files are as `make rustfmtcheck` wants them (`ci/test.sh` keeps
    /// `kmod/src` formatted, since `cargo fmt` does not see it).
    pub fn formatted(&self) -> bool {
        self.rustfmt
            .as_ref()
            .is_some_and(|r| r.sample_files.is_empty())
    }
}

/// Files named by rustfmt's `Diff in <file>:<line>:` lines, split into the sample's and others.
pub fn parse_rustfmt(output: &str) -> Rustfmt {
    let mut files: Vec<&str> = output
        .lines()
        .filter_map(|l| l.strip_prefix("Diff in "))
        .map(|rest| rest.split([':', ' ']).next().unwrap_or(rest))
        .collect();
    files.sort_unstable();
    files.dedup();
    let (sample, other): (Vec<&str>, Vec<&str>) =
        files.into_iter().partition(|f| f.contains(SAMPLE_DIR));
    Rustfmt {
        sample_files: sample.into_iter().map(str::to_owned).collect(),
        other_files: other.len(),
    }
}

/// Runs every check on every patch, in order.
pub fn check_series(
    scratch: &ScratchTree,
    patches: &[PathBuf],
    logs: &Path,
    verbose: bool,
) -> Result<Vec<PatchResult>> {
    fs::create_dir_all(logs)?;
    let mut results = Vec::new();
    let mut stopped = false;
    for patch in patches {
        let name = patch
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let stem = name.trim_end_matches(".patch").to_owned();
        if stopped {
            results.push(PatchResult {
                name,
                applies: Err("not tried: an earlier patch does not apply".to_owned()),
                build: None,
                checkpatch: None,
                rustfmt: None,
            });
            continue;
        }
        note(format!("{name}: checkpatch.pl --strict"));
        let checkpatch_output = scratch.checkpatch(patch)?;
        fs::write(
            logs.join(format!("{stem}.checkpatch.txt")),
            &checkpatch_output,
        )?;
        let checkpatch = parse_checkpatch(&checkpatch_output);
        if checkpatch.is_none() {
            note(format!(
                "checkpatch printed no totals: see {}",
                logs.join(format!("{stem}.checkpatch.txt")).display()
            ));
        }

        note(format!("{name}: git apply"));
        if let Err(error) = scratch.apply(patch) {
            stopped = true;
            results.push(PatchResult {
                name,
                applies: Err(format!("{error:#}")),
                build: None,
                checkpatch,
                rustfmt: None,
            });
            continue;
        }

        note(format!("{name}: olddefconfig + make CLIPPY=1 {BUILT_DIR}/"));
        let enabled = scratch.configure(&logs.join(format!("{stem}.olddefconfig.log")))?;
        let log = logs.join(format!("{stem}.build.log"));
        let built = scratch.build_dir(BUILT_DIR, &log, verbose);
        let text = fs::read_to_string(&log).unwrap_or_default();
        let warnings: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("warning") || l.contains(": warning:"))
            .map(str::to_owned)
            .collect();
        let object = scratch.build.join(SAMPLE_DIR).join("hsa_p2p.o");
        let sample_built = enabled && object.is_file();
        let ok = built.is_ok() && (!enabled || sample_built);
        if let Err(error) = &built {
            note(format!("build failed: {error:#}"));
        } else if enabled && !sample_built {
            note(format!(
                "CONFIG_SAMPLE_RUST_HSA_P2P=m but {} was not built",
                object.display()
            ));
        }

        note(format!("{name}: make rustfmtcheck"));
        let (_, rustfmt_output) = scratch.rustfmtcheck()?;
        fs::write(logs.join(format!("{stem}.rustfmt.txt")), &rustfmt_output)?;
        results.push(PatchResult {
            name,
            applies: Ok(()),
            build: Some(Build {
                ok,
                warnings,
                sample_built,
                log,
            }),
            checkpatch,
            rustfmt: Some(parse_rustfmt(&rustfmt_output)),
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_checkpatch_totals() {
        let output = "WARNING:FILE_PATH_CHANGES: added, moved or deleted file(s)\n\
                      CHECK:LINE_SPACING: Please don't use multiple blank lines\n\
                      total: 0 errors, 1 warnings, 1 checks, 523 lines checked\n";
        let result = parse_checkpatch(output).unwrap();
        assert_eq!((result.errors, result.warnings, result.checks), (0, 1, 1));
        assert_eq!(result.messages.len(), 2);
        assert!(parse_checkpatch("nothing").is_none());
    }

    #[test]
    fn splits_rustfmt_diffs() {
        let output = "Diff in /t/samples/rust/hsa_p2p/src/gpu.rs:12:\n x\n\
                      Diff in /t/samples/rust/hsa_p2p/src/gpu.rs:40:\n\
                      Diff in /t/rust/kernel/lib.rs:3:\n";
        let result = parse_rustfmt(output);
        assert_eq!(result.sample_files, ["/t/samples/rust/hsa_p2p/src/gpu.rs"]);
        assert_eq!(result.other_files, 1);
    }
}
