//! `p2pctl bench`: its options, its JSON document and its text form, and the memcpy baseline:
//! what the program in the machine and the host that runs it (`cargo xtask bench`) share. The
//! measuring of copies is in `device::bench`.

use std::time::Instant;

/// The document's schema name.
pub const BENCH_SCHEMA: &str = "hsa-p2p/bench/v2";

/// The benchmark settings as command-line options, shared by `p2pctl bench` and
/// `cargo xtask bench` (which passes them on to the guest's p2pctl).
#[derive(clap::Args, Clone, Debug)]
pub struct BenchOptions {
    /// Bytes per bandwidth copy.
    #[arg(long, default_value = "16M")]
    pub size: crate::spec::ByteSize,
    /// Bandwidth copies per path (the best is reported).
    #[arg(long, default_value_t = 5)]
    pub iterations: u32,
    /// Latency copies per path and size (the median is reported).
    #[arg(long, default_value_t = 200)]
    pub latency_iterations: u32,
    /// The views to measure, comma-separated: pairs (one direction at a time, latency
    /// included), bidirectional, all-to-all, size-sweep, cpu-gpu, async
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = BenchView::ALL,
        hide_possible_values = true
    )]
    pub views: Vec<BenchView>,
}

/// One view of the benchmark (`--views`): what `rocm_bandwidth_test` measures with one option.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchView {
    /// Every ordered pair, one direction at a time: direct, staged, user mmap copy, latency.
    Pairs,
    /// Both directions of each pair at once.
    Bidirectional,
    /// Every direct pair at once.
    AllToAll,
    /// Rate against copy size.
    SizeSweep,
    /// Each GPU against system memory.
    CpuGpu,
    /// Asynchronous copies (`COPY_SUBMIT`): latency and several in flight.
    Async,
}

impl BenchView {
    /// Every view, in the order they are measured.
    pub const ALL: [BenchView; 6] = [
        BenchView::Pairs,
        BenchView::Bidirectional,
        BenchView::AllToAll,
        BenchView::SizeSweep,
        BenchView::CpuGpu,
        BenchView::Async,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BenchView::Pairs => "pairs",
            BenchView::Bidirectional => "bidirectional",
            BenchView::AllToAll => "all-to-all",
            BenchView::SizeSweep => "size-sweep",
            BenchView::CpuGpu => "cpu-gpu",
            BenchView::Async => "async",
        }
    }
}

impl std::fmt::Display for BenchView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl BenchOptions {
    /// The settings these options ask for.
    pub fn config(&self) -> BenchConfig {
        BenchConfig {
            size: self.size.0,
            iterations: self.iterations,
            latency_iterations: self.latency_iterations,
            views: self.views.clone(),
        }
    }

    /// The same options as p2pctl arguments.
    pub fn to_args(&self) -> String {
        let views: Vec<&str> = self.views.iter().map(|view| view.name()).collect();
        format!(
            "--size {} --iterations {} --latency-iterations {} --views {}",
            self.size.0,
            self.iterations,
            self.latency_iterations,
            views.join(",")
        )
    }
}

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Bytes per bandwidth copy.
    pub size: u64,
    /// Bandwidth copies per path (the best is reported).
    pub iterations: u32,
    /// Latency copies per path and size (the median is reported).
    pub latency_iterations: u32,
    /// The views to measure.
    pub views: Vec<BenchView>,
}

impl BenchConfig {
    /// Whether `view` is measured.
    pub fn measures(&self, view: BenchView) -> bool {
        self.views.contains(&view)
    }
}

/// One ordered pair, unidirectional.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairBench {
    /// Source node.
    pub from: u32,
    /// Destination node.
    pub to: u32,
    /// Direct copy GB/s (best of the iterations) with the buffers where `p2pctl copy` gets
    /// them (each the first allocation of its GPU: the same BAR offset); `None` without a p2p
    /// link.
    pub direct_gbps: Option<f64>,
    /// Direct copy GB/s with the destination a few pages further into its BAR.
    pub direct_gbps_staggered: Option<f64>,
    /// Staged copy GB/s (best of the iterations), same buffers as `direct_gbps`.
    pub staged_gbps: f64,
    /// direct / staged.
    pub direct_over_staged: Option<f64>,
    /// A user-space memcpy from the source buffer's mmap to the destination's (what a program
    /// can do without the module's copy), GB/s.
    pub user_mmap_gbps: f64,
    /// direct / user mmap copy.
    pub direct_over_user_mmap: Option<f64>,
    /// Median direct copy latency of 64 bytes, microseconds.
    pub direct_latency_64_us: Option<f64>,
    /// Median direct copy latency of 4 KiB, microseconds.
    pub direct_latency_4k_us: Option<f64>,
    /// Median staged copy latency of 64 bytes, microseconds.
    pub staged_latency_64_us: f64,
    /// Median staged copy latency of 4 KiB, microseconds.
    pub staged_latency_4k_us: f64,
    /// Every destination verified by checksum.
    pub verified: bool,
}

/// Copies running at the same time, each by its own thread, and what they add up to.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConcurrentBench {
    /// The (source, destination) node pairs copied at once, direct.
    pub pairs: Vec<(u32, u32)>,
    /// Bytes per copy.
    pub size_bytes: u64,
    /// Total bytes of all copies over the wall time from the first start to the last end,
    /// best of the iterations, GB/s.
    pub aggregate_gbps: f64,
    /// The first pair alone, same buffers and size, GB/s.
    pub single_pair_gbps: f64,
    /// aggregate / single pair.
    pub aggregate_over_single: f64,
    /// Every destination verified by checksum.
    pub verified: bool,
}

/// One size of the sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepRow {
    /// Bytes per copy.
    pub size_bytes: u64,
    /// Direct GB/s (best of the iterations, each a batch of copies of at least 1 MiB in all).
    pub direct_gbps: f64,
    /// Staged GB/s, likewise.
    pub staged_gbps: f64,
}

/// Copy rate against copy size for the first pair with a direct path.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SizeSweep {
    /// Source node.
    pub from: u32,
    /// Destination node.
    pub to: u32,
    /// 4 KiB, 16 KiB, ... up to 256 MiB or the largest pair of buffers the BARs hold.
    pub rows: Vec<SweepRow>,
}

/// Copies between system memory and one GPU's VRAM through its mmap, in user space.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuGpuBench {
    /// The GPU node.
    pub gpu: u32,
    /// System memory to VRAM, GB/s (best).
    pub cpu_to_gpu_gbps: f64,
    /// VRAM to system memory, GB/s (best).
    pub gpu_to_cpu_gbps: f64,
}

/// Asynchronous direct copies (`COPY_SUBMIT`, completion signalled on an eventfd) between the
/// first pair with a direct path.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AsyncBench {
    /// Source node.
    pub from: u32,
    /// Destination node.
    pub to: u32,
    /// How the end of a copy was seen: `eventfd` (`poll`, then `COPY_WAIT` reaps it) or
    /// `copy_wait` (`COPY_WAIT` without timeout: the kernel has no eventfds).
    pub completion: String,
    /// Median submit-to-completion time of a 64-byte copy, microseconds: from before
    /// `COPY_SUBMIT` until `poll` sees its eventfd signalled (reaping with `COPY_WAIT` after),
    /// or until `COPY_WAIT` returns.
    pub latency_64_us: f64,
    /// The same for a 4 KiB copy.
    pub latency_4k_us: f64,
    /// Copies in flight at once in the throughput row.
    pub in_flight: u64,
    /// Bytes of the throughput row, split evenly between the copies in flight.
    pub size_bytes: u64,
    /// `size_bytes` as `in_flight` copies submitted at once: bytes over the wall time from the
    /// first submit to the last completion signalled, best of the iterations, GB/s.
    pub in_flight_gbps: f64,
    /// The same bytes as one synchronous `COPY` between the same buffers, GB/s (best).
    pub sync_gbps: f64,
    /// in flight / synchronous.
    pub in_flight_over_sync: f64,
    /// Every copy ended with status 0, and the destination matched the source.
    pub verified: bool,
}

/// The whole run (`hsa-p2p/bench/v2`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchReport {
    /// Schema name.
    pub schema: String,
    /// Bytes per bandwidth copy.
    pub size_bytes: u64,
    /// Bandwidth copies per path.
    pub iterations: u32,
    /// Latency copies per path and size.
    pub latency_iterations: u32,
    /// CPUs this process may run on (concurrent copies run in parallel only with several).
    pub cpus: usize,
    /// memcpy between two system-memory buffers of `size_bytes` in this process, GB/s (best).
    pub memcpy_gbps: f64,
    /// Every ordered GPU pair, one direction at a time.
    pub pairs: Vec<PairBench>,
    /// Both directions of a pair at once, for every unordered pair with p2p links both ways.
    pub bidirectional: Vec<ConcurrentBench>,
    /// Every ordered pair with a direct path at once (`None` with fewer than two such pairs).
    pub all_to_all: Option<ConcurrentBench>,
    /// Rate against size (`None` without a direct path).
    pub size_sweep: Option<SizeSweep>,
    /// Every GPU against system memory.
    pub cpu_gpu: Vec<CpuGpuBench>,
    /// Asynchronous copies (`None` without a direct path, or not measured).
    #[serde(default)]
    pub async_copies: Option<AsyncBench>,
}

/// `bytes` in `seconds` as GB/s (10^9 bytes per second).
pub fn gbps(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / seconds / 1e9
    } else {
        0.0
    }
}

/// memcpy of `size` bytes between two heap buffers, best of `iterations`, GB/s.
pub fn memcpy_gbps(size: u64, iterations: u32) -> f64 {
    let len = usize::try_from(size).unwrap_or(usize::MAX >> 1);
    let src: Vec<u8> = (0..len).map(|index| (index * 131 % 251) as u8).collect();
    let mut dst = vec![0u8; len];
    let mut best: f64 = 0.0;
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        best = best.max(gbps(size, started.elapsed().as_secs_f64()));
    }
    best
}

/// Whether every copy of the report verified.
pub fn verified(report: &BenchReport) -> bool {
    report.pairs.iter().all(|pair| pair.verified)
        && report.bidirectional.iter().all(|bench| bench.verified)
        && report
            .all_to_all
            .as_ref()
            .is_none_or(|bench| bench.verified)
        && report
            .async_copies
            .as_ref()
            .is_none_or(|bench| bench.verified)
}

/// A matrix of one figure per ordered pair (rows = source, columns = destination).
fn matrix(
    out: &mut String,
    title: &str,
    nodes: &[u32],
    report: &BenchReport,
    cell: impl Fn(&PairBench) -> String,
) {
    out.push_str(&format!("\n{title}\n{:>8}", "from\\to"));
    for to in nodes {
        out.push_str(&format!("{to:>12}"));
    }
    out.push('\n');
    for from in nodes {
        out.push_str(&format!("{from:>8}"));
        for to in nodes {
            let text = match report.pairs.iter().find(|p| p.from == *from && p.to == *to) {
                _ if from == to => "X".to_owned(),
                Some(pair) => cell(pair),
                None => "?".to_owned(),
            };
            out.push_str(&format!("{text:>12}"));
        }
        out.push('\n');
    }
}

fn rate(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.2}"))
}

fn micros(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.1}"))
}

fn concurrent_line(bench: &ConcurrentBench) -> String {
    let pairs: Vec<String> = bench
        .pairs
        .iter()
        .map(|(from, to)| format!("{from}->{to}"))
        .collect();
    format!(
        "{}: {:.2} GB/s aggregate, {:.2} GB/s the first pair alone ({:.2}x), {} KiB per copy\n",
        pairs.join(" "),
        bench.aggregate_gbps,
        bench.single_pair_gbps,
        bench.aggregate_over_single,
        bench.size_bytes >> 10
    )
}

/// The one-direction-at-a-time views: a matrix per figure.
fn pair_views(report: &BenchReport) -> String {
    let mut nodes: Vec<u32> = report.pairs.iter().flat_map(|p| [p.from, p.to]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut out = format!(
        "unidirectional copy bandwidth, {} MiB per copy, best of {} (GB/s; rows = source node, columns = destination)\n",
        report.size_bytes >> 20,
        report.iterations
    );
    matrix(
        &mut out,
        "direct (buffers where p2pctl copy puts them)",
        &nodes,
        report,
        |p| rate(p.direct_gbps),
    );
    matrix(
        &mut out,
        "direct (destination staggered)",
        &nodes,
        report,
        |p| rate(p.direct_gbps_staggered),
    );
    matrix(&mut out, "staged", &nodes, report, |p| {
        rate(Some(p.staged_gbps))
    });
    matrix(
        &mut out,
        "user-space memcpy between the two mmaps",
        &nodes,
        report,
        |p| rate(Some(p.user_mmap_gbps)),
    );
    matrix(
        &mut out,
        "latency direct/staged, 64 B (us)",
        &nodes,
        report,
        |p| {
            format!(
                "{}/{}",
                micros(p.direct_latency_64_us),
                micros(Some(p.staged_latency_64_us))
            )
        },
    );
    matrix(
        &mut out,
        "latency direct/staged, 4 KiB (us)",
        &nodes,
        report,
        |p| {
            format!(
                "{}/{}",
                micros(p.direct_latency_4k_us),
                micros(Some(p.staged_latency_4k_us))
            )
        },
    );
    out.push_str(
        "\nX = the node itself, - = no direct path (no p2p link), ? = pair not measured\n",
    );
    out
}

/// The report as text: matrices (rows = source, columns = destination), then the rest (the
/// views that were measured).
pub fn render(report: &BenchReport) -> String {
    let mut out = String::new();
    if !report.pairs.is_empty() {
        out.push_str(&pair_views(report));
    }
    if !report.bidirectional.is_empty() {
        out.push_str(&format!(
            "\nbidirectional (both directions at once, {} CPUs)\n",
            report.cpus
        ));
    }
    for bench in &report.bidirectional {
        out.push_str(&concurrent_line(bench));
    }
    if let Some(bench) = &report.all_to_all {
        out.push_str(&format!(
            "\nall-to-all (every direct pair at once, {} CPUs)\n",
            report.cpus
        ));
        out.push_str(&concurrent_line(bench));
    }
    if let Some(sweep) = &report.size_sweep {
        out.push_str(&format!(
            "\nsize sweep {} -> {} (GB/s)\n{:>10}{:>10}{:>10}\n",
            sweep.from, sweep.to, "size", "direct", "staged"
        ));
        for row in &sweep.rows {
            out.push_str(&format!(
                "{:>10}{:>10.2}{:>10.2}\n",
                crate::spec::ByteSize(row.size_bytes).to_string(),
                row.direct_gbps,
                row.staged_gbps
            ));
        }
    }
    if !report.cpu_gpu.is_empty() {
        out.push_str(&format!(
            "\nCPU <-> GPU through mmap (GB/s)\n{:>8}{:>12}{:>12}\n",
            "gpu", "cpu->gpu", "gpu->cpu"
        ));
    }
    for row in &report.cpu_gpu {
        out.push_str(&format!(
            "{:>8}{:>12.2}{:>12.2}\n",
            row.gpu, row.cpu_to_gpu_gbps, row.gpu_to_cpu_gbps
        ));
    }
    if let Some(bench) = &report.async_copies {
        out.push_str(&format!(
            "\nasynchronous copies {} -> {} (direct, completion seen by {})\n\
             submit-to-completion latency: 64 B {:.1} us, 4 KiB {:.1} us\n\
             {} copies in flight, {} KiB each: {:.2} GB/s; one synchronous copy of the same \
             bytes {:.2} GB/s ({:.2}x)\n",
            bench.from,
            bench.to,
            bench.completion,
            bench.latency_64_us,
            bench.latency_4k_us,
            bench.in_flight,
            (bench.size_bytes / bench.in_flight.max(1)) >> 10,
            bench.in_flight_gbps,
            bench.sync_gbps,
            bench.in_flight_over_sync
        ));
    }
    out.push_str(&format!(
        "\nmemcpy baseline (system memory, same process): {:.2} GB/s\n",
        report.memcpy_gbps
    ));
    if !verified(report) {
        out.push_str(&format!(
            "VERIFICATION FAILED (the destination does not match the source): {}\n",
            unverified(report).join(", ")
        ));
    }
    out
}

/// Every copy of the report that did not verify, by name.
fn unverified(report: &BenchReport) -> Vec<String> {
    let pairs = (report.pairs.iter())
        .filter(|p| !p.verified)
        .map(|p| format!("{} -> {}", p.from, p.to));
    let concurrent = (report.bidirectional.iter())
        .map(|bench| ("bidirectional", bench))
        .chain(report.all_to_all.iter().map(|bench| ("all-to-all", bench)))
        .filter(|(_, bench)| !bench.verified)
        .map(|(kind, bench)| {
            let pairs: Vec<String> = (bench.pairs.iter())
                .map(|(from, to)| format!("{from}->{to}"))
                .collect();
            format!("{kind} {}", pairs.join(" "))
        });
    let asynchronous = (report.async_copies.iter())
        .filter(|bench| !bench.verified)
        .map(|bench| format!("asynchronous {} -> {}", bench.from, bench.to));
    pairs.chain(concurrent).chain(asynchronous).collect()
}
