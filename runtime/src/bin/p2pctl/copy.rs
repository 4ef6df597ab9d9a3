//! `p2pctl copy --from A --to B --size 64M [--staged] [--async]`: one verified copy between two
//! GPUs' VRAM through `/dev/hsa_p2p`, direct when the published topology allows it.

use anyhow::{bail, Result};

use hsa_p2p_runtime::cli::CopyArgs;
use hsa_p2p_runtime::device::transfer::{
    copy_verified, read_published, render, resolve_gpu, CopyJob,
};
use hsa_p2p_runtime::device::{Device, PathChoice};

use crate::output::emit_json;

pub fn run(args: &CopyArgs) -> Result<()> {
    let topology = read_published(&args.target.root)?;
    let from = resolve_gpu(&topology, &args.from)?;
    let to = resolve_gpu(&topology, &args.to)?;
    let device = Device::open_at(&args.target.device)?;
    let choice = if args.staged {
        PathChoice::Staged
    } else if args.direct {
        PathChoice::Direct
    } else {
        PathChoice::Auto
    };
    let job = CopyJob {
        from,
        to,
        size: args.size.0,
        choice,
        seed: args.seed,
        asynchronous: args.asynchronous,
    };
    let report = copy_verified(&device, &topology, &job)?;
    if args.output.json {
        emit_json(&report, args.output)?;
    } else {
        print!("{}", render(&report));
    }
    if !report.verified {
        bail!("the destination does not match the source");
    }
    Ok(())
}
