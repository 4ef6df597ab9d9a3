//! `p2pctl bench [--json]`: direct and staged copy bandwidth for every ordered GPU pair, 4 KiB
//! latency, and a memcpy baseline measured in the same process.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use hsa_p2p_runtime::device::bench::{render, run as run_bench, BenchConfig};
use hsa_p2p_runtime::device::transfer::read_published;
use hsa_p2p_runtime::device::{Device, DEVICE_PATH};
use hsa_p2p_runtime::spec::ByteSize;
use hsa_p2p_runtime::sysfs::HSA_P2P_TOPOLOGY;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Bytes per bandwidth copy.
    #[arg(long, default_value = "16M")]
    pub size: ByteSize,
    /// Bandwidth copies per path (the best is reported).
    #[arg(long, default_value_t = 5)]
    pub iterations: u32,
    /// 4 KiB copies per path (the median is reported).
    #[arg(long, default_value_t = 200)]
    pub latency_iterations: u32,
    /// The module's topology directory.
    #[arg(long, default_value = HSA_P2P_TOPOLOGY)]
    pub root: PathBuf,
    /// The device node.
    #[arg(long, default_value = DEVICE_PATH)]
    pub device: PathBuf,
    /// Print the hsa-p2p/bench/v1 JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let topology = read_published(&args.root)?;
    let device = Device::open_at(&args.device)?;
    let report = run_bench(
        &device,
        &topology,
        &BenchConfig {
            size: args.size.0,
            iterations: args.iterations,
            latency_iterations: args.latency_iterations,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if report.pairs.iter().any(|pair| !pair.verified) {
        bail!("a copy did not verify");
    }
    Ok(())
}
