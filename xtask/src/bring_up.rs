//! Bring-up at scale, from the kernel's own timestamps: machines of 2, 4 and 16 GPUs load the
//! module, and the kernel log (`dmesg -r`) gives the time of each GPU's probe message and of
//! every topology publication. GPUs bind one after the other, so the interval between two
//! consecutive probe messages is one GPU's bind + publish (the rest of its probe, the
//! republication, the start of the next probe). The median interval is reported: under TCG on
//! a loaded host one interval can be stretched tenfold by the host's scheduler.

use anyhow::{anyhow, bail, Context, Result};
use hsa_p2p_runtime::stats::median;
use serde::Serialize;

use crate::emulation::emulate;
use crate::util::phase;
use crate::vm::guests::{shipped_spec, Boot, Guests};
use crate::vm::options::load_module_step;
use crate::vm::protocol::{self, kernel_log, print_kernel_log};

/// The machines measured, by GPU count.
pub const BRING_UP_SPECS: [&str; 3] = ["same-switch.toml", "two-socket.toml", "sixteen-gpus.toml"];

/// What the probe prints once per GPU (`kmod/src/driver.rs`).
const PROBE_MESSAGE: &str = "GPU: VRAM ";

/// What every publication prints (`kmod/src/registry.rs`).
const PUBLICATION_MESSAGE: &str = "topology generation ";

/// One machine's bring-up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BringUp {
    /// The spec's name.
    pub spec: String,
    /// GPUs bound.
    pub gpus: u32,
    /// Kernel time of the first GPU's probe message, seconds (the boot before the module).
    pub first_probe_s: f64,
    /// Kernel time of the last GPU's probe message, seconds.
    pub last_probe_s: f64,
    /// Kernel time of the first publication that lists every GPU, seconds.
    pub all_published_s: f64,
    /// Topology publications from the first probe to that one.
    pub publications: u32,
    /// The median interval between consecutive probe messages (one GPU's bind + publish),
    /// milliseconds; with one GPU, from its probe message to the publication.
    pub per_gpu_ms: f64,
}

/// The kernel timestamp of a `dmesg -r` line (`<6>[    1.234567] ...`).
fn timestamp(line: &str) -> Option<f64> {
    let start = line.find('[')? + 1;
    let end = start + line[start..].find(']')?;
    line[start..end].trim().parse().ok()
}

/// The GPU count of a publication line (`topology generation 3: 2 GPUs, ...`).
fn published_gpus(line: &str) -> Option<u32> {
    let rest = &line[line.find(PUBLICATION_MESSAGE)? + PUBLICATION_MESSAGE.len()..];
    let after_colon = &rest[rest.find(": ")? + 2..];
    after_colon.split(' ').next()?.parse().ok()
}

/// The bring-up of `gpus` GPUs in `log` (`dmesg -r` lines).
pub fn from_log(spec: &str, gpus: u32, log: &[String]) -> Result<BringUp> {
    let probes: Vec<f64> = log
        .iter()
        .filter(|line| line.contains(PROBE_MESSAGE))
        .filter_map(|line| timestamp(line))
        .collect();
    let (Some(&first_probe_s), Some(&last_probe_s)) = (probes.first(), probes.last()) else {
        bail!("no GPU probe message in the kernel log");
    };
    let publications: Vec<(f64, u32)> = log
        .iter()
        .filter_map(|line| Some((timestamp(line)?, published_gpus(line)?)))
        .filter(|(at, _)| *at >= first_probe_s)
        .collect();
    let position = publications
        .iter()
        .position(|(_, count)| *count == gpus)
        .with_context(|| format!("no publication of {gpus} GPUs in the kernel log"))?;
    let all_published_s = publications[position].0;
    let intervals: Vec<f64> = probes.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let per_gpu_s = median(&intervals).unwrap_or(all_published_s - first_probe_s);
    Ok(BringUp {
        spec: spec.to_owned(),
        gpus,
        first_probe_s,
        last_probe_s,
        all_published_s,
        publications: position as u32 + 1,
        per_gpu_ms: per_gpu_s * 1e3,
    })
}

/// More guest work for one of the bring-up machines, after its kernel log is printed: the
/// benchmark's all-to-all over 4 GPUs rides on the 4-GPU boot instead of booting it again.
pub struct Rider {
    /// The machine it rides on, by GPU count.
    pub gpus: u32,
    /// The guest steps (the guests' tools are there for them).
    pub steps: Vec<String>,
}

/// What [`measure`] found: every machine's bring-up, and the console log of the rider's.
pub struct Measured {
    /// One per machine of [`BRING_UP_SPECS`].
    pub bring_up: Vec<BringUp>,
    /// The rider's machine's spec name and its console log (`None` without a rider or when no
    /// machine has its GPU count).
    pub rider: Option<(String, String)>,
}

/// Boots every machine of [`BRING_UP_SPECS`] and measures its bring-up; `rider` runs on the
/// machine of its GPU count, the only one that gets the `guests`' tools.
pub fn measure(guests: &Guests, rider: Option<Rider>) -> Result<Measured> {
    let mut measured = Measured {
        bring_up: Vec::new(),
        rider: None,
    };
    let mut rider = rider;
    let bare = guests.without_tools();
    for file in BRING_UP_SPECS {
        let spec = shipped_spec(file)?;
        let machine = emulate(&spec, &format!("hsa-p2p-bring-up-{}", std::process::id()))?;
        let gpus = machine.gpus.len() as u32;
        let mut steps = vec![load_module_step(), print_kernel_log()];
        let riding = rider.take_if(|rider| rider.gpus == gpus);
        if let Some(rider) = &riding {
            steps.extend(rider.steps.iter().cloned());
        }
        phase(format!(
            "{}: bring-up of {gpus} GPUs (kernel timestamps){}",
            spec.name,
            if riding.is_some() {
                ", then the benchmark's work for this machine"
            } else {
                ""
            }
        ));
        let booted = if riding.is_some() { guests } else { &bare };
        let run = booted.boot(Boot {
            name: "bring-up".into(),
            machine: &machine,
            script: protocol::script(steps),
            keep_shm_files: false,
        })?;
        run.check_steps()?;
        let log = kernel_log(&run.console_log).ok_or_else(|| anyhow!("no kernel log printed"))?;
        measured.bring_up.push(from_log(&spec.name, gpus, &log)?);
        if riding.is_some() {
            measured.rider = Some((spec.name.clone(), run.console_log.clone()));
        }
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_gpu_time_is_the_interval_between_probes() {
        let log: Vec<String> = [
            "<6>[    0.900000] hsa_p2p: topology generation 1: 0 GPUs, 0 p2p links",
            "<6>[    1.000000] hsa_p2p 0000:02:00.0: GPU: VRAM 64 MiB, BAR2 64 MiB",
            "<6>[    1.100000] hsa_p2p: topology generation 2: 1 GPUs, 0 p2p links",
            "<6>[    1.150000] hsa_p2p 0000:03:00.0: GPU: VRAM 64 MiB, BAR2 64 MiB",
            "<6>[    1.300000] hsa_p2p: topology generation 3: 2 GPUs, 2 p2p links",
            "<6>[    2.000000] hsa_p2p: topology generation 4: 2 GPUs, 2 p2p links",
        ]
        .map(String::from)
        .to_vec();
        let bring_up = from_log("same-switch", 2, &log).unwrap();
        assert_eq!(bring_up.first_probe_s, 1.0);
        assert_eq!(bring_up.last_probe_s, 1.15);
        assert_eq!(bring_up.all_published_s, 1.3);
        assert_eq!(bring_up.publications, 2);
        assert!((bring_up.per_gpu_ms - 150.0).abs() < 1e-6);
    }

    #[test]
    fn one_stretched_interval_does_not_move_the_median() {
        let log = [1.0, 1.01, 1.02, 1.5, 1.51]
            .iter()
            .map(|at| format!("<6>[    {at:.6}] hsa_p2p 0000:02:00.0: GPU: VRAM 64 MiB"))
            .chain(["<6>[    1.600000] hsa_p2p: topology generation 6: 5 GPUs, 0 p2p links".into()])
            .collect::<Vec<_>>();
        assert!((from_log("x", 5, &log).unwrap().per_gpu_ms - 10.0).abs() < 1e-6);
    }

    #[test]
    fn one_gpu_counts_from_its_probe_to_the_publication() {
        let log = [
            "<6>[    1.000000] hsa_p2p 0000:02:00.0: GPU: VRAM 64 MiB",
            "<6>[    1.004000] hsa_p2p: topology generation 2: 1 GPUs, 0 p2p links",
        ]
        .map(String::from);
        assert!((from_log("x", 1, &log).unwrap().per_gpu_ms - 4.0).abs() < 1e-6);
    }

    #[test]
    fn a_log_without_the_last_publication_is_an_error() {
        let log = vec!["<6>[    1.000000] hsa_p2p 0000:02:00.0: GPU: VRAM 64 MiB".to_string()];
        assert!(from_log("x", 2, &log).is_err());
    }
}
