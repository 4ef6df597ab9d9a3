//! `p2pctl bench [--json]`: the views of `hsa_p2p_runtime::device::bench`, as text or JSON.

use anyhow::{bail, Result};

use hsa_p2p_runtime::cli::BenchArgs;
use hsa_p2p_runtime::device::bench::{render, run as run_bench, verified};
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
    if !verified(&report) {
        bail!("a copy did not verify");
    }
    Ok(())
}
