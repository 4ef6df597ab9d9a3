//! Checks that need another process: a handle used from another open file, and user mappings
//! that must fault (SIGBUS) once their buffer is freed or its GPU unbound — a dying process
//! cannot report its own death.
//!
//! The backend starts the running program again with [`PROBE_VARIABLE`] set; every program
//! that runs the device suites (the `hwtests` binary, `cargo xtask test-hw`) calls [`serve`]
//! first thing in `main`, which runs the probe and exits instead of the program.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use hsa_p2p_core::abi::{self, AbiError};
use hsa_p2p_runtime::device::{Buffer, Device, DeviceError, PathChoice};

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
}

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
            ["touch-after-unbind", gpu_id, address, driver] => Some(Probe::TouchAfterUnbind {
                gpu_id: gpu_id.parse().ok()?,
                address: (*address).to_owned(),
                driver: PathBuf::from(driver),
            }),
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

/// Runs `probe` against the device node `node` in a child process of this program.
pub fn run_in_child(node: &Path, probe: &Probe) -> ProbeOutcome {
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(error) => {
            return ProbeOutcome {
                output: format!("cannot find this program: {error}"),
                ..ProbeOutcome::default()
            }
        }
    };
    let mut words = vec![node.display().to_string()];
    words.extend(probe.to_words());
    match Command::new(program)
        .env(PROBE_VARIABLE, words.join(" "))
        .output()
    {
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
        Probe::TouchAfterUnbind {
            gpu_id,
            address,
            driver,
        } => {
            let (buffer, mapping) = mapped_buffer(&device, *gpu_id)?;
            std::fs::write(driver.join("unbind"), address)
                .map_err(|error| format!("cannot unbind {address}: {error}"))?;
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
    }
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
            Probe::TouchAfterUnbind {
                gpu_id: 4660,
                address: "0000:03:00.0".into(),
                driver: "/sys/bus/pci/drivers/hsa_p2p".into(),
            },
        ] {
            let words = probe.to_words();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            assert_eq!(Probe::from_words(&words), Some(probe));
        }
        assert_eq!(Probe::from_words(&["touch-after-free"]), None);
    }
}
