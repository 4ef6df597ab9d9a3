//! A recording: what the ROCm tools printed on a runner and the runner's facts, in a directory
//! that `hwtests --replay DIR` re-checks offline, plus a tarball of it to attach to a bug
//! report.
//!
//! ```text
//! DIR/recording.json        manifest (hsa-p2p/rocm-recording/v1): tools found, runs
//! DIR/outputs/NN-<tool>-<purpose>.{out,err}
//! DIR/root/sys/..., DIR/root/proc/...   the facts (see [`super::snapshot`])
//! DIR.tar                   the same, for a bug report
//! ```
//!
//! The tarball is written with the `tar` crate rather than the system `tar`: its entries are
//! sorted, owned by 0:0 and dated 0, so a recording's tarball depends only on its content,
//! and nothing depends on which `tar` (GNU, busybox, bsdtar) a runner has.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tools::{Found, Run, Tool};

/// The manifest's file name.
pub const MANIFEST: &str = "recording.json";
/// The manifest's format.
pub const FORMAT: &str = "hsa-p2p/rocm-recording/v1";
/// The facts' directory, standing in for `/`.
pub const ROOT: &str = "root";

/// Why a recording cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the format.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The manifest is of another format.
    #[error("{path}: format {found:?}, expected {FORMAT:?}")]
    Format {
        /// The manifest.
        path: PathBuf,
        /// Its format.
        found: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError + '_ {
    move |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A tool found on the recorded runner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedTool {
    /// Which tool.
    pub tool: Tool,
    /// Where it was.
    pub path: String,
}

/// A run and where its output is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRun {
    /// The run (its output in the files below).
    #[serde(flatten)]
    pub run: Run,
    /// Standard output, relative to the recording.
    pub stdout_file: String,
    /// Standard error, relative to the recording (absent: empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_file: Option<String>,
}

/// `recording.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Where the outputs come from (a runner's host name, or the public sources).
    #[serde(default)]
    pub source: String,
    /// The tools found.
    pub tools: Vec<RecordedTool>,
    /// The runs, in order.
    pub runs: Vec<RecordedRun>,
}

/// What a recording holds.
#[derive(Clone, Debug)]
pub struct Recording {
    /// The tools found.
    pub found: Vec<Found>,
    /// The runs, outputs included.
    pub runs: Vec<Run>,
    /// The facts' directory.
    pub root: PathBuf,
    /// The manifest's `source`.
    pub source: String,
}

/// Reads the recording in `dir`.
pub fn read(dir: &Path) -> Result<Recording, RecordingError> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|source| RecordingError::Manifest {
            path: path.clone(),
            source,
        })?;
    if manifest.format != FORMAT {
        return Err(RecordingError::Format {
            path,
            found: manifest.format,
        });
    }
    let read_output = |file: &str| {
        let path = dir.join(file);
        fs::read_to_string(&path).map_err(io(&path))
    };
    let runs = manifest
        .runs
        .into_iter()
        .map(|recorded| {
            Ok(Run {
                stdout: read_output(&recorded.stdout_file)?,
                stderr: match &recorded.stderr_file {
                    Some(file) => read_output(file)?,
                    None => String::new(),
                },
                ..recorded.run
            })
        })
        .collect::<Result<_, RecordingError>>()?;
    Ok(Recording {
        found: manifest
            .tools
            .into_iter()
            .map(|tool| Found {
                tool: tool.tool,
                path: PathBuf::from(tool.path),
            })
            .collect(),
        runs,
        root: dir.join(ROOT),
        source: manifest.source,
    })
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Writes the recording of `found`, `runs` and the facts below `root` into `dir` (created
/// empty), then its tarball; returns the tarball's path.
pub fn write(
    dir: &Path,
    source: &str,
    root: &Path,
    found: &[Found],
    runs: &[Run],
) -> Result<PathBuf, RecordingError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    let outputs = dir.join("outputs");
    fs::create_dir_all(&outputs).map_err(io(&outputs))?;
    let mut recorded = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let stem = format!(
            "outputs/{index:02}-{}-{}",
            run.tool.name(),
            slug(&run.purpose)
        );
        let stdout_file = format!("{stem}.out");
        let stderr_file = format!("{stem}.err");
        for (file, text) in [(&stdout_file, &run.stdout), (&stderr_file, &run.stderr)] {
            let path = dir.join(file);
            fs::write(&path, text).map_err(io(&path))?;
        }
        recorded.push(RecordedRun {
            run: run.clone(),
            stdout_file,
            stderr_file: Some(stderr_file),
        });
    }
    let facts = dir.join(ROOT);
    super::snapshot::snapshot(root, &facts).map_err(io(&facts))?;
    let manifest = Manifest {
        format: FORMAT.to_string(),
        source: source.to_string(),
        tools: found
            .iter()
            .map(|found| RecordedTool {
                tool: found.tool,
                path: found.path.display().to_string(),
            })
            .collect(),
        runs: recorded,
    };
    let path = dir.join(MANIFEST);
    let json = serde_json::to_string_pretty(&manifest).expect("plain data serialises");
    fs::write(&path, json + "\n").map_err(io(&path))?;
    tarball(dir)
}

/// Records what `context` ran (its tools, run now if they were not yet) and the facts below its
/// root into `dir`; returns the tarball's path.
pub fn record(context: &crate::Context, dir: &Path) -> Result<PathBuf, String> {
    let found = context.rocm_tools()?;
    let runs = context.rocm_runs()?;
    let host = fs::read_to_string(context.root().join("proc/sys/kernel/hostname"))
        .map(|name| format!("runner {}", name.trim()))
        .unwrap_or_else(|_| "a runner".into());
    write(dir, &host, context.root(), found, runs).map_err(|error| error.to_string())
}

/// The tarball of `dir`: `DIR.tar` next to it.
pub fn tarball_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".tar");
    dir.with_file_name(name)
}

fn entries(dir: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir.join(relative))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let child = relative.join(name);
        out.push(child.clone());
        if fs::symlink_metadata(dir.join(&child))?.is_dir() {
            entries(dir, &child, out)?;
        }
    }
    Ok(())
}

/// Writes `DIR.tar` of `dir` (entries below a top directory named like `dir`); returns its path.
pub fn tarball(dir: &Path) -> Result<PathBuf, RecordingError> {
    let path = tarball_path(dir);
    let top = PathBuf::from(dir.file_name().unwrap_or_default());
    let mut paths = Vec::new();
    entries(dir, Path::new(""), &mut paths).map_err(io(dir))?;
    let file = fs::File::create(&path).map_err(io(&path))?;
    let mut builder = tar::Builder::new(file);
    let append = |builder: &mut tar::Builder<fs::File>, relative: &Path| -> std::io::Result<()> {
        let source = dir.join(relative);
        let meta = fs::symlink_metadata(&source)?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let name = top.join(relative);
        if meta.file_type().is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder.append_link(&mut header, name, fs::read_link(&source)?)
        } else if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, name, std::io::empty())
        } else {
            let content = fs::read(&source)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            builder.append_data(&mut header, name, content.as_slice())
        }
    };
    for relative in &paths {
        append(&mut builder, relative).map_err(io(&dir.join(relative)))?;
    }
    builder.into_inner().map_err(io(&path))?;
    Ok(path)
}
