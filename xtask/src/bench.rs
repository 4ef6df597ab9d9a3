//! `cargo xtask bench`: boots the two-GPU same-switch machine (two vCPUs) and runs
//! `p2pctl bench --json` in it, with a host memcpy of the same size just before and just after
//! the guest run: the limit of a machine whose every BAR is host RAM. The guest's JSON and a
//! summary (every figure also as a fraction of the host memcpy, the targets met or not)
//! go to `target/bench/bench.json`.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hsa_p2p_runtime::bench_report::{
    memcpy_gbps, render, verified, BenchOptions, BenchReport, ConcurrentBench,
};
use serde::Serialize;

use crate::bring_up::{self, BringUp};
use crate::emulation::emulate;
use crate::util::{self, note, phase};
use crate::vm::guests::{shipped_spec, Boot, GuestTool, Guests};
use crate::vm::options::{load_module_step, GuestOptions};
use crate::vm::protocol::{self, print_document, read_document};

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

/// vCPUs per NUMA node of the benchmark machine: concurrent copies need CPUs to run on.
const VCPUS_PER_NODE: u64 = 2;

/// One of the targets: a figure of the run against its threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Target {
    name: &'static str,
    /// The figure (`None`: not measured in this run).
    value: Option<f64>,
    /// `at least` or `at most`.
    relation: &'static str,
    threshold: f64,
    /// `None` when the figure was not measured.
    met: Option<bool>,
}

impl Target {
    fn at_least(name: &'static str, value: Option<f64>, threshold: f64) -> Self {
        Self {
            name,
            value,
            relation: "at least",
            threshold,
            met: value.map(|value| value >= threshold),
        }
    }

    fn at_most(name: &'static str, value: Option<f64>, threshold: f64) -> Self {
        Self {
            name,
            value,
            relation: "at most",
            threshold,
            met: value.map(|value| value <= threshold),
        }
    }
}

/// A host memcpy of the benchmark's size, just before and just after the guest run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
struct HostMemcpy {
    before_gbps: f64,
    after_gbps: f64,
}

impl HostMemcpy {
    /// The limit of the run: the better of the two.
    fn gbps(&self) -> f64 {
        self.before_gbps.max(self.after_gbps)
    }
}

/// The headline numbers of a guest report: the first pair with a direct path.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Summary {
    from: u32,
    to: u32,
    size_bytes: u64,
    host_memcpy_gbps: f64,
    host_memcpy: HostMemcpy,
    direct_gbps: f64,
    direct_gbps_staggered: Option<f64>,
    staged_gbps: f64,
    direct_over_staged: f64,
    user_mmap_copy_gbps: f64,
    direct_over_user_mmap_copy: f64,
    direct_over_host_memcpy: f64,
    bidirectional_gbps: Option<f64>,
    bidirectional_over_unidirectional: Option<f64>,
    all_to_all_gbps: Option<f64>,
    all_to_all_gpus: usize,
    all_to_all_over_pair: Option<f64>,
    direct_latency_64_us: Option<f64>,
    direct_latency_4k_us: Option<f64>,
    /// Submit-to-completion of an asynchronous 4 KiB copy: the module has no asynchronous
    /// copies yet (null).
    async_latency_4k_us: Option<f64>,
    /// Bind + publish time per GPU (ms) by GPU count, from the kernel log of the module's
    /// probes (`crate::bring_up`).
    bring_up_ms_per_gpu: BTreeMap<u32, f64>,
    bring_up: Vec<BringUp>,
    guest_memcpy_gbps: f64,
    guest_cpus: usize,
    /// Every bandwidth of the summary as a fraction of `host_memcpy_gbps`.
    fraction_of_host_memcpy: BTreeMap<&'static str, f64>,
    verified: bool,
    targets: Vec<Target>,
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

fn summary(
    report: &BenchReport,
    host_memcpy: HostMemcpy,
    bring_up: Vec<BringUp>,
) -> Result<Summary> {
    let (pair, direct) = report
        .pairs
        .iter()
        .find_map(|pair| pair.direct_gbps.map(|direct| (pair, direct)))
        .context("no GPU pair with a direct path in the report")?;
    let ratio = |of: f64, over: f64| if over > 0.0 { of / over } else { 0.0 };
    let host = host_memcpy.gbps();
    let bidirectional = report.bidirectional.first();
    let all_gpus = |bench: &ConcurrentBench| {
        let mut nodes: Vec<u32> = bench.pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.len()
    };
    let all_to_all_gpus = report.all_to_all.as_ref().map_or(0, all_gpus);
    let mut fraction_of_host_memcpy = BTreeMap::from([
        ("direct", ratio(direct, host)),
        ("staged", ratio(pair.staged_gbps, host)),
        ("user_mmap_copy", ratio(pair.user_mmap_gbps, host)),
        ("guest_memcpy", ratio(report.memcpy_gbps, host)),
    ]);
    if let Some(bench) = bidirectional {
        fraction_of_host_memcpy.insert("bidirectional", ratio(bench.aggregate_gbps, host));
    }
    if let Some(bench) = &report.all_to_all {
        fraction_of_host_memcpy.insert("all_to_all", ratio(bench.aggregate_gbps, host));
    }
    let direct_over_staged = ratio(direct, pair.staged_gbps);
    let direct_over_host_memcpy = ratio(direct, host);
    let direct_over_user_mmap_copy = ratio(direct, pair.user_mmap_gbps);
    let bidirectional_over_unidirectional = bidirectional.map(|bench| bench.aggregate_over_single);
    let all_to_all_over_pair = report
        .all_to_all
        .as_ref()
        .map(|bench| bench.aggregate_over_single);
    let async_latency_4k_us = None;
    let bring_up_ms_per_gpu: BTreeMap<u32, f64> = bring_up
        .iter()
        .map(|machine| (machine.gpus, machine.per_gpu_ms))
        .collect();
    let bring_up_16_over_2 = match (bring_up_ms_per_gpu.get(&16), bring_up_ms_per_gpu.get(&2)) {
        (Some(&sixteen), Some(&two)) if two > 0.0 => Some(sixteen / two),
        _ => None,
    };
    let targets = vec![
        Target::at_least("direct_over_staged", Some(direct_over_staged), 1.8),
        Target::at_least(
            "direct_over_host_memcpy",
            Some(direct_over_host_memcpy),
            0.4,
        ),
        Target::at_least(
            "direct_over_user_mmap_copy",
            Some(direct_over_user_mmap_copy),
            1.5,
        ),
        Target::at_least(
            "bidirectional_over_unidirectional",
            bidirectional_over_unidirectional,
            1.6,
        ),
        Target::at_least(
            "all_to_all_over_pair (4 GPUs)",
            all_to_all_over_pair.filter(|_| all_to_all_gpus >= 4),
            1.6,
        ),
        Target::at_most("direct_latency_4k_us", pair.direct_latency_4k_us, 2.0),
        Target::at_most("async_latency_4k_us", async_latency_4k_us, 3.0),
        Target::at_most("bring_up_16_over_2_gpus", bring_up_16_over_2, 3.0),
    ];
    Ok(Summary {
        from: pair.from,
        to: pair.to,
        size_bytes: report.size_bytes,
        host_memcpy_gbps: host,
        host_memcpy,
        direct_gbps: direct,
        direct_gbps_staggered: pair.direct_gbps_staggered,
        staged_gbps: pair.staged_gbps,
        direct_over_staged,
        user_mmap_copy_gbps: pair.user_mmap_gbps,
        direct_over_user_mmap_copy,
        direct_over_host_memcpy,
        bidirectional_gbps: bidirectional.map(|bench| bench.aggregate_gbps),
        bidirectional_over_unidirectional,
        all_to_all_gbps: report.all_to_all.as_ref().map(|bench| bench.aggregate_gbps),
        all_to_all_gpus,
        all_to_all_over_pair,
        direct_latency_64_us: pair.direct_latency_64_us,
        direct_latency_4k_us: pair.direct_latency_4k_us,
        async_latency_4k_us,
        bring_up_ms_per_gpu,
        bring_up,
        guest_memcpy_gbps: report.memcpy_gbps,
        guest_cpus: report.cpus,
        fraction_of_host_memcpy,
        verified: verified(report),
        targets,
    })
}

/// What `cargo xtask bench` prints: the headline and every target.
fn render_summary(summary: &Summary) -> String {
    let or_dash = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let mut out = format!(
        "node {} -> node {}, {} bytes: direct {:.3} GB/s, staged {:.3} GB/s, user mmap copy {:.3} GB/s, \
         host memcpy {:.2} GB/s (before {:.2}, after {:.2}); bidirectional {} GB/s, all-to-all {} GB/s \
         over {} GPUs; latency direct 64 B {} us, 4 KiB {} us\n",
        summary.from,
        summary.to,
        summary.size_bytes,
        summary.direct_gbps,
        summary.staged_gbps,
        summary.user_mmap_copy_gbps,
        summary.host_memcpy_gbps,
        summary.host_memcpy.before_gbps,
        summary.host_memcpy.after_gbps,
        or_dash(summary.bidirectional_gbps),
        or_dash(summary.all_to_all_gbps),
        summary.all_to_all_gpus,
        or_dash(summary.direct_latency_64_us),
        or_dash(summary.direct_latency_4k_us),
    );
    for machine in &summary.bring_up {
        out.push_str(&format!(
            "  bring-up {} ({} GPUs): {:.1} ms per GPU (bind + publish)\n",
            machine.spec, machine.gpus, machine.per_gpu_ms
        ));
    }
    for (name, fraction) in &summary.fraction_of_host_memcpy {
        out.push_str(&format!(
            "  {name}: {:.1}% of host memcpy\n",
            fraction * 100.0
        ));
    }
    for target in &summary.targets {
        let verdict = match target.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        out.push_str(&format!(
            "  target {} {} {}: {} ({verdict})\n",
            target.name,
            target.relation,
            target.threshold,
            or_dash(target.value)
        ));
    }
    out
}

/// Runs the benchmark.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let guests = Guests::prepare(&args.guest, DEFAULT_TIMEOUT, &[GuestTool::P2pctl])?;
    let spec = shipped_spec(BENCH_SPEC)?;
    let machine = emulate(&spec, &format!("hsa-p2p-bench-{}", std::process::id()))?
        .with_vcpus_per_node(VCPUS_PER_NODE);
    let boot = Boot {
        name: "bench".into(),
        machine: &machine,
        script: script(&args.options),
        keep_shm_files: false,
    };
    phase(format!(
        "{}: benchmark {} copies between {} GPUs (QEMU TCG)",
        spec.name,
        args.options.size,
        machine.gpus.len()
    ));
    let host_memcpy = |iterations| memcpy_gbps(args.options.size.0, iterations);
    let before_gbps = host_memcpy(args.options.iterations);
    let run = guests.boot(boot)?;
    let host_memcpy = HostMemcpy {
        before_gbps,
        after_gbps: host_memcpy(args.options.iterations),
    };
    run.check_steps()?;
    let report: BenchReport = read_document(&run.console_log, REPORT).map_err(|e| anyhow!(e))?;
    let bring_up = bring_up::measure(&guests.without_tools())?;
    let headline = summary(&report, host_memcpy, bring_up)?;
    let document = Document {
        schema: "hsa-p2p/xtask-bench/v2",
        spec: &spec.name,
        accelerator: "tcg",
        summary: &headline,
        guest: &report,
    };
    let dir = util::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let path = dir.join("bench.json");
    fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")?;
    print!("{}", render(&report));
    print!("{}", render_summary(&headline));
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

    fn pair(from: u32, direct_gbps: Option<f64>) -> PairBench {
        PairBench {
            from,
            to: 2,
            direct_gbps,
            direct_gbps_staggered: None,
            staged_gbps: 1.0,
            direct_over_staged: None,
            user_mmap_gbps: 0.5,
            direct_over_user_mmap: None,
            direct_latency_64_us: Some(1.0),
            direct_latency_4k_us: Some(3.0),
            staged_latency_64_us: 5.0,
            staged_latency_4k_us: 20.0,
            verified: true,
        }
    }

    fn report() -> BenchReport {
        BenchReport {
            schema: BENCH_SCHEMA.into(),
            size_bytes: 16,
            iterations: 1,
            latency_iterations: 1,
            cpus: 2,
            memcpy_gbps: 4.0,
            pairs: vec![pair(3, None), pair(1, Some(2.0))],
            bidirectional: vec![ConcurrentBench {
                pairs: vec![(1, 2), (2, 1)],
                size_bytes: 16,
                aggregate_gbps: 3.4,
                single_pair_gbps: 2.0,
                aggregate_over_single: 1.7,
                verified: true,
            }],
            all_to_all: None,
            size_sweep: None,
            cpu_gpu: Vec::new(),
        }
    }

    #[test]
    fn summary_takes_the_direct_pair_and_scales_by_the_host_memcpy() {
        let host = HostMemcpy {
            before_gbps: 4.0,
            after_gbps: 5.0,
        };
        let bring_up = |gpus, per_gpu_ms| BringUp {
            spec: format!("{gpus}"),
            gpus,
            first_probe_s: 1.0,
            last_probe_s: 1.5,
            all_published_s: 2.0,
            publications: gpus,
            per_gpu_ms,
        };
        let headline =
            summary(&report(), host, vec![bring_up(2, 10.0), bring_up(16, 40.0)]).unwrap();
        assert_eq!(headline.bring_up_ms_per_gpu[&16], 40.0);
        assert_eq!((headline.from, headline.direct_over_staged), (1, 2.0));
        assert_eq!(headline.host_memcpy_gbps, 5.0);
        assert_eq!(headline.direct_over_host_memcpy, 0.4);
        assert_eq!(headline.direct_over_user_mmap_copy, 4.0);
        assert_eq!(headline.fraction_of_host_memcpy["staged"], 0.2);
        assert_eq!(headline.bidirectional_over_unidirectional, Some(1.7));
        let verdicts: Vec<(&str, Option<bool>)> = headline
            .targets
            .iter()
            .map(|target| (target.name, target.met))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("direct_over_staged", Some(true)),
                ("direct_over_host_memcpy", Some(true)),
                ("direct_over_user_mmap_copy", Some(true)),
                ("bidirectional_over_unidirectional", Some(true)),
                ("all_to_all_over_pair (4 GPUs)", None),
                ("direct_latency_4k_us", Some(false)),
                ("async_latency_4k_us", None),
                ("bring_up_16_over_2_gpus", Some(false)),
            ]
        );
    }

    #[test]
    fn the_guest_report_survives_the_console() {
        let report = report();
        let console =
            protocol::printed_document(REPORT, &serde_json::to_string_pretty(&report).unwrap());
        assert_eq!(
            read_document::<BenchReport>(&console, REPORT).unwrap(),
            report
        );
    }
}
