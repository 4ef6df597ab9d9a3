//! `cargo xtask bench`: boots the two-GPU same-switch machine and measures, in one guest run,
//! direct and staged copy bandwidth between the GPUs, their ratio, a memcpy baseline of the
//! same size in the same guest, and 4 KiB copy latency (`p2pctl bench --json` in the guest).
//! The guest's JSON and a summary go to `target/bench/`.

use std::fs;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hsa_p2p_runtime::bench_report::{BenchOptions, BenchReport};
use hsa_p2p_runtime::spec::Spec;
use serde::Serialize;

use crate::emulation::emulate;
use crate::kernel::KernelEnv;
use crate::util::{self, note, phase};
use crate::vm::options::{load_module_step, GuestOptions};
use crate::vm::protocol::{self, print_document, read_document};
use crate::vm::{self, GuestFile};

/// The spec the benchmark boots.
pub const BENCH_SPEC: &str = "same-switch.toml";

/// The section the guest's report travels in.
const REPORT: &str = "bench-report";

/// Timeout when none is given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub options: BenchOptions,
    #[command(flatten)]
    pub guest: GuestOptions,
}

fn script(options: &BenchOptions) -> String {
    protocol::script([
        load_module_step(),
        format!(
            "p2pctl bench --json {} > /tmp/bench.json || fail p2pctl bench",
            options.to_args()
        ),
        print_document(REPORT, "/tmp/bench.json"),
        "rmmod hsa_p2p || fail rmmod".into(),
    ])
}

/// Whether the headline numbers meet the targets.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Targets {
    direct_at_least_1_8x_staged: bool,
    direct_at_least_70_percent_of_memcpy: bool,
}

/// The headline numbers of a guest report: the pair with a direct path.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Summary {
    from: u32,
    to: u32,
    size_bytes: u64,
    direct_gbps: f64,
    direct_gbps_aliased: Option<f64>,
    staged_gbps: f64,
    direct_over_staged: f64,
    memcpy_gbps: f64,
    direct_over_memcpy: f64,
    direct_latency_4k_us: Option<f64>,
    staged_latency_4k_us: f64,
    verified: bool,
    targets: Targets,
}

/// `target/bench/bench.json`.
#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    spec: &'a str,
    accelerator: &'static str,
    summary: &'a Summary,
    guest: &'a BenchReport,
}

fn summary(report: &BenchReport) -> Result<Summary> {
    let (pair, direct) = report
        .pairs
        .iter()
        .find_map(|pair| pair.direct_gbps.map(|direct| (pair, direct)))
        .context("no GPU pair with a direct path in the report")?;
    let ratio = |of: f64| if of > 0.0 { direct / of } else { 0.0 };
    let (over_staged, over_memcpy) = (ratio(pair.staged_gbps), ratio(report.memcpy_gbps));
    Ok(Summary {
        from: pair.from,
        to: pair.to,
        size_bytes: report.size_bytes,
        direct_gbps: direct,
        direct_gbps_aliased: pair.direct_gbps_aliased,
        staged_gbps: pair.staged_gbps,
        direct_over_staged: over_staged,
        memcpy_gbps: report.memcpy_gbps,
        direct_over_memcpy: over_memcpy,
        direct_latency_4k_us: pair.direct_latency_us,
        staged_latency_4k_us: pair.staged_latency_us,
        verified: pair.verified,
        targets: Targets {
            direct_at_least_1_8x_staged: over_staged >= 1.8,
            direct_at_least_70_percent_of_memcpy: over_memcpy >= 0.7,
        },
    })
}

/// Runs the benchmark.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let settings = args.guest.settings(DEFAULT_TIMEOUT)?;
    let env = KernelEnv::load_flavour(settings.flavour)?;
    let p2pctl = crate::guest_tools::static_p2pctl()?;
    let spec = Spec::load(&util::workspace_root().join("topologies").join(BENCH_SPEC))?;
    let machine = emulate(&spec, &format!("hsa-p2p-bench-{}", std::process::id()))?;
    let mut config = machine.vm_config("bench", &env.bzimage);
    settings.apply(
        &mut config,
        script(&args.options),
        vec![GuestFile::host("/bin/p2pctl", &p2pctl)],
    );
    phase(format!(
        "{}: benchmark {} copies between {} GPUs (QEMU TCG)",
        spec.name,
        args.options.size,
        machine.gpus.len()
    ));
    let run = vm::run(&config)?;
    run.check()
        .with_context(|| protocol::failures(&run.console_log).join("; "))?;
    let report: BenchReport = read_document(&run.console_log, REPORT).map_err(|e| anyhow!(e))?;
    let headline = summary(&report)?;
    let document = Document {
        schema: "hsa-p2p/xtask-bench/v1",
        spec: &spec.name,
        accelerator: "tcg",
        summary: &headline,
        guest: &report,
    };
    let dir = util::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let path = dir.join("bench.json");
    fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")?;
    let or_nan = |value: Option<f64>| value.unwrap_or(f64::NAN);
    println!(
        "direct {:.3} GB/s (aliased offsets: {:.3}), staged {:.3} GB/s, direct/staged {:.2}x, memcpy {:.3} GB/s (direct = {:.0}% of memcpy), 4 KiB latency direct {:.1} us / staged {:.1} us",
        headline.direct_gbps,
        or_nan(headline.direct_gbps_aliased),
        headline.staged_gbps,
        headline.direct_over_staged,
        headline.memcpy_gbps,
        headline.direct_over_memcpy * 100.0,
        or_nan(headline.direct_latency_4k_us),
        headline.staged_latency_4k_us,
    );
    note(format!("JSON: {}", path.display()));
    if !headline.verified {
        bail!("a benchmark copy did not verify");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hsa_p2p_runtime::bench_report::{PairBench, BENCH_SCHEMA};

    use super::*;

    #[test]
    fn summary_takes_the_direct_pair() {
        let pair = |from, direct_gbps| PairBench {
            from,
            to: 2,
            direct_gbps,
            direct_gbps_aliased: None,
            staged_gbps: 1.0,
            direct_over_staged: None,
            direct_latency_us: Some(10.0),
            staged_latency_us: 20.0,
            verified: true,
        };
        let report = BenchReport {
            schema: BENCH_SCHEMA.into(),
            size_bytes: 16,
            iterations: 1,
            latency_iterations: 1,
            memcpy_gbps: 4.0,
            pairs: vec![pair(3, None), pair(1, Some(2.0))],
        };
        let headline = summary(&report).unwrap();
        assert_eq!((headline.from, headline.direct_over_staged), (1, 2.0));
        assert_eq!(headline.direct_over_memcpy, 0.5);
        assert_eq!(
            headline.targets,
            Targets {
                direct_at_least_1_8x_staged: true,
                direct_at_least_70_percent_of_memcpy: false,
            }
        );
        let console =
            protocol::printed_document(REPORT, &serde_json::to_string_pretty(&report).unwrap());
        assert_eq!(
            read_document::<BenchReport>(&console, REPORT).unwrap(),
            report
        );
    }
}
