//! The ROCm tools the suite drives: where to find them, how to run them, what a run captured.
//!
//! Tools are searched in `PATH` (on the machine under test only) and in every
//! `/opt/rocm*/bin`, newest ROCm first; the first match of each tool is used.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A tool the suite can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// `rocm_bandwidth_test` (package rocm-bandwidth-test).
    BandwidthTest,
    /// `TransferBench` (package transferbench, or built from ROCm/TransferBench).
    TransferBench,
    /// `rocm-smi` (package rocm-smi-lib).
    RocmSmi,
    /// `amd-smi` (package amd-smi-lib).
    AmdSmi,
}

impl Tool {
    /// Every tool, in run order.
    pub const ALL: [Tool; 4] = [
        Tool::BandwidthTest,
        Tool::TransferBench,
        Tool::RocmSmi,
        Tool::AmdSmi,
    ];

    /// The executable names it is installed under, preferred first.
    pub fn executables(self) -> &'static [&'static str] {
        match self {
            Tool::BandwidthTest => &["rocm_bandwidth_test", "rocm-bandwidth-test"],
            Tool::TransferBench => &["TransferBench"],
            Tool::RocmSmi => &["rocm-smi"],
            Tool::AmdSmi => &["amd-smi"],
        }
    }

    /// Its usual name.
    pub fn name(self) -> &'static str {
        self.executables()[0]
    }

    /// The distribution package that ships it.
    pub fn package(self) -> &'static str {
        match self {
            Tool::BandwidthTest => "rocm-bandwidth-test",
            Tool::TransferBench => "transferbench",
            Tool::RocmSmi => "rocm-smi-lib",
            Tool::AmdSmi => "amd-smi-lib",
        }
    }

    /// Arguments of the run whose output the suite parses.
    pub fn topology_args(self) -> &'static [&'static str] {
        match self {
            // No argument: every device pair, unidirectional and bidirectional (-a + -A).
            Tool::BandwidthTest => &[],
            Tool::TransferBench => &["p2p"],
            Tool::RocmSmi => &["--showtopo", "--showbus"],
            Tool::AmdSmi => &["topology"],
        }
    }

    /// Arguments printing the version, for tools whose topology output lacks it.
    pub fn version_args(self) -> Option<&'static [&'static str]> {
        match self {
            Tool::BandwidthTest | Tool::TransferBench => None,
            Tool::RocmSmi => Some(&["--version"]),
            Tool::AmdSmi => Some(&["version"]),
        }
    }
}

/// A tool found on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Which tool.
    pub tool: Tool,
    /// Its executable.
    pub path: PathBuf,
}

/// The directories searched, in order: `path` (the `PATH` variable, given only when the machine
/// under test is this one), then `<root>/opt/rocm*/bin`, newest first.
pub fn search_dirs(root: &Path, path: Option<OsString>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = path
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let mut installs: Vec<PathBuf> = std::fs::read_dir(root.join("opt"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("rocm"))
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.is_dir())
        .collect();
    // `rocm` (the current link) first, then versions newest first.
    installs.sort_by_key(|bin| {
        let name = bin
            .parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let version: Vec<u32> = name
            .trim_start_matches("rocm")
            .trim_start_matches('-')
            .split('.')
            .filter_map(|part| part.parse().ok())
            .collect();
        (name != "rocm", std::cmp::Reverse(version))
    });
    dirs.extend(installs);
    dirs
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The first executable of each tool in `dirs`.
pub fn discover(dirs: &[PathBuf]) -> Vec<Found> {
    Tool::ALL
        .into_iter()
        .filter_map(|tool| {
            dirs.iter()
                .flat_map(|dir| tool.executables().iter().map(move |name| dir.join(name)))
                .find(|path| is_executable(path))
                .map(|path| Found { tool, path })
        })
        .collect()
}

/// What one run of a tool printed, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Which tool.
    pub tool: Tool,
    /// What the run was for: `topology`, `version`, or `validate <src> <dst>`.
    pub purpose: String,
    /// The command line.
    pub command: Vec<String>,
    /// Exit code; `None` when killed (by a signal or the timeout).
    pub exit_code: Option<i32>,
    /// Standard output.
    #[serde(skip)]
    pub stdout: String,
    /// Standard error.
    #[serde(skip)]
    pub stderr: String,
}

impl Run {
    /// Whether the tool exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// Why the run failed, for a report: exit status and the end of its standard error.
    pub fn failure(&self) -> String {
        let status = self.exit_code.map_or("was killed".to_string(), |code| {
            format!("exited with {code}")
        });
        let stderr = self.stderr.trim();
        let tail: String = stderr
            .char_indices()
            .rev()
            .nth(400)
            .map_or(stderr, |(at, _)| &stderr[at..])
            .to_string();
        format!("`{}` {status}: {tail}", self.command.join(" "))
    }
}

/// Runs `program args`, killing it after `timeout`.
pub fn run(tool: Tool, purpose: &str, program: &Path, args: &[String], timeout: Duration) -> Run {
    let command: Vec<String> = std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .collect();
    let finished = |exit_code, stdout, stderr| Run {
        tool,
        purpose: purpose.to_string(),
        command: command.clone(),
        exit_code,
        stdout,
        stderr,
    };
    // Its own process group: a timeout kills the tool's children too (amd-smi and rocm-smi
    // are Python programs that may start others), which would otherwise hold its pipes open.
    let child = Command::new(program)
        .process_group(0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => return finished(None, String::new(), format!("cannot start: {error}")),
    };
    // Drain both pipes on threads so that a chatty tool cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                if let Ok(group) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) takes no pointer; -group names the process group the
                    // child leads (process_group(0) above), which holds only the tool's processes.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut stderr = stderr.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\nkilled after {} s", timeout.as_secs()));
    }
    finished(
        status.and_then(|status| status.code()),
        stdout.join().unwrap_or_default(),
        stderr,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_captures_both_streams_and_a_hung_tool_is_killed() {
        let sh = Path::new("/bin/sh");
        let args = |script: &str| vec!["-c".to_string(), script.to_string()];
        let done = run(
            Tool::RocmSmi,
            "topology",
            sh,
            &args("echo out; echo err >&2; exit 3"),
            Duration::from_secs(60),
        );
        assert_eq!(
            (done.exit_code, done.stdout.as_str(), done.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        assert!(!done.succeeded());
        assert_eq!(
            done.failure(),
            "`/bin/sh -c echo out; echo err >&2; exit 3` exited with 3: err"
        );
        // `sh` runs `sleep` as a child: killing only `sh` would leave the pipes open for 30 s.
        let started = std::time::Instant::now();
        let hung = run(
            Tool::RocmSmi,
            "topology",
            sh,
            &args("sleep 30"),
            Duration::from_millis(200),
        );
        assert_eq!(hung.exit_code, None);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(
            hung.failure().ends_with("was killed: killed after 0 s"),
            "{}",
            hung.failure()
        );
        let missing = run(
            Tool::AmdSmi,
            "topology",
            Path::new("/nonexistent/amd-smi"),
            &[],
            Duration::from_secs(1),
        );
        assert!(
            missing.stderr.starts_with("cannot start: "),
            "{}",
            missing.stderr
        );
    }

    #[test]
    fn installs_are_searched_current_link_first_then_newest() {
        let root = tempfile::tempdir().unwrap();
        for name in [
            "rocm-5.7.1",
            "rocm",
            "rocm-6.4.0",
            "rocm-6.10.2",
            "rocminfo-junk",
        ] {
            std::fs::create_dir_all(root.path().join("opt").join(name).join("bin")).unwrap();
        }
        let names: Vec<String> = search_dirs(root.path(), None)
            .iter()
            .map(|dir| {
                dir.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into()
            })
            .collect();
        assert_eq!(
            names,
            [
                "rocm",
                "rocm-6.10.2",
                "rocm-6.4.0",
                "rocm-5.7.1",
                "rocminfo-junk"
            ]
        );
    }
}
