//! The stress campaign (`hwtests stress`): a seeded, bounded storm against `/dev/hsa_p2p`.
//!
//! Several worker processes, each with several threads and one open file per thread, issue
//! random valid and hostile sequences of every ioctl, `mmap`, access, `fork` and `close`
//! ([`worker`]); at the same time GPUs are unbound and rebound ([`unbind`]), readers follow
//! the topology's `generation_id` protocol ([`readers`]) and slab allocations of chosen system
//! calls fail ([`failslab`]). Oracles judge every step ([`tally`]); at the end all VRAM must be
//! free again, the module must unload, and kmemleak (where the kernel has it) must report no
//! new leak. What the host alone sees (checker splats on the console) is added by `cargo xtask
//! stress`.
//!
//! A campaign is reproducible from its seed as far as each thread's sequence goes (the
//! interleaving of threads and processes is the scheduler's): `--seed N` replays it.

pub mod failslab;
pub mod readers;
pub mod tally;
pub mod unbind;
pub mod window;
pub mod worker;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hsa_p2p_core::descriptor::DESCRIPTOR_PAGE_SIZE;
use hsa_p2p_runtime::device::{abi, transfer, Device};
use hsa_p2p_runtime::machine_facts::{parse_resources, Resource};
use hsa_p2p_runtime::sysfs::read_topology;
use serde::{Deserialize, Serialize};

use self::failslab::Failslab;
use self::tally::{Failure, Tally};
use self::unbind::UnbindPlan;
use self::worker::ThreadPlan;
use crate::device::probe::{run_in_child, Probe, ProbeOutcome};

/// The summary's schema name.
pub const SCHEMA: &str = "hsa-p2p/stress/v1";

/// What a campaign does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Seed of every choice.
    pub seed: u64,
    /// Worker operations in total (split over processes and threads).
    pub ops: u64,
    /// Worker processes.
    pub processes: u32,
    /// Threads per worker process (each with its own open file).
    pub threads: u32,
    /// Unbind/rebind cycles to complete at least.
    pub min_unbinds: u64,
    /// Percent of ioctls and binds issued with fault injection armed (0: none).
    pub fault_percent: u32,
    /// Percent of an armed call's slab allocations that fail.
    pub failslab_percent: u32,
    /// Unload this module at the end (then check kmemleak).
    pub unload: Option<String>,
    /// Give up after this many seconds (a hang is a failure, not a wait).
    pub deadline_seconds: u64,
    /// Where the machine's files are.
    pub paths: Paths,
}

/// The machine's files the campaign uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paths {
    /// The device node.
    pub device: PathBuf,
    /// The module's topology directory.
    pub topology: PathBuf,
    /// The driver's sysfs directory.
    pub driver: PathBuf,
    /// The PCI devices' sysfs directory.
    pub pci_devices: PathBuf,
    /// Where debugfs is mounted.
    pub debugfs: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            device: PathBuf::from(hsa_p2p_runtime::device::DEVICE_PATH),
            topology: PathBuf::from(hsa_p2p_runtime::sysfs::HSA_P2P_TOPOLOGY),
            driver: PathBuf::from("/sys/bus/pci/drivers/hsa_p2p"),
            pci_devices: PathBuf::from("/sys/bus/pci/devices"),
            debugfs: PathBuf::from("/sys/kernel/debug"),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            ops: 10_000,
            processes: 3,
            threads: 2,
            min_unbinds: 50,
            fault_percent: 3,
            failslab_percent: 20,
            unload: None,
            deadline_seconds: 1200,
            paths: Paths::default(),
        }
    }
}

/// What a campaign found (`hsa-p2p/stress/v1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA`].
    pub schema: String,
    /// The seed (replay with it).
    pub seed: u64,
    /// Worker operations issued.
    pub ops: u64,
    /// Worker processes.
    pub processes: u32,
    /// Threads per process.
    pub threads: u32,
    /// Unbind/rebind cycles.
    pub unbinds: u64,
    /// Slab allocation failures the kernel injected (0 where it has no failslab).
    pub faults_injected: u64,
    /// Whether the kernel offers fault injection at all.
    pub fault_injection: bool,
    /// Successful copies verified byte for byte (asynchronous ones included).
    pub copies_verified: u64,
    /// Asynchronous copies submitted.
    #[serde(default)]
    pub async_submitted: u64,
    /// Asynchronous copies reaped with `COPY_WAIT`.
    #[serde(default)]
    pub async_reaped: u64,
    /// Asynchronous copies in flight when their file was closed.
    #[serde(default)]
    pub async_closed_in_flight: u64,
    /// Eventfd signals counted (one per asynchronous copy submitted with an eventfd that ended,
    /// reaped or closed in flight: a missing or extra one is a contract violation).
    #[serde(default)]
    pub eventfd_signals: u64,
    /// Bytes compared with what they must hold.
    pub bytes_verified: u64,
    /// Topology snapshots accepted and checked.
    pub topology_reads: u64,
    /// See [`Tally::isolation_violations`].
    pub isolation_violations: u64,
    /// See [`Tally::corruptions`].
    pub corruptions: u64,
    /// See [`Tally::contract_violations`].
    pub contract_violations: u64,
    /// See [`Tally::torn_reads`].
    pub torn_reads: u64,
    /// Checker reports on the console (filled in by the host, which sees the console).
    pub splats: u64,
    /// VRAM still allocated after every file closed, plus kmemleak's new suspects.
    pub leaks: u64,
    /// What leaked.
    pub leak_reports: Vec<String>,
    /// `debug` or `normal` (filled in by the host, which chose the kernel).
    pub kernel: String,
    /// Failed operations by errno name.
    pub errors: BTreeMap<String, u64>,
    /// Operations by name.
    pub by_op: BTreeMap<String, u64>,
    /// The first failures, described.
    pub failures: Vec<String>,
    /// Wall-clock time of the campaign.
    pub seconds: f64,
}

impl Summary {
    /// Whether every oracle held.
    pub fn passed(&self) -> bool {
        self.isolation_violations
            + self.corruptions
            + self.contract_violations
            + self.torn_reads
            + self.splats
            + self.leaks
            == 0
    }
}

/// The campaign's size and seed on a command line (`hwtests stress`, `cargo xtask stress`).
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct StressOptions {
    /// Seed of every choice (replays a campaign's sequences).
    #[arg(long, default_value_t = Config::default().seed)]
    pub seed: u64,
    /// Worker operations in total.
    #[arg(long, default_value_t = Config::default().ops)]
    pub ops: u64,
    /// Worker processes.
    #[arg(long, default_value_t = Config::default().processes)]
    pub processes: u32,
    /// Threads per worker process (each with its own open file).
    #[arg(long, default_value_t = Config::default().threads)]
    pub threads: u32,
    /// Unbind/rebind cycles to complete at least.
    #[arg(long, default_value_t = Config::default().min_unbinds)]
    pub min_unbinds: u64,
    /// Percent of ioctls and binds made with slab fault injection armed (0: none).
    #[arg(long, default_value_t = Config::default().fault_percent)]
    pub fault_percent: u32,
    /// Give up after this many seconds (a hang is a failure).
    #[arg(long, default_value_t = Config::default().deadline_seconds)]
    pub deadline: u64,
}

impl Default for StressOptions {
    fn default() -> Self {
        let config = Config::default();
        StressOptions {
            seed: config.seed,
            ops: config.ops,
            processes: config.processes,
            threads: config.threads,
            min_unbinds: config.min_unbinds,
            fault_percent: config.fault_percent,
            deadline: config.deadline_seconds,
        }
    }
}

impl StressOptions {
    /// The campaign these options describe, on the machine's default paths.
    pub fn config(&self) -> Config {
        Config {
            seed: self.seed,
            ops: self.ops,
            processes: self.processes,
            threads: self.threads,
            min_unbinds: self.min_unbinds,
            fault_percent: self.fault_percent,
            deadline_seconds: self.deadline,
            ..Config::default()
        }
    }

    /// The same options as `hwtests stress` arguments.
    pub fn to_args(&self) -> String {
        format!(
            "--seed {} --ops {} --processes {} --threads {} --min-unbinds {} --fault-percent {} \
             --deadline {}",
            self.seed,
            self.ops,
            self.processes,
            self.threads,
            self.min_unbinds,
            self.fault_percent,
            self.deadline
        )
    }
}

impl std::fmt::Display for Summary {
    /// The summary for people: counters, then every failure kept.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "stress: seed {} | {} ops | {} unbinds | {} faults injected{} | {} copies verified \
             ({} bytes) | {} topology reads | {:.1} s",
            self.seed,
            self.ops,
            self.unbinds,
            self.faults_injected,
            if self.fault_injection {
                ""
            } else {
                " (no fault injection in this kernel)"
            },
            self.copies_verified,
            self.bytes_verified,
            self.topology_reads,
            self.seconds,
        )?;
        writeln!(
            f,
            "stress: asynchronous copies {} submitted | {} reaped | {} closed in flight | {} \
             eventfd signals",
            self.async_submitted,
            self.async_reaped,
            self.async_closed_in_flight,
            self.eventfd_signals,
        )?;
        writeln!(
            f,
            "stress: isolation violations {} | corruptions {} | contract violations {} | torn \
             reads {} | splats {} | leaks {}",
            self.isolation_violations,
            self.corruptions,
            self.contract_violations,
            self.torn_reads,
            self.splats,
            self.leaks,
        )?;
        for failure in self.failures.iter().chain(&self.leak_reports) {
            writeln!(f, "stress: FAIL {failure}")?;
        }
        Ok(())
    }
}

/// What one worker process runs ([`Probe::StressWorker`]: a child of the campaign's program
/// that prints its [`Tally`] as one JSON line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The campaign's seed.
    pub seed: u64,
    /// This process's number.
    pub process: u32,
    /// Threads to run.
    pub threads: u32,
    /// Operations per thread.
    pub ops_per_thread: u64,
    /// Percent of ioctls with fault injection armed.
    pub fault_percent: u32,
    /// The module's topology directory.
    pub topology: PathBuf,
}

/// A well-mixed seed for part `part` of a campaign seeded with `seed` (SplitMix64's finaliser).
pub fn derive_seed(seed: u64, part: u64) -> u64 {
    let mut z = seed ^ part.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs one worker process's threads against the device node `device` and returns their
/// merged tally.
pub fn run_worker(device: &Path, config: &WorkerConfig) -> Tally {
    let plans: Vec<ThreadPlan> = (0..config.threads)
        .map(|thread| {
            let part = u64::from(config.process) << 16 | u64::from(thread);
            ThreadPlan {
                seed: derive_seed(config.seed, part),
                ops: config.ops_per_thread,
                tag: derive_seed(config.seed, part | 1 << 40),
                device: device.to_path_buf(),
                topology: config.topology.clone(),
                fault_percent: config.fault_percent,
            }
        })
        .collect();
    let mut total = Tally::default();
    std::thread::scope(|scope| {
        let threads: Vec<_> = plans
            .iter()
            .map(|plan| scope.spawn(|| worker::run_thread(plan)))
            .collect();
        for thread in threads {
            match thread.join() {
                Ok(tally) => total.merge(tally),
                Err(_) => total.fail(Failure::Contract, "a worker thread panicked".into()),
            }
        }
    });
    total
}

/// Why a campaign could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The machine is not ready (no device, no GPU, no topology).
    #[error("{0}")]
    NotReady(String),
    /// A system call of the campaign itself failed.
    #[error("{what}: {source}")]
    Io {
        /// What was done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> CampaignError {
    let what = what.into();
    move |source| CampaignError::Io { what, source }
}

/// Runs a campaign. Worker processes are children of the running program, started as probes
/// ([`Probe::StressWorker`]): its `main` must call [`crate::device::probe::serve`] first.
pub fn run_campaign(config: &Config) -> Result<Summary, CampaignError> {
    let started = Instant::now();
    let paths = &config.paths;
    if !paths.device.exists() {
        return Err(CampaignError::NotReady(format!(
            "{} does not exist: load the hsa_p2p module first",
            paths.device.display()
        )));
    }
    if crate::guest::pci_bind::bound(&paths.driver).is_empty() {
        return Err(CampaignError::NotReady(format!(
            "{}: no GPU bound to the driver",
            paths.driver.display()
        )));
    }
    let kmemleak = paths.debugfs.join("kmemleak");
    if kmemleak.exists() {
        // Suspects from before the campaign are not the campaign's.
        fs::write(&kmemleak, "clear").map_err(io_error("kmemleak clear"))?;
    }
    let failslab = if config.fault_percent > 0 {
        Failslab::setup(&paths.debugfs, config.failslab_percent)
            .map_err(io_error("failslab setup"))?
    } else {
        None
    };
    let fault_percent = if failslab.is_some() {
        config.fault_percent
    } else {
        0
    };
    let deadline = Duration::from_secs(config.deadline_seconds);
    let parts = u64::from(config.processes.max(1)) * u64::from(config.threads.max(1));
    let workers: Vec<WorkerConfig> = (0..config.processes.max(1))
        .map(|process| WorkerConfig {
            seed: config.seed,
            process,
            threads: config.threads.max(1),
            ops_per_thread: config.ops.div_ceil(parts),
            fault_percent,
            topology: paths.topology.clone(),
        })
        .collect();
    let workers_done = AtomicBool::new(false);
    let readers_stop = AtomicBool::new(false);
    let unbind_plan = UnbindPlan {
        seed: derive_seed(config.seed, 1 << 48),
        driver: paths.driver.clone(),
        topology: paths.topology.clone(),
        min_cycles: config.min_unbinds,
        fault_percent,
        deadline,
    };
    let mut total = Tally::default();
    // The campaign's `ops` are the workers' (not the unbinder's or the readers').
    let mut worker_ops = 0;
    std::thread::scope(|scope| {
        let unbinder = scope.spawn(|| unbind::run(&unbind_plan, &workers_done));
        let reader = scope.spawn(|| {
            readers::run(
                &paths.topology,
                derive_seed(config.seed, 1 << 49),
                &readers_stop,
            )
        });
        let running: Vec<_> = workers
            .iter()
            .map(|worker| {
                let probe = Probe::StressWorker(worker.clone());
                (
                    worker.process,
                    scope.spawn(move || run_in_child(&paths.device, &probe)),
                )
            })
            .collect();
        for (process, child) in running {
            match child.join() {
                Ok(outcome) => total.merge(worker_tally(process, &outcome)),
                Err(_) => total.fail(Failure::Contract, "a worker's waiter panicked".into()),
            }
        }
        worker_ops = total.ops;
        workers_done.store(true, Ordering::Relaxed);
        match unbinder.join() {
            Ok(tally) => total.merge(tally),
            Err(_) => total.fail(Failure::Contract, "the unbinder panicked".into()),
        }
        readers_stop.store(true, Ordering::Relaxed);
        match reader.join() {
            Ok(tally) => total.merge(tally),
            Err(_) => total.fail(Failure::Contract, "the reader panicked".into()),
        }
    });
    let faults_injected = match &failslab {
        Some(failslab) => failslab.injected().map_err(io_error("failslab times"))?,
        None => 0,
    };
    drop(failslab);
    let mut leak_reports = vram_in_use(paths);
    if let Some(module) = &config.unload {
        unload(module, &mut total);
        if kmemleak.exists() {
            leak_reports.extend(kmemleak_suspects(&kmemleak)?);
        }
    }
    Ok(Summary {
        schema: SCHEMA.to_owned(),
        seed: config.seed,
        ops: worker_ops,
        processes: config.processes.max(1),
        threads: config.threads.max(1),
        unbinds: total.unbinds,
        faults_injected,
        fault_injection: fault_percent > 0,
        copies_verified: total.copies_verified,
        async_submitted: total.async_submitted,
        async_reaped: total.async_reaped,
        async_closed_in_flight: total.async_closed_in_flight,
        eventfd_signals: total.eventfd_signals,
        bytes_verified: total.bytes_verified,
        topology_reads: total.topology_reads,
        isolation_violations: total.isolation_violations,
        corruptions: total.corruptions,
        contract_violations: total.contract_violations,
        torn_reads: total.torn_reads,
        splats: 0,
        leaks: leak_reports.len() as u64,
        leak_reports,
        kernel: String::new(),
        errors: total.errors,
        by_op: total.by_op,
        failures: total.failures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A worker process's tally, from the JSON line it printed last.
fn worker_tally(process: u32, outcome: &ProbeOutcome) -> Tally {
    let mut tally = Tally::default();
    if !outcome.succeeded() {
        tally.fail(
            Failure::Contract,
            format!(
                "worker process {process} ended with code {:?}, signal {:?}: {}",
                outcome.code,
                outcome.signal,
                outcome.output.trim()
            ),
        );
    }
    let line = outcome
        .output
        .lines()
        .rev()
        .find(|line| line.starts_with('{'));
    match line.map(serde_json::from_str::<Tally>) {
        Some(Ok(worker)) => tally.merge(worker),
        Some(Err(error)) => tally.fail(
            Failure::Contract,
            format!("worker process {process} printed no tally: {error}"),
        ),
        None => tally.fail(
            Failure::Contract,
            format!("worker process {process} printed no tally"),
        ),
    }
    tally
}

/// With every file closed, each GPU's whole VRAM (but the descriptor page) can be allocated
/// again; a GPU where it cannot is reported with the error.
fn vram_in_use(paths: &Paths) -> Vec<String> {
    let mut reports = Vec::new();
    let topology = match read_topology(&paths.topology) {
        Ok(topology) => topology,
        Err(error) => return vec![format!("cannot read the topology to check VRAM: {error}")],
    };
    let device = match Device::open_at(&paths.device) {
        Ok(device) => device,
        Err(error) => return vec![format!("cannot open the device to check VRAM: {error}")],
    };
    for gpu in transfer::gpus(&topology) {
        let Some(node) = topology.nodes.iter().find(|node| node.id == gpu.node) else {
            continue;
        };
        let address = node.pci_address().to_string();
        let bar = match bar_size(&paths.pci_devices.join(&address), 2) {
            Ok(size) => size,
            Err(error) => {
                reports.push(format!("GPU {address}: BAR size unknown: {error}"));
                continue;
            }
        };
        let free = bar.saturating_sub(DESCRIPTOR_PAGE_SIZE.max(abi::VRAM_PAGE));
        match device.alloc(gpu.gpu_id, free) {
            Ok(buffer) => {
                let _ = device.free(buffer.handle);
            }
            Err(error) => reports.push(format!(
                "GPU {address} (gpu_id {}): {free} bytes not allocatable after every file \
                 closed: {error}",
                gpu.gpu_id
            )),
        }
    }
    reports
}

/// Size of BAR `index` from the device's sysfs `resource` file.
fn bar_size(device: &Path, index: usize) -> io::Result<u64> {
    let text = fs::read_to_string(device.join("resource"))?;
    match parse_resources(&text).get(index).map(Resource::size) {
        None => Err(io::Error::other(format!("no BAR {index}"))),
        Some(0) => Err(io::Error::other(format!("BAR {index} is not assigned"))),
        Some(size) => Ok(size),
    }
}

/// `rmmod module`: it must succeed once every file is closed.
fn unload(module: &str, tally: &mut Tally) {
    match Command::new("rmmod").arg(module).status() {
        Ok(status) if status.success() => {}
        Ok(status) => tally.fail(
            Failure::Contract,
            format!("rmmod {module} ended with {status}"),
        ),
        Err(error) => tally.fail(Failure::Contract, format!("rmmod {module}: {error}")),
    }
}

/// kmemleak's suspects after two scans (it reports an object once it stayed unreferenced
/// across scans), one line per suspect with its first backtrace frames.
fn kmemleak_suspects(kmemleak: &Path) -> Result<Vec<String>, CampaignError> {
    for _ in 0..2 {
        fs::write(kmemleak, "scan").map_err(io_error("kmemleak scan"))?;
    }
    let report = fs::read_to_string(kmemleak).map_err(io_error("kmemleak read"))?;
    Ok(parse_kmemleak(&report))
}

/// One entry per `unreferenced object` block of a kmemleak report.
pub fn parse_kmemleak(report: &str) -> Vec<String> {
    let mut suspects: Vec<String> = Vec::new();
    for line in report.lines() {
        let line = line.trim();
        if line.starts_with("unreferenced object") {
            suspects.push(line.to_owned());
        } else if let Some(last) = suspects.last_mut() {
            if line.starts_with('[') || line.contains('+') {
                last.push_str(" | ");
                last.push_str(line);
            }
        }
    }
    suspects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_survive_the_trip_through_a_command_line() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            options: StressOptions,
        }
        let options = StressOptions {
            seed: 42,
            ops: 123,
            processes: 4,
            threads: 1,
            min_unbinds: 7,
            fault_percent: 0,
            deadline: 60,
        };
        let line = format!("stress {}", options.to_args());
        let parsed = Cli::try_parse_from(line.split_whitespace()).unwrap();
        assert_eq!(parsed.options, options);
        assert_eq!(
            Cli::try_parse_from(["stress"]).unwrap().options,
            StressOptions::default()
        );
    }

    #[test]
    fn derived_seeds_differ_per_part_and_repeat_per_seed() {
        assert_eq!(derive_seed(1, 2), derive_seed(1, 2));
        assert_ne!(derive_seed(1, 2), derive_seed(1, 3));
        assert_ne!(derive_seed(1, 2), derive_seed(2, 2));
    }

    #[test]
    fn kmemleak_reports_give_one_suspect_each() {
        let report = "\
unreferenced object 0xffff888003a1c000 (size 64):
  comm \"insmod\", pid 71, jiffies 4294893210
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 0):
    [<ffffffff81234567>] __kmalloc_noprof+0x1a7/0x3a0
    [<ffffffffc0001234>] hsa_p2p_sysfs_dir_create+0x21/0x90 [hsa_p2p]
unreferenced object 0xffff888003a1d000 (size 32):
  comm \"sh\", pid 80, jiffies 4294893300
";
        let suspects = parse_kmemleak(report);
        assert_eq!(suspects.len(), 2);
        assert!(
            suspects[0].contains("hsa_p2p_sysfs_dir_create"),
            "{suspects:?}"
        );
        assert!(suspects[1].starts_with("unreferenced object 0xffff888003a1d000"));
        assert!(parse_kmemleak("").is_empty());
    }

    #[test]
    fn bar_sizes_come_from_the_resource_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("resource"),
            "0x00000000fe000000 0x00000000fe0000ff 0x0000000000040200\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
             0x0000000800000000 0x0000000803ffffff 0x000000000014220c\n",
        )
        .unwrap();
        assert_eq!(bar_size(dir.path(), 2).unwrap(), 64 << 20);
        assert!(bar_size(dir.path(), 1).is_err());
        assert!(bar_size(dir.path(), 5).is_err());
    }

    #[test]
    fn the_summary_has_the_documented_fields() {
        let summary = Summary {
            schema: SCHEMA.into(),
            seed: 7,
            ops: 10,
            processes: 3,
            threads: 2,
            unbinds: 50,
            faults_injected: 4,
            fault_injection: true,
            copies_verified: 3,
            async_submitted: 2,
            async_reaped: 1,
            async_closed_in_flight: 1,
            eventfd_signals: 2,
            bytes_verified: 4096,
            topology_reads: 9,
            isolation_violations: 0,
            corruptions: 0,
            contract_violations: 0,
            torn_reads: 0,
            splats: 0,
            leaks: 0,
            leak_reports: Vec::new(),
            kernel: "debug".into(),
            errors: BTreeMap::new(),
            by_op: BTreeMap::new(),
            failures: Vec::new(),
            seconds: 1.5,
        };
        assert!(summary.passed());
        // The fields the issue and docs promise, read as a consumer would.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Documented {
            schema: String,
            seed: u64,
            ops: u64,
            processes: u32,
            unbinds: u64,
            faults_injected: u64,
            copies_verified: u64,
            isolation_violations: u64,
            corruptions: u64,
            splats: u64,
            leaks: u64,
            kernel: String,
        }
        let json = serde_json::to_string(&summary).unwrap();
        let documented: Documented = serde_json::from_str(&json).unwrap();
        assert_eq!(documented.schema, SCHEMA);
        assert!(!Summary {
            leaks: 1,
            ..summary
        }
        .passed());
    }
}
