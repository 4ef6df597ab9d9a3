//! Booting the built kernel in QEMU (q35, TCG) with caller-provided PCIe devices.
//!
//! [`run`] builds the initramfs, creates the shared-memory files that back the emulated GPUs'
//! BARs, starts QEMU with the serial console on a pipe, streams every console line to stdout
//! (prefixed) and to a log file, and returns the guest script's exit status, read from the
//! [`initramfs::EXIT_SENTINEL`] line. QEMU is killed on every exit path (timeout, error,
//! panic) by a drop guard; the shared-memory files are removed the same way unless kept.
//! A run with a kernel checker's report on the console ([`splat`]) fails, showing the report.

pub mod demo;
pub mod guests;
pub mod host_channel;
pub mod initramfs;
pub mod options;
pub mod protocol;
pub mod published_tree;
pub mod qmp;
pub mod spec_boot;
pub mod splat;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::util;
pub use initramfs::{GuestFile, Initramfs};

/// How long QEMU may take to exit after the guest reported its exit status.
const POWEROFF_GRACE: Duration = Duration::from_secs(15);

/// A file in /dev/shm backing an `ivshmem-plain` device (via `memory-backend-file`).
#[derive(Clone, Debug)]
pub struct ShmFile {
    /// Path, normally under /dev/shm.
    pub path: PathBuf,
    /// Size in bytes (ivshmem needs a power of two).
    pub size: u64,
    /// Bytes written at offsets before boot (descriptor pages, patterns).
    pub writes: Vec<(u64, Vec<u8>)>,
}

impl ShmFile {
    fn create(&self) -> Result<()> {
        let _ = fs::remove_file(&self.path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&self.path)
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        file.set_len(self.size)?;
        for (offset, bytes) in &self.writes {
            if offset + bytes.len() as u64 > self.size {
                bail!(
                    "write of {} bytes at {offset:#x} overflows {}",
                    bytes.len(),
                    self.path.display()
                );
            }
            file.write_all_at(bytes, *offset)?;
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` (e.g. what the guest wrote).
    pub fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = vec![0; len];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }
}

/// One VM run.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Short name: log file `target/vm/<name>/console.log`, console prefix `[<name>]`.
    pub name: String,
    /// The kernel image (bzImage).
    pub kernel: PathBuf,
    /// Initramfs content: script and extra files.
    pub initramfs: Initramfs,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Extra QEMU arguments: `-smp`, `-numa`, `-object`, `-device` ... (the PCIe topology).
    pub qemu_args: Vec<String>,
    /// Shared-memory files created before boot.
    pub shm_files: Vec<ShmFile>,
    /// Keep the shared-memory files after the run (to inspect what the guest wrote).
    pub keep_shm_files: bool,
    /// Kernel command-line arguments added to `console=ttyS0 panic=-1 oops=panic
    /// log_buf_len=4M`.
    pub append: Vec<String>,
    /// Whole-run limit, boot included.
    pub timeout: Duration,
    /// Echo console lines to stdout.
    pub echo: bool,
    /// The machine's hot-pluggable GPUs; when there are any, the guest gets the host channel
    /// ([`host_channel`]) to ask for their removal and return.
    pub hotplug: Vec<host_channel::HotplugSlot>,
}

impl VmConfig {
    /// A config with the defaults: 512 MiB, 2 minutes, console echoed, no devices.
    pub fn new(name: impl Into<String>, kernel: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            kernel: kernel.into(),
            initramfs: Initramfs::default(),
            memory_mib: 512,
            qemu_args: Vec::new(),
            shm_files: Vec::new(),
            keep_shm_files: false,
            append: Vec::new(),
            timeout: Duration::from_secs(120),
            echo: true,
            hotplug: Vec::new(),
        }
    }

    fn dir(&self) -> PathBuf {
        util::target_dir().join("vm").join(&self.name)
    }
}

/// What a VM run gave.
#[derive(Clone, Debug)]
pub struct VmOutcome {
    /// The guest script's exit status, if the guest reported one.
    pub exit_code: Option<i32>,
    /// Whether the run hit [`VmConfig::timeout`].
    pub timed_out: bool,
    /// QEMU's own exit status (`None` if it had to be killed).
    pub qemu_status: Option<ExitStatus>,
    /// Everything the serial console printed (CR stripped), plus QEMU's stderr lines prefixed
    /// with `qemu: `.
    pub console_log: String,
    /// Where the console log was written.
    pub log_path: PathBuf,
    /// Wall time of the run.
    pub duration: Duration,
    /// Reports of the kernel's checkers on the console (KASAN, lockdep, WARN, kmemleak ...).
    pub splats: Vec<splat::Splat>,
}

impl VmOutcome {
    /// One line for the log: exit code, duration, where the console log is.
    pub fn summary(&self) -> String {
        format!(
            "guest exit code {:?} in {:.1} s; console log {}",
            self.exit_code,
            self.duration.as_secs_f64(),
            self.log_path.display()
        )
    }

    /// The guest ran its script to the end with status 0 and no kernel checker complained.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && self.splats.is_empty()
    }

    /// [`Self::check`], with the guest's failed steps as the error's context.
    pub fn check_steps(&self) -> Result<()> {
        self.check()
            .with_context(|| protocol::failures(&self.console_log).join("; "))
    }

    /// Fails with a summary unless [`Self::success`]; kernel checker reports come first, each
    /// shown from its marker to the end of its trace.
    pub fn check(&self) -> Result<()> {
        if self.success() {
            return Ok(());
        }
        if !self.splats.is_empty() {
            let shown: Vec<String> = self.splats.iter().map(|s| s.to_string()).collect();
            bail!(
                "{} kernel checker report(s) (console log: {}):\n{}",
                self.splats.len(),
                self.log_path.display(),
                shown.join("")
            );
        }
        match (self.exit_code, self.timed_out) {
            (Some(code), _) => bail!(
                "guest script exited with {code} (console log: {})",
                self.log_path.display()
            ),
            (None, true) => bail!(
                "VM timed out after {:.0} s without reporting an exit status (console log: {})",
                self.duration.as_secs_f64(),
                self.log_path.display()
            ),
            (None, false) => bail!(
                "VM stopped without reporting an exit status (kernel panic? QEMU error?), \
                 QEMU {:?} (console log: {})",
                self.qemu_status,
                self.log_path.display()
            ),
        }
    }
}

/// Kills and reaps QEMU when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Removes the shared-memory files when dropped.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

enum Event {
    Console(String),
    Stderr(String),
    HostRequest(String),
}

/// Removes terminal control sequences (SeaBIOS clears the screen) and carriage returns.
fn strip_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CSI (ESC [ parameters final-byte in @..~); other escapes are two characters
            // (ESC c: reset).
            '\u{1b}' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn pump(stream: impl Read + Send + 'static, tx: mpsc::Sender<Event>, event: fn(String) -> Event) {
    thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n').map_while(|l| l.ok()) {
            let line = strip_controls(&String::from_utf8_lossy(&line));
            if tx.send(event(line)).is_err() {
                break;
            }
        }
    });
}

/// The QEMU command for `config` (without the initramfs path).
fn qemu_command(config: &VmConfig, initrd: &std::path::Path) -> Command {
    let mut append = vec![
        "console=ttyS0".to_owned(),
        "panic=-1".to_owned(),
        "oops=panic".to_owned(),
        // The kernel log printed at the end must still hold the whole run: debug kernels log
        // every delayed kobject release, which overflows the default 128 KiB.
        "log_buf_len=4M".to_owned(),
    ];
    append.extend(config.append.iter().cloned());
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "q35", "-accel", "tcg", "-m"])
        .arg(config.memory_mib.to_string())
        .args([
            "-nodefaults",
            "-nographic",
            "-no-reboot",
            "-serial",
            "mon:stdio",
        ])
        .arg("-kernel")
        .arg(&config.kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(append.join(" "))
        .args(&config.qemu_args);
    cmd
}

/// Boots `config` and waits for the guest's exit status, the timeout or QEMU's exit.
pub fn run(config: &VmConfig) -> Result<VmOutcome> {
    if !config.kernel.exists() {
        bail!(
            "kernel image {} not found: run `cargo xtask kernel`",
            config.kernel.display()
        );
    }
    let dir = config.dir();
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let initrd = dir.join("initramfs.cpio.gz");
    config
        .initramfs
        .build(&dir.join("initramfs"), &initrd)
        .context("cannot build the initramfs")?;

    let _shm_guard = RemoveOnDrop(if config.keep_shm_files {
        Vec::new()
    } else {
        config.shm_files.iter().map(|f| f.path.clone()).collect()
    });
    for shm in &config.shm_files {
        shm.create()?;
    }

    let log_path = dir.join("console.log");
    let mut log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut cmd = qemu_command(config, &initrd);
    let listening = if config.hotplug.is_empty() {
        None
    } else {
        let listening = host_channel::Listening::new(
            &dir,
            config.hotplug.clone(),
            // An orderly unplug waits for the guest: a share of the run's time.
            config.timeout / 4,
        )?;
        cmd.args(listening.qemu_args());
        Some(listening)
    };
    writeln!(log, "$ {}", util::display(&cmd))?;
    let begun = Instant::now();
    let mut child = KillOnDrop(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start qemu-system-x86_64: run `cargo xtask kernel` to install it")?,
    );
    let (tx, rx) = mpsc::channel();
    pump(
        child.0.stdout.take().expect("piped"),
        tx.clone(),
        Event::Console,
    );
    pump(
        child.0.stderr.take().expect("piped"),
        tx.clone(),
        Event::Stderr,
    );
    let mut host = match listening {
        Some(listening) => {
            let host = listening.connect()?;
            pump(host.requests()?, tx, Event::HostRequest);
            Some(host)
        }
        None => None,
    };

    let prefix = format!("[{}] ", config.name);
    let mut console_log = String::new();
    let mut exit_code = None;
    let mut deadline = begun + config.timeout;
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = exit_code.is_none();
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(event) => {
                let line = match event {
                    Event::Console(line) => line,
                    Event::Stderr(line) => format!("qemu: {line}"),
                    Event::HostRequest(line) => match host.as_mut().map(|h| h.answer(&line)) {
                        Some(Ok(exchange)) => format!("host: {exchange}"),
                        // QEMU is going away: its exit ends the loop.
                        Some(Err(error)) => format!("host: cannot answer {line}: {error:#}"),
                        None => continue,
                    },
                };
                writeln!(log, "{line}")?;
                if config.echo {
                    println!("{prefix}{line}");
                }
                if exit_code.is_none() {
                    if let Some(code) = line
                        .trim()
                        .strip_prefix(initramfs::EXIT_SENTINEL)
                        .and_then(|c| c.trim().parse().ok())
                    {
                        exit_code = Some(code);
                        deadline = deadline.min(Instant::now() + POWEROFF_GRACE);
                    }
                }
                console_log.push_str(&line);
                console_log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // QEMU closed its stdout and stderr: it is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let qemu_status = if timed_out || exit_code.is_some() {
        // Give QEMU a moment to power off by itself, then the guard kills it.
        let stop = Instant::now() + Duration::from_secs(2);
        loop {
            match child.0.try_wait()? {
                Some(status) => break Some(status),
                None if Instant::now() >= stop || timed_out => break None,
                None => thread::sleep(Duration::from_millis(50)),
            }
        }
    } else {
        Some(child.0.wait()?)
    };
    drop(child);
    let duration = begun.elapsed();
    writeln!(
        log,
        "# exit_code={exit_code:?} timed_out={timed_out} qemu={qemu_status:?} {:.1}s",
        duration.as_secs_f64()
    )?;
    let (known, splats): (Vec<splat::Splat>, Vec<splat::Splat>) = splat::find(&console_log)
        .into_iter()
        .partition(|splat| splat.known_kernel_report().is_some());
    for report in &known {
        let why = report.known_kernel_report().unwrap_or_default();
        let line = format!(
            "known kernel report, not about the module ({why}): {}",
            report.headline()
        );
        writeln!(log, "# {line}")?;
        crate::util::note(format!("{}: {line}", config.name));
    }
    Ok(VmOutcome {
        exit_code,
        timed_out,
        qemu_status,
        console_log,
        log_path,
        duration,
        splats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_terminal_controls() {
        assert_eq!(
            strip_controls("\u{1b}c\u{1b}[?7l\u{1b}[2JHSA_P2P_BOOTED\r"),
            "HSA_P2P_BOOTED"
        );
        assert_eq!(strip_controls("plain [1.0] line"), "plain [1.0] line");
    }
}
