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
    memcpy_gbps, render, verified, BenchOptions, BenchReport, BenchView, ConcurrentBench,
};
use serde::Serialize;

use crate::bring_up::{self, BringUp, Rider};
use crate::emulation::emulate;
use crate::util::{self, note, phase};
use crate::vm::guests::{shipped_spec, Boot, GuestTool, Guests};
use crate::vm::options::{load_module_step, GuestOptions};
use crate::vm::protocol::{self, print_document, read_document};

/// The spec the benchmark boots.
pub const BENCH_SPEC: &str = "same-switch.toml";

/// The section the guest's report travels in.
const REPORT: &str = "bench-report";

/// GPUs of the machine the all-to-all target speaks of ("all-to-all aggregate over 4 GPUs").
const ALL_TO_ALL_GPUS: u32 = 4;

/// The section the all-to-all report of that machine travels in.
const ALL_TO_ALL_REPORT: &str = "bench-all-to-all";

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

/// The all-to-all view alone, on the bring-up machine of [`ALL_TO_ALL_GPUS`] GPUs (two-socket:
/// every pair has a p2p link; one vCPU per socket, two in all like the benchmark machine).
fn all_to_all_rider(options: &BenchOptions) -> Rider {
    let options = BenchOptions {
        views: vec![BenchView::AllToAll],
        ..options.clone()
    };
    Rider {
        gpus: ALL_TO_ALL_GPUS,
        steps: vec![
            format!(
                "p2pctl bench --json {} > /tmp/all-to-all.json || fail p2pctl bench all-to-all",
                options.to_args()
            ),
            print_document(ALL_TO_ALL_REPORT, "/tmp/all-to-all.json"),
        ],
    }
}

/// The all-to-all of a machine with more GPUs than the benchmark's.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
struct AllToAllRun {
    /// The machine's spec name.
    spec: String,
    /// Its `p2pctl bench --views all-to-all` report.
    report: BenchReport,
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
    /// All-to-all on the machine of [`ALL_TO_ALL_GPUS`] GPUs (`all_to_all_spec`), or on the
    /// benchmark's own machine when that one did not run.
    all_to_all_gbps: Option<f64>,
    all_to_all_spec: String,
    all_to_all_gpus: usize,
    all_to_all_over_pair: Option<f64>,
    direct_latency_64_us: Option<f64>,
    direct_latency_4k_us: Option<f64>,
    /// Submit-to-completion of an asynchronous 4 KiB direct copy (until its eventfd is
    /// signalled), microseconds.
    async_latency_4k_us: Option<f64>,
    /// The same for 64 bytes.
    async_latency_64_us: Option<f64>,
    /// Several asynchronous copies in flight against one synchronous copy of the same bytes.
    async_in_flight_over_sync: Option<f64>,
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
    /// The all-to-all view of the machine of [`ALL_TO_ALL_GPUS`] GPUs.
    all_to_all: Option<&'a AllToAllRun>,
}

fn summary(
    report: &BenchReport,
    spec: &str,
    host_memcpy: HostMemcpy,
    bring_up: Vec<BringUp>,
    all_to_all_run: Option<&AllToAllRun>,
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
    let (all_to_all_spec, all_to_all) = match all_to_all_run {
        Some(run) => (run.spec.clone(), run.report.all_to_all.as_ref()),
        None => (spec.to_owned(), report.all_to_all.as_ref()),
    };
    let all_to_all_gpus = all_to_all.map_or(0, all_gpus);
    let mut fraction_of_host_memcpy = BTreeMap::from([
        ("direct", ratio(direct, host)),
        ("staged", ratio(pair.staged_gbps, host)),
        ("user_mmap_copy", ratio(pair.user_mmap_gbps, host)),
        ("guest_memcpy", ratio(report.memcpy_gbps, host)),
    ]);
    if let Some(bench) = bidirectional {
        fraction_of_host_memcpy.insert("bidirectional", ratio(bench.aggregate_gbps, host));
    }
    if let Some(bench) = all_to_all {
        fraction_of_host_memcpy.insert("all_to_all", ratio(bench.aggregate_gbps, host));
    }
    let direct_over_staged = ratio(direct, pair.staged_gbps);
    let direct_over_host_memcpy = ratio(direct, host);
    let direct_over_user_mmap_copy = ratio(direct, pair.user_mmap_gbps);
    let bidirectional_over_unidirectional = bidirectional.map(|bench| bench.aggregate_over_single);
    let all_to_all_over_pair = all_to_all.map(|bench| bench.aggregate_over_single);
    let asynchronous = report.async_copies.as_ref();
    let async_latency_4k_us = asynchronous.map(|bench| bench.latency_4k_us);
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
            all_to_all_over_pair.filter(|_| all_to_all_gpus >= ALL_TO_ALL_GPUS as usize),
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
        all_to_all_gbps: all_to_all.map(|bench| bench.aggregate_gbps),
        all_to_all_spec,
        all_to_all_gpus,
        all_to_all_over_pair,
        direct_latency_64_us: pair.direct_latency_64_us,
        direct_latency_4k_us: pair.direct_latency_4k_us,
        async_latency_4k_us,
        async_latency_64_us: asynchronous.map(|bench| bench.latency_64_us),
        async_in_flight_over_sync: asynchronous.map(|bench| bench.in_flight_over_sync),
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
         over {} GPUs ({}: {}x one pair); latency direct 64 B {} us, 4 KiB {} us; asynchronous \
         submit-to-completion 64 B {} us, 4 KiB {} us\n",
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
        summary.all_to_all_spec,
        or_dash(summary.all_to_all_over_pair),
        or_dash(summary.direct_latency_64_us),
        or_dash(summary.direct_latency_4k_us),
        or_dash(summary.async_latency_64_us),
        or_dash(summary.async_latency_4k_us),
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
    let rider = all_to_all_rider(&args.options);
    let measured = bring_up::measure(&guests, Some(rider))?;
    let all_to_all = match &measured.rider {
        Some((spec, console_log)) => Some(AllToAllRun {
            spec: spec.clone(),
            report: read_document(console_log, ALL_TO_ALL_REPORT).map_err(|e| anyhow!(e))?,
        }),
        None => None,
    };
    let headline = summary(
        &report,
        &spec.name,
        host_memcpy,
        measured.bring_up,
        all_to_all.as_ref(),
    )?;
    let document = Document {
        schema: "hsa-p2p/xtask-bench/v2",
        spec: &spec.name,
        accelerator: "tcg",
        summary: &headline,
        guest: &report,
        all_to_all: all_to_all.as_ref(),
    };
    let dir = util::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let path = dir.join("bench.json");
    fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")?;
    print!("{}", render(&report));
    if let Some(run) = &all_to_all {
        print!("\n{}:\n{}", run.spec, render(&run.report));
    }
    print!("{}", render_summary(&headline));
    note(format!("JSON: {}", path.display()));
    if !headline.verified || all_to_all.is_some_and(|run| !verified(&run.report)) {
        bail!("a benchmark copy did not verify");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hsa_p2p_runtime::bench_report::{AsyncBench, PairBench, BENCH_SCHEMA};

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
            async_copies: Some(AsyncBench {
                from: 1,
                to: 2,
                completion: "eventfd".into(),
                latency_64_us: 2.5,
                latency_4k_us: 3.5,
                in_flight: 4,
                size_bytes: 16,
                in_flight_gbps: 2.0,
                sync_gbps: 2.0,
                in_flight_over_sync: 1.0,
                verified: true,
            }),
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
        let bring_ups = || vec![bring_up(2, 10.0), bring_up(16, 40.0)];
        let headline = summary(&report(), "same-switch", host, bring_ups(), None).unwrap();
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
                ("async_latency_4k_us", Some(false)),
                ("bring_up_16_over_2_gpus", Some(false)),
            ]
        );
        // Without the 4-GPU machine, the all-to-all is the benchmark machine's own.
        assert_eq!(
            (headline.all_to_all_spec.as_str(), headline.all_to_all_gpus),
            ("same-switch", 0)
        );
    }

    #[test]
    fn the_all_to_all_target_is_judged_on_the_four_gpu_machine() {
        let host = HostMemcpy {
            before_gbps: 4.0,
            after_gbps: 4.0,
        };
        let pairs: Vec<(u32, u32)> = (1..=4)
            .flat_map(|from| {
                (1..=4)
                    .filter(move |&to| to != from)
                    .map(move |to| (from, to))
            })
            .collect();
        let run = |aggregate_over_single| AllToAllRun {
            spec: "two-socket".into(),
            report: BenchReport {
                all_to_all: Some(ConcurrentBench {
                    pairs: pairs.clone(),
                    size_bytes: 8,
                    aggregate_gbps: 2.0 * aggregate_over_single,
                    single_pair_gbps: 2.0,
                    aggregate_over_single,
                    verified: true,
                }),
                ..report()
            },
        };
        let verdict = |run: &AllToAllRun| {
            let headline = summary(&report(), "same-switch", host, Vec::new(), Some(run)).unwrap();
            let target = headline
                .targets
                .iter()
                .find(|target| target.name.starts_with("all_to_all"))
                .cloned()
                .unwrap();
            (
                headline.all_to_all_spec,
                headline.all_to_all_gpus,
                headline.fraction_of_host_memcpy["all_to_all"],
                target.met,
            )
        };
        assert_eq!(
            verdict(&run(1.7)),
            ("two-socket".to_owned(), 4, 0.85, Some(true))
        );
        assert_eq!(verdict(&run(0.9)).3, Some(false));
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
