//! Checks that need another process: a handle used from another open file, and user mappings
//! that must fault (SIGBUS) once their buffer is freed (also while racing the `FREE`) or its GPU
//! unbound — a dying process cannot report its own death.
//!
//! The backend starts the running program again with [`PROBE_VARIABLE`] set; every program
//! that runs the device suites (the `hwtests` binary, `cargo xtask test-hw`) calls [`serve`]
//! first thing in `main`, which runs the probe and exits instead of the program.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;

use hsa_p2p_core::abi::{self, AbiError};
use hsa_p2p_runtime::device::{Buffer, CopyRequest, Device, DeviceError, PathChoice};

use crate::guest::pci_bind;
use crate::stress::WorkerConfig;

/// The environment variable naming the probe a child runs.
pub const PROBE_VARIABLE: &str = "HSA_P2P_HWTESTS_PROBE";

/// SIGBUS, the death a touched revoked mapping must cause.
pub const SIGBUS: i32 = 7;

/// A probe and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Use `handle` of another open file (after allocating a buffer of its own on `gpu_id`):
    /// every use must fail with `EBADF`.
    ForeignHandle {
        /// The other file's handle.
        handle: u32,
        /// The GPU of the probe's own buffer.
        gpu_id: u32,
    },
    /// Map a buffer of `gpu_id`, free it, read the mapping: must die of SIGBUS.
    TouchAfterFree {
        /// The GPU.
        gpu_id: u32,
    },
    /// Race `mmap` against `FREE` of a fresh buffer of `gpu_id` from two threads, in rounds
    /// `first_round..rounds`; print `round N` before reading each mapping that won (it must
    /// die of SIGBUS there: the caller starts the next probe at `N + 1`) and `stale N` after
    /// one that still showed VRAM. Exits 0 after the last round.
    MmapRacingFree {
        /// The GPU.
        gpu_id: u32,
        /// The first round this probe runs (it also sets how long the `FREE` waits).
        first_round: u32,
        /// The end of the rounds.
        rounds: u32,
    },
    /// Map a buffer of `gpu_id`, unbind the GPU at `address` through `driver`, copy (must fail
    /// with `ENODEV`, printed as `copy: ok` or `copy: <problem>`), read the mapping: must die
    /// of SIGBUS. The caller binds the GPU again.
    TouchAfterUnbind {
        /// The GPU.
        gpu_id: u32,
        /// Its PCI address.
        address: String,
        /// The driver's sysfs directory.
        driver: PathBuf,
    },
    /// Map a buffer of `gpu_id`, print [`MAPPED`], then read the mapping every few
    /// milliseconds until the process dies: of SIGBUS once the GPU is removed under it (the
    /// caller removes it, and kills the probe if it outlives the removal).
    TouchUntilRevoked {
        /// The GPU.
        gpu_id: u32,
    },
    /// Submit an asynchronous copy of `size` bytes between two buffers of `gpu_id` (held in
    /// flight by the caller's fault point), then kill itself with SIGKILL: the dying process's
    /// file is released with the copy in flight.
    DieWithCopyInFlight {
        /// The GPU.
        gpu_id: u32,
        /// Bytes of the copy.
        size: u64,
    },
    /// One worker process of the stress campaign: prints its tally as one JSON line.
    StressWorker(WorkerConfig),
}

/// SIGKILL, the death of [`Probe::DieWithCopyInFlight`].
pub const SIGKILL: i32 = 9;

/// The line [`Probe::TouchUntilRevoked`] prints once its mapping is live.
pub const MAPPED: &str = "mapped";

impl Probe {
    fn to_words(&self) -> Vec<String> {
        match self {
            Probe::ForeignHandle { handle, gpu_id } => vec![
                "foreign-handle".into(),
                handle.to_string(),
                gpu_id.to_string(),
            ],
            Probe::TouchAfterFree { gpu_id } => {
                vec!["touch-after-free".into(), gpu_id.to_string()]
            }
            Probe::MmapRacingFree {
                gpu_id,
                first_round,
                rounds,
            } => vec![
                "mmap-racing-free".into(),
                gpu_id.to_string(),
                first_round.to_string(),
                rounds.to_string(),
            ],
            Probe::TouchAfterUnbind {
                gpu_id,
                address,
                driver,
            } => vec![
                "touch-after-unbind".into(),
                gpu_id.to_string(),
                address.clone(),
                driver.display().to_string(),
            ],
            Probe::TouchUntilRevoked { gpu_id } => {
                vec!["touch-until-revoked".into(), gpu_id.to_string()]
            }
            Probe::DieWithCopyInFlight { gpu_id, size } => vec![
                "die-with-copy-in-flight".into(),
                gpu_id.to_string(),
                size.to_string(),
            ],
            Probe::StressWorker(config) => vec![
                "stress-worker".into(),
                config.seed.to_string(),
                config.process.to_string(),
                config.threads.to_string(),
                config.ops_per_thread.to_string(),
                config.fault_percent.to_string(),
                config.topology.display().to_string(),
            ],
        }
    }

    fn from_words(words: &[&str]) -> Option<Probe> {
        match words {
            ["foreign-handle", handle, gpu_id] => Some(Probe::ForeignHandle {
                handle: handle.parse().ok()?,
                gpu_id: gpu_id.parse().ok()?,
            }),
            ["touch-after-free", gpu_id] => Some(Probe::TouchAfterFree {
                gpu_id: gpu_id.parse().ok()?,
            }),
            ["mmap-racing-free", gpu_id, first_round, rounds] => Some(Probe::MmapRacingFree {
                gpu_id: gpu_id.parse().ok()?,
                first_round: first_round.parse().ok()?,
                rounds: rounds.parse().ok()?,
            }),
            ["touch-after-unbind", gpu_id, address, driver] => Some(Probe::TouchAfterUnbind {
                gpu_id: gpu_id.parse().ok()?,
                address: (*address).to_owned(),
                driver: PathBuf::from(driver),
            }),
            ["touch-until-revoked", gpu_id] => Some(Probe::TouchUntilRevoked {
                gpu_id: gpu_id.parse().ok()?,
            }),
            ["die-with-copy-in-flight", gpu_id, size] => Some(Probe::DieWithCopyInFlight {
                gpu_id: gpu_id.parse().ok()?,
                size: size.parse().ok()?,
            }),
            ["stress-worker", seed, process, threads, ops_per_thread, fault_percent, topology] => {
                Some(Probe::StressWorker(WorkerConfig {
                    seed: seed.parse().ok()?,
                    process: process.parse().ok()?,
                    threads: threads.parse().ok()?,
                    ops_per_thread: ops_per_thread.parse().ok()?,
                    fault_percent: fault_percent.parse().ok()?,
                    topology: PathBuf::from(topology),
                }))
            }
            _ => None,
        }
    }
}

/// How a probe's process ended, and what it printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// Its standard output and error.
    pub output: String,
}

impl ProbeOutcome {
    /// Whether it exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    /// Whether it died of SIGBUS.
    pub fn died_of_sigbus(&self) -> bool {
        self.signal == Some(SIGBUS)
    }
}

/// The command that runs `probe` against the device node `node` in a child process of this
/// program.
fn probe_command(node: &Path, probe: &Probe) -> Result<Command, String> {
    let program =
        std::env::current_exe().map_err(|error| format!("cannot find this program: {error}"))?;
    let mut words = vec![node.display().to_string()];
    words.extend(probe.to_words());
    let mut command = Command::new(program);
    command.env(PROBE_VARIABLE, words.join(" "));
    Ok(command)
}

/// Starts `probe` against the device node `node` in a child process with its standard output
/// piped, for a caller that acts while it runs.
pub fn spawn_in_child(node: &Path, probe: &Probe) -> Result<std::process::Child, String> {
    probe_command(node, probe)?
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start the probe: {error}"))
}

/// Runs `probe` against the device node `node` in a child process of this program.
pub fn run_in_child(node: &Path, probe: &Probe) -> ProbeOutcome {
    let mut command = match probe_command(node, probe) {
        Ok(command) => command,
        Err(output) => {
            return ProbeOutcome {
                output,
                ..ProbeOutcome::default()
            }
        }
    };
    match command.output() {
        Ok(output) => ProbeOutcome {
            signal: std::os::unix::process::ExitStatusExt::signal(&output.status),
            code: output.status.code(),
            output: String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        },
        Err(error) => ProbeOutcome {
            output: format!("cannot start the probe: {error}"),
            ..ProbeOutcome::default()
        },
    }
}

/// Runs the probe [`PROBE_VARIABLE`] names and exits; returns when it names none.
pub fn serve() {
    let Ok(request) = std::env::var(PROBE_VARIABLE) else {
        return;
    };
    let words: Vec<&str> = request.split(' ').collect();
    let code = match words.split_first() {
        Some((node, rest)) => match Probe::from_words(rest) {
            Some(probe) => match run(Path::new(node), &probe) {
                Ok(()) => 0,
                Err(problem) => {
                    eprintln!("{problem}");
                    1
                }
            },
            None => {
                eprintln!("unknown probe {request:?}");
                2
            }
        },
        None => 2,
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn run(node: &Path, probe: &Probe) -> Result<(), String> {
    let device = Device::open_at(node).map_err(|error| error.to_string())?;
    match probe {
        Probe::ForeignHandle { handle, gpu_id } => foreign_handle(&device, *handle, *gpu_id),
        Probe::TouchAfterFree { gpu_id } => {
            let (buffer, mapping) = mapped_buffer(&device, *gpu_id)?;
            device.free(buffer.handle).map_err(|e| e.to_string())?;
            touch(mapping.as_slice(), "a freed buffer")
        }
        Probe::MmapRacingFree {
            gpu_id,
            first_round,
            rounds,
        } => mmap_racing_free(&device, *gpu_id, *first_round..*rounds),
        Probe::TouchAfterUnbind {
            gpu_id,
            address,
            driver,
        } => {
            let (buffer, mapping) = mapped_buffer(&device, *gpu_id)?;
            pci_bind::unbind(driver, address)?;
            let copy = device.copy(
                buffer.handle,
                0,
                buffer.handle,
                4096,
                4096,
                PathChoice::Auto,
            );
            match copy {
                Err(error) if error.abi_error() == Some(AbiError::UnknownGpu) => {
                    println!("copy: ok")
                }
                other => println!("copy: expected ENODEV, got {other:?}"),
            }
            touch(mapping.as_slice(), "an unbound GPU's buffer")
        }
        Probe::TouchUntilRevoked { gpu_id } => {
            let (_buffer, mapping) = mapped_buffer(&device, *gpu_id)?;
            println!("{MAPPED}");
            let _ = std::io::stdout().flush();
            loop {
                // SAFETY: the start of a live mapping; once its pages are revoked the read
                // raises SIGBUS, which ends the process as the caller expects.
                unsafe { std::ptr::read_volatile(mapping.as_slice().as_ptr()) };
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        Probe::DieWithCopyInFlight { gpu_id, size } => {
            let alloc = || device.alloc(*gpu_id, *size).map_err(|e| e.to_string());
            let (src, dst) = (alloc()?, alloc()?);
            let request = CopyRequest::whole(src.handle, dst.handle, *size, PathChoice::Auto);
            device
                .submit_copy(&request, None)
                .map_err(|e| e.to_string())?;
            // SAFETY: kill takes no pointer; this process ends here, as the probe intends.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            Err("still alive after SIGKILL".into())
        }
        Probe::StressWorker(config) => {
            // Each worker thread opens its own file.
            drop(device);
            let tally = crate::stress::run_worker(node, config);
            let line = serde_json::to_string(&tally).map_err(|error| error.to_string())?;
            println!("{line}");
            Ok(())
        }
    }
}

/// Bytes of a buffer whose `mmap` races its `FREE`.
const RACED_BUFFER: u64 = 1 << 20;

fn mmap_racing_free(device: &Device, gpu_id: u32, rounds: Range<u32>) -> Result<(), String> {
    for round in rounds {
        let buffer = device
            .alloc(gpu_id, RACED_BUFFER)
            .map_err(|e| e.to_string())?;
        let start = Barrier::new(2);
        let (mapped, freed) = std::thread::scope(|scope| {
            let freer = scope.spawn(|| {
                start.wait();
                // Sweep the FREE across the mmap call's duration.
                for _ in 0..(round % 32) * 64 {
                    std::hint::spin_loop();
                }
                device.free(buffer.handle)
            });
            start.wait();
            let mapped = device.mmap(&buffer);
            (mapped, freer.join())
        });
        freed
            .map_err(|_| "the FREE thread panicked".to_string())?
            .map_err(|error| format!("free: {error}"))?;
        let Ok(mapping) = mapped else { continue };
        println!("round {round}");
        if touch(mapping.as_slice(), "a buffer freed while it was mapped").is_err() {
            println!("stale {round}");
        }
    }
    Ok(())
}

fn mapped_buffer(
    device: &Device,
    gpu_id: u32,
) -> Result<(Buffer, hsa_p2p_runtime::device::Mapping), String> {
    let buffer = device.alloc(gpu_id, 8192).map_err(|e| e.to_string())?;
    let mut mapping = device.mmap(&buffer).map_err(|e| e.to_string())?;
    mapping.as_mut_slice()[0] = 0x5a;
    Ok((buffer, mapping))
}

/// Reads the first byte of `bytes`, whose pages must be gone (SIGBUS ends the process).
fn touch(bytes: &[u8], what: &str) -> Result<(), String> {
    let _ = std::io::stdout().flush();
    // SAFETY: the pointer is the start of a live mapping (the mapping itself is still there;
    // only its pages must be gone, which turns this read into SIGBUS).
    let byte = unsafe { std::ptr::read_volatile(bytes.as_ptr()) };
    Err(format!("read {byte:#x} through the mapping of {what}"))
}

fn foreign_handle(device: &Device, handle: u32, gpu_id: u32) -> Result<(), String> {
    // This file has a buffer of its own, so the lookup is not trivially empty.
    let own = device.alloc(gpu_id, 4096).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let mut expect = |what: &str, result: Result<(), DeviceError>| match result {
        Err(error) if error.abi_error() == Some(AbiError::UnknownHandle) => {}
        other => problems.push(format!("{what}: {other:?}")),
    };
    expect("info", device.info(handle).map(drop));
    expect(
        "copy",
        device
            .copy(handle, 0, own.handle, 0, 4096, PathChoice::Auto)
            .map(drop),
    );
    expect(
        "mmap",
        device
            .mmap(&Buffer {
                handle,
                mmap_offset: abi::mmap_offset(handle),
                ..own
            })
            .map(drop),
    );
    expect("free", device.free(handle));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "another file's handle was usable: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_survive_the_trip_through_the_environment() {
        for probe in [
            Probe::ForeignHandle {
                handle: 7,
                gpu_id: 4660,
            },
            Probe::TouchAfterFree { gpu_id: 4660 },
            Probe::MmapRacingFree {
                gpu_id: 4660,
                first_round: 3,
                rounds: 200,
            },
            Probe::TouchAfterUnbind {
                gpu_id: 4660,
                address: "0000:03:00.0".into(),
                driver: "/sys/bus/pci/drivers/hsa_p2p".into(),
            },
            Probe::StressWorker(WorkerConfig {
                seed: 9,
                process: 2,
                threads: 3,
                ops_per_thread: 400,
                fault_percent: 5,
                topology: "/sys/kernel/hsa_p2p/topology".into(),
            }),
            Probe::TouchUntilRevoked { gpu_id: 7 },
        ] {
            let words = probe.to_words();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            assert_eq!(Probe::from_words(&words), Some(probe));
        }
        assert_eq!(Probe::from_words(&["touch-after-free"]), None);
    }
}
