//! `cargo xtask stress`: the stress campaign in an emulated machine.
//!
//! Boots a spec's machine (default: the three-GPU mixed machine, which has both a direct and
//! staged pairs) with two vCPUs per NUMA node, loads the module and runs `hwtests stress` in the
//! guest — the campaign and its oracles live there — ending with `rmmod` and a kmemleak scan.
//! `--debug` boots the debug kernel flavour (KASAN, lockdep, failslab, kmemleak, ...).
//! The host reads the guest's summary back, adds what only it sees (checker reports on the
//! console), writes `target/stress/summary.json` and fails naming the seed to replay.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hsa_p2p_hwtests::stress::{StressOptions, Summary};
use hsa_p2p_runtime::spec::Spec;

use crate::emulation::emulate;
use crate::util::{self, note, phase};
use crate::vm::guests::{shipped_spec, Boot, GuestTool, Guests};
use crate::vm::options::{load_module_step, GuestOptions};
use crate::vm::protocol::{self, print_document, read_document};

/// The spec booted when none is given: three GPUs, a direct pair and staged pairs.
pub const DEFAULT_SPEC: &str = "mixed-three-gpus.toml";

/// vCPUs per NUMA node: the campaign's threads must really run at the same time.
const VCPUS_PER_NODE: u64 = 2;

/// The section the guest's summary travels in.
const SUMMARY: &str = "stress-summary";

/// Timeout when none is given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(900);

/// Options of `cargo xtask stress`.
#[derive(clap::Args, Debug)]
pub struct StressArgs {
    /// Spec to boot (default: topologies/mixed-three-gpus.toml).
    #[arg(long, value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub options: StressOptions,
    #[command(flatten)]
    pub guest: GuestOptions,
}

fn script(options: &StressOptions) -> String {
    protocol::script([
        load_module_step(),
        format!(
            "hwtests stress {} --unload hsa_p2p --summary /tmp/stress.json || fail stress",
            options.to_args()
        ),
        print_document(SUMMARY, "/tmp/stress.json"),
    ])
}

/// Runs the campaign.
pub fn stress(args: &StressArgs) -> Result<()> {
    let guests = Guests::prepare(&args.guest, DEFAULT_TIMEOUT, &[GuestTool::Hwtests])?;
    let settings = &guests.settings;
    let spec = match &args.spec {
        Some(path) => Spec::load(path)?,
        None => shipped_spec(DEFAULT_SPEC)?,
    };
    let machine = emulate(&spec, &format!("hsa-p2p-stress-{}", std::process::id()))?
        .with_vcpus_per_node(VCPUS_PER_NODE);
    phase(format!(
        "{}: stress campaign on the {} kernel, seed {}, {} operations, at least {} unbinds \
         (QEMU TCG, {} vCPUs per node)",
        spec.name,
        settings.flavour.name(),
        args.options.seed,
        args.options.ops,
        args.options.min_unbinds,
        VCPUS_PER_NODE
    ));
    let run = guests.boot(Boot {
        name: "stress".into(),
        machine: &machine,
        script: script(&args.options),
        keep_shm_files: false,
    })?;
    let mut summary: Summary = read_document(&run.console_log, SUMMARY).map_err(|error| {
        anyhow!(
            "the guest printed no stress summary ({error}); {}; failed steps: {}",
            run.summary(),
            protocol::failures(&run.console_log).join("; ")
        )
    })?;
    // What only the host sees: the kernel checkers' reports on the console.
    summary.kernel = settings.flavour.name().into();
    summary.splats = run.splats.len() as u64;
    for splat in &run.splats {
        summary
            .failures
            .push(format!("splat: {}", splat.headline()));
    }
    let dir = util::target_dir().join("stress");
    fs::create_dir_all(&dir)?;
    let path = dir.join("summary.json");
    fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    print!("{summary}");
    note(format!("summary: {}", path.display()));
    for splat in &run.splats {
        print!("{splat}");
    }
    if !summary.passed() || !run.success() {
        bail!(
            "the stress campaign failed ({}); replay with `cargo xtask stress --seed {}` and the \
             same options",
            run.summary(),
            summary.seed
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_unloads_the_module_and_prints_the_summary() {
        let script = script(&StressOptions::default());
        let stress = script.find("hwtests stress --seed 1 ").expect(&script);
        assert!(script[stress..].contains("--unload hsa_p2p"), "{script}");
        assert!(script.find("insmod").unwrap() < stress, "{script}");
        assert!(script.contains(SUMMARY), "{script}");
    }
}
