//! `p2pctl bench [--json]`: direct and staged copy bandwidth for every ordered GPU pair, 4 KiB
//! latency, and a memcpy baseline measured in the same process.

use anyhow::{bail, Result};

use hsa_p2p_runtime::cli::BenchArgs;
use hsa_p2p_runtime::device::bench::{render, run as run_bench};
use hsa_p2p_runtime::device::transfer::read_published;
use hsa_p2p_runtime::device::Device;

use crate::output::emit_json;

pub fn run(args: &BenchArgs) -> Result<()> {
    let topology = read_published(&args.target.root)?;
    let device = Device::open_at(&args.target.device)?;
    let report = run_bench(&device, &topology, &args.options.config())?;
    if args.output.json {
        emit_json(&report, args.output)?;
    } else {
        print!("{}", render(&report));
    }
    if report.pairs.iter().any(|pair| !pair.verified) {
        bail!("a copy did not verify");
    }
    Ok(())
}
