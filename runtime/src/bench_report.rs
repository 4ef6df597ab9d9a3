//! `p2pctl bench`: its options and its JSON document, what the program in the machine and the
//! host that runs it (`cargo xtask bench`) share. The measuring is in `device::bench`.

/// The document's schema name.
pub const BENCH_SCHEMA: &str = "hsa-p2p/bench/v1";

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
    /// 4 KiB copies per path (the median is reported).
    #[arg(long, default_value_t = 200)]
    pub latency_iterations: u32,
}

impl BenchOptions {
    /// The settings these options ask for.
    pub fn config(&self) -> BenchConfig {
        BenchConfig {
            size: self.size.0,
            iterations: self.iterations,
            latency_iterations: self.latency_iterations,
        }
    }

    /// The same options as p2pctl arguments.
    pub fn to_args(&self) -> String {
        format!(
            "--size {} --iterations {} --latency-iterations {}",
            self.size.0, self.iterations, self.latency_iterations
        )
    }
}

/// Benchmark settings.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Bytes per bandwidth copy.
    pub size: u64,
    /// Bandwidth copies per path (the best is reported).
    pub iterations: u32,
    /// 4 KiB copies per path (the median is reported).
    pub latency_iterations: u32,
}

/// One ordered pair.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairBench {
    /// Source node.
    pub from: u32,
    /// Destination node.
    pub to: u32,
    /// Direct copy GB/s (best of the iterations), destination staggered by [`crate::device::bench::STAGGER`];
    /// `None` without a p2p link.
    pub direct_gbps: Option<f64>,
    /// Direct copy GB/s with source and destination at the same BAR offset (when both fit).
    pub direct_gbps_aliased: Option<f64>,
    /// Staged copy GB/s (best of the iterations).
    pub staged_gbps: f64,
    /// direct / staged.
    pub direct_over_staged: Option<f64>,
    /// Median 4 KiB direct copy latency, microseconds.
    pub direct_latency_us: Option<f64>,
    /// Median 4 KiB staged copy latency, microseconds.
    pub staged_latency_us: f64,
    /// Both paths' results verified by checksum.
    pub verified: bool,
}

/// The whole run (`hsa-p2p/bench/v1`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchReport {
    /// Schema name.
    pub schema: String,
    /// Bytes per bandwidth copy.
    pub size_bytes: u64,
    /// Bandwidth copies per path.
    pub iterations: u32,
    /// 4 KiB copies per path.
    pub latency_iterations: u32,
    /// memcpy between two system-memory buffers of `size_bytes` in this process, GB/s (best).
    pub memcpy_gbps: f64,
    /// Every ordered GPU pair.
    pub pairs: Vec<PairBench>,
}
