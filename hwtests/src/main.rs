//! `hwtests`: runs the hardware-in-the-loop tests against `/` (or a fixture directory), prints
//! KTAP, optionally writes KTAP, JUnit XML and JSON, and exits non-zero when a test failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hsa_p2p_hwtests::context::DEFAULT_PAIR_COPY_BYTES;
use hsa_p2p_hwtests::report::write_reports;
use hsa_p2p_hwtests::rocm::{recording, DEFAULT_BANDWIDTH_FRACTION};
use hsa_p2p_hwtests::stress::{self, StressOptions};
use hsa_p2p_hwtests::{device, Context, Filter, ModuleState};

#[derive(Parser, Debug)]
#[command(
    name = "hwtests",
    about = "hsa-p2p hardware-in-the-loop tests (KTAP, JUnit, JSON)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    tests: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The stress campaign: worker processes and threads storm /dev/hsa_p2p with valid and
    /// hostile requests while GPUs are unbound and rebound, topology readers run and slab
    /// allocations fail; exits non-zero when an oracle failed.
    Stress(StressArgs),
}

/// Options of `hwtests stress`.
#[derive(clap::Args, Debug)]
struct StressArgs {
    #[command(flatten)]
    options: StressOptions,
    /// Unload this module at the end and check kmemleak.
    #[arg(long, value_name = "MODULE")]
    unload: Option<String>,
    /// Write the summary (JSON, hsa-p2p/stress/v1) to this file.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct Args {
    /// Root holding `sys/` and `proc/`: `/` on the machine under test, or a fixture directory.
    #[arg(long, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// Run only tests whose `suite.name` matches (substring, or glob with `*`); repeatable.
    #[arg(long, value_name = "PATTERN")]
    only: Vec<String>,
    /// Write results.ktap, junit.xml and report.json into this directory.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// The caller loaded the hsa_p2p module: its topology must exist.
    #[arg(long, conflicts_with = "module_unavailable")]
    module_loaded: bool,
    /// The hsa_p2p module could not be loaded: skip its tests with this reason.
    #[arg(long, value_name = "REASON")]
    module_unavailable: Option<String>,
    /// Bytes each GPU pair copies in `device.copies_between_every_ordered_pair`.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_PAIR_COPY_BYTES)]
    pair_copy_bytes: u64,
    /// The serial line to the emulated machine's host, which removes and adds GPUs for the
    /// `hotplug` suite (e.g. /dev/ttyS1; its cases are skipped without it).
    #[arg(long, value_name = "DEVICE")]
    host_channel: Option<PathBuf>,
    /// Fraction of a link's max_bandwidth a peer copy must reach in the `rocm` suite.
    #[arg(long, value_name = "FRACTION", default_value_t = DEFAULT_BANDWIDTH_FRACTION)]
    bandwidth_fraction: f64,
    /// Save the ROCm tools' outputs and this machine's sysfs/PCI facts into DIR (and DIR.tar,
    /// to attach to a bug report).
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    record: Option<PathBuf>,
    /// Re-run the checks offline from a recording made with --record.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["root", "module_loaded"])]
    replay: Option<PathBuf>,
    /// List the tests and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    // A child started by a device case runs its probe and exits here.
    device::probe::serve();
    let cli = Cli::parse();
    if let Some(Command::Stress(args)) = cli.command {
        return stress_campaign(args);
    }
    let args = cli.tests;
    let filter = Filter::new(args.only.clone());
    if args.list {
        print!("{}", hsa_p2p_hwtests::listing(&filter));
        return ExitCode::SUCCESS;
    }
    let module = match (args.module_loaded, args.module_unavailable) {
        (true, _) => ModuleState::Loaded,
        (false, Some(reason)) => ModuleState::Unavailable(reason),
        (false, None) => ModuleState::Unknown,
    };
    if !(args.bandwidth_fraction > 0.0 && args.bandwidth_fraction <= 1.0) {
        eprintln!("error: --bandwidth-fraction must be in (0, 1]");
        return ExitCode::FAILURE;
    }
    let mut context = match &args.replay {
        Some(dir) => Context::replay(dir),
        None => Context::new(&args.root, module),
    };
    context.pair_copy_bytes = args.pair_copy_bytes;
    context.host_channel = args.host_channel;
    context.bandwidth_fraction = args.bandwidth_fraction;
    let mut run = hsa_p2p_hwtests::run("hwtests", &context, &filter);
    run.environment
        .push(("root".into(), context.root().display().to_string()));
    if let Some(dir) = &args.replay {
        run.environment
            .push(("replay".into(), dir.display().to_string()));
    }
    if let Ok(inventory) = context.inventory() {
        run.environment.extend(inventory.describe());
    }
    print!("{}", hsa_p2p_hwtests::report::ktap(&run.cases));
    if let Some(dir) = &args.report {
        match write_reports(&run, dir) {
            Ok(files) => eprintln!(
                "reports: {}, {}, {}",
                files.ktap.display(),
                files.junit.display(),
                files.json.display()
            ),
            Err(error) => {
                eprintln!("error: cannot write reports to {}: {error}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(dir) = &args.record {
        match recording::record(&context, dir) {
            Ok(tarball) => eprintln!("recording: {} ({})", dir.display(), tarball.display()),
            Err(error) => {
                eprintln!("error: cannot record into {}: {error}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    println!("hwtests: {}", run.summary());
    if run.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn stress_campaign(args: StressArgs) -> ExitCode {
    let mut config = args.options.config();
    config.unload = args.unload;
    eprintln!(
        "stress: seed {}, {} operations over {} processes x {} threads, at least {} unbinds",
        config.seed, config.ops, config.processes, config.threads, config.min_unbinds
    );
    let summary = match stress::run_campaign(&config) {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("error: stress campaign: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{summary}");
    if let Some(path) = &args.summary {
        let json = serde_json::to_string_pretty(&summary).expect("plain data serialises");
        if let Err(error) = std::fs::write(path, json + "\n") {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
