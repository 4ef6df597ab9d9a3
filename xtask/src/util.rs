//! Small helpers shared by the xtask commands: workspace paths, phase timing, running external
//! commands with readable logs, stable hashing.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How often a long command prints a heartbeat line when its output is not shown.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Lines of a failed command's log printed with the error.
const FAILURE_TAIL: usize = 40;

fn started() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Starts the clock shown in front of every phase line.
pub fn start_clock() {
    started();
}

/// Seconds since the xtask started, for log lines.
pub fn elapsed() -> f64 {
    started().elapsed().as_secs_f64()
}

/// Prints a phase header: `==> [  12.3s] message`.
pub fn phase(message: impl AsRef<str>) {
    println!("==> [{:6.1}s] {}", elapsed(), message.as_ref());
}

/// Prints a detail line under a phase.
pub fn note(message: impl AsRef<str>) {
    println!("    {}", message.as_ref());
}

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// The workspace's target directory (`CARGO_TARGET_DIR` if set, else `<root>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Renders a command line for messages.
pub fn display(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.contains(' ') {
            let _ = write!(line, " '{arg}'");
        } else {
            let _ = write!(line, " {arg}");
        }
    }
    line
}

/// Runs `cmd` with inherited stdio; fails naming the command if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; stderr is included in the error on failure.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            display(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a long command with its stdout and stderr going to `log`.
///
/// With `verbose` the output is also streamed to the terminal; otherwise a heartbeat line with
/// the elapsed time and the command's latest output line is printed every 30 s, so CI logs stay
/// short but show progress. On failure the log's last lines are printed and the error names the
/// log file.
pub fn run_logged(cmd: &mut Command, log: &Path, verbose: bool) -> Result<()> {
    run_logged_mapped(cmd, log, verbose, &|line| line.to_owned())
}

/// [`run_logged`] with every output line passed through `map` (e.g. to turn paths of a staged
/// copy back into the paths a developer edits).
pub fn run_logged_mapped(
    cmd: &mut Command,
    log: &Path,
    verbose: bool,
    map: &(dyn Fn(&str) -> String + Sync),
) -> Result<()> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let sink = Arc::new(Mutex::new(file));
    let last_line = Arc::new(Mutex::new(String::new()));
    writeln!(sink.lock().unwrap(), "$ {}", display(cmd))?;

    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    let pumps: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();

    let begun = Instant::now();
    let status = thread::scope(|scope| -> Result<_> {
        for stream in pumps {
            let sink = Arc::clone(&sink);
            let last_line = Arc::clone(&last_line);
            scope.spawn(move || {
                for line in BufReader::new(stream).split(b'\n').map_while(|l| l.ok()) {
                    let line = map(&String::from_utf8_lossy(&line));
                    let _ = writeln!(sink.lock().unwrap(), "{line}");
                    if verbose {
                        println!("    | {line}");
                    }
                    *last_line.lock().unwrap() = line;
                }
            });
        }
        let mut next_heartbeat = HEARTBEAT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if !verbose && begun.elapsed() >= next_heartbeat {
                let last = last_line.lock().unwrap().clone();
                note(format!(
                    "... {}s, latest: {}",
                    begun.elapsed().as_secs(),
                    truncate(last.trim(), 100)
                ));
                next_heartbeat += HEARTBEAT;
            }
            thread::sleep(Duration::from_millis(200));
        }
    })?;

    if !status.success() {
        if !verbose {
            print_tail(log, FAILURE_TAIL);
        }
        bail!(
            "`{}` failed ({status}); full log: {}",
            display(cmd),
            log.display()
        );
    }
    Ok(())
}

fn truncate(line: &str, max: usize) -> &str {
    match line.char_indices().nth(max) {
        Some((index, _)) => &line[..index],
        None => line,
    }
}

/// Prints the last `lines` lines of a log file, indented.
pub fn print_tail(path: &Path, lines: usize) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    let all: Vec<&str> = text.lines().collect();
    println!("    --- last lines of {} ---", path.display());
    for line in &all[all.len().saturating_sub(lines)..] {
        println!("    | {line}");
    }
}

/// 64-bit FNV-1a: a hash that is stable across Rust releases, for cache keys.
pub fn stable_hash(parts: &[&[u8]]) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for byte in part.iter().chain(&[0xffu8]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Reads a small stamp file; `None` if it does not exist.
pub fn read_stamp(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Writes a stamp file.
pub fn write_stamp(path: &Path, value: &str) -> Result<()> {
    fs::write(path, format!("{value}\n"))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Number of CPUs to give `make -j`.
pub fn jobs() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}
