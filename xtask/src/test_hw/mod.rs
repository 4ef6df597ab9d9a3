//! `cargo xtask test-hw`: the hardware-in-the-loop run on the machine itself.
//!
//! Preflight (Rust-enabled kernel, modules, root; then the module's vermagic and rustc against
//! the running kernel; IOMMU, ACS, BARs and `pcie_p2p` for the record), build and `insmod` the
//! module when nothing blocks, run the `hwtests` cases (amdkfd's topology, the module's
//! topology, transfers), `rmmod`, and write KTAP, JUnit and JSON. When the module cannot be
//! loaded its tests are skipped with the preflight's reason; on a machine without GPUs every
//! test is skipped with a reason and the command succeeds.

mod module;
mod preflight;

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use hsa_p2p_hwtests::machine_facts::Inventory;
use hsa_p2p_hwtests::rocm::{recording, tools, DEFAULT_BANDWIDTH_FRACTION};
use hsa_p2p_hwtests::{Context, Filter, ModuleState};

use crate::util::{self, note, phase};
use preflight::{Check, KernelConfig, Status};

/// Options of `cargo xtask test-hw`.
#[derive(clap::Args, Debug)]
pub struct TestHwArgs {
    /// Kernel build tree to build the module against (default: /lib/modules/$(uname -r)/build).
    #[arg(long, value_name = "DIR")]
    pub kdir: Option<PathBuf>,
    /// Load this module instead of building one.
    #[arg(long, value_name = "KO", conflicts_with = "kdir")]
    pub module: Option<PathBuf>,
    /// Run only tests whose `suite.name` matches (substring, or glob with `*`); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub only: Vec<String>,
    /// Directory for results.ktap, junit.xml and report.json (default: target/test-hw).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Do not build or load the module (test amdkfd's topology and an already loaded module).
    #[arg(long)]
    pub no_load: bool,
    /// List the tests (`-` marks those --only leaves out) and exit.
    #[arg(long)]
    pub list: bool,
    /// Fraction of a link's max_bandwidth a peer copy must reach in the `rocm` suite.
    #[arg(long, value_name = "FRACTION", default_value_t = DEFAULT_BANDWIDTH_FRACTION)]
    pub bandwidth_fraction: f64,
    /// Save the ROCm tools' outputs and this machine's sysfs/PCI facts into DIR and DIR.tar
    /// (to attach to a bug report; `hwtests --replay DIR` re-runs the checks offline).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
}

fn running_release() -> Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .context("cannot read the kernel release")?
        .trim()
        .to_string())
}

/// Runs preflight, module build and load; returns the checks and how the module stands.
fn prepare(args: &TestHwArgs, release: &str) -> (Vec<Check>, ModuleState, Option<module::Loaded>) {
    let config = KernelConfig::read(release);
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| preflight::effective_uid(&status));
    let mut checks = preflight::kernel_checks(release, config.as_ref(), uid);
    if args.no_load {
        let state = if module::is_loaded() {
            ModuleState::Loaded
        } else {
            ModuleState::Unavailable("--no-load: the module was not loaded".into())
        };
        return (checks, state, None);
    }
    if let Some(reason) = preflight::blocker(&checks) {
        return (checks, ModuleState::Unavailable(reason), None);
    }
    let module = match &args.module {
        Some(module) => Ok(module.clone()),
        None => module::kernel_tree(args.kdir.as_deref(), release).and_then(module::build),
    };
    let module = match module {
        Ok(module) => module,
        Err(error) => {
            let reason = format!("module not built: {error:#}");
            checks.push(Check::new("module", Status::Blocked, reason.clone()));
            return (checks, ModuleState::Unavailable(reason), None);
        }
    };
    match std::fs::read(&module) {
        Ok(bytes) => checks.extend(preflight::module_checks(
            &module,
            &bytes,
            release,
            config.as_ref(),
        )),
        Err(error) => checks.push(Check::new(
            "module",
            Status::Blocked,
            format!("cannot read {}: {error}", module.display()),
        )),
    }
    if let Some(reason) = preflight::blocker(&checks) {
        return (checks, ModuleState::Unavailable(reason), None);
    }
    match module::load(&module) {
        Ok(loaded) => (checks, ModuleState::Loaded, Some(loaded)),
        Err(error) => {
            let reason = format!("{error:#}");
            checks.push(Check::new("insmod", Status::Blocked, reason.clone()));
            (checks, ModuleState::Unavailable(reason), None)
        }
    }
}

/// Which ROCm tools the `rocm` suite will drive, for the record.
fn rocm_check(context: &Context) -> Check {
    let found = context.rocm_tools().unwrap_or_default();
    let detail = if found.is_empty() {
        format!(
            "no ROCm user space ({} not in PATH or /opt/rocm*/bin): the rocm suite skips",
            tools::Tool::ALL.map(tools::Tool::name).join(", ")
        )
    } else {
        found
            .iter()
            .map(|found| found.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Check::new("rocm", Status::Info, detail)
}

/// `cargo xtask test-hw`.
pub fn test_hw(args: &TestHwArgs) -> Result<()> {
    if args.list {
        print!(
            "{}",
            hsa_p2p_hwtests::listing(&Filter::new(args.only.clone()))
        );
        return Ok(());
    }
    if !(args.bandwidth_fraction > 0.0 && args.bandwidth_fraction <= 1.0) {
        bail!("--bandwidth-fraction must be in (0, 1]");
    }
    let release = running_release()?;
    phase(format!("test-hw: preflight on {release}"));
    let (mut checks, module_state, loaded) = prepare(args, &release);
    let insmod_failed = checks.iter().any(|check| check.name == "insmod");
    match Inventory::collect(std::path::Path::new("/")) {
        Ok(inventory) => checks.extend(preflight::machine_checks(&inventory)),
        Err(error) => checks.push(Check::new("pci", Status::Info, error.to_string())),
    }
    let mut context = Context::new("/", module_state);
    context.bandwidth_fraction = args.bandwidth_fraction;
    checks.push(rocm_check(&context));
    for check in &checks {
        note(check.to_string());
    }

    phase("test-hw: run the tests");
    let mut run = hsa_p2p_hwtests::run("test-hw", &context, &Filter::new(args.only.clone()));
    let unloaded = loaded.as_ref().map(module::unload);
    run.environment
        .push(("kernel_release".into(), release.clone()));
    run.environment.extend(
        checks
            .iter()
            .map(|check| (format!("preflight.{}", check.name), check.detail.clone())),
    );

    if let Some(record) = &args.record {
        let tarball = recording::record(&context, record)
            .map_err(|error| anyhow::anyhow!("cannot record into {}: {error}", record.display()))?;
        note(format!(
            "recording: {} ({})",
            record.display(),
            tarball.display()
        ));
    }
    let dir = args
        .report
        .clone()
        .unwrap_or_else(|| util::target_dir().join("test-hw"));
    let summary = crate::run_report::publish(&run, &dir)?;
    if let Some(Err(error)) = unloaded {
        bail!("{error:#}");
    }
    if insmod_failed {
        // The preflight passed, so a refusal to load is a defect, not a property of the machine.
        bail!("the module passed preflight but could not be loaded (see `insmod` above)");
    }
    if run.failed() {
        bail!("test-hw failed: {summary}");
    }
    Ok(())
}
