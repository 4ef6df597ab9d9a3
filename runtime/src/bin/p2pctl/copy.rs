//! `p2pctl copy --from A --to B --size 64M [--staged]`: one verified copy between two GPUs'
//! VRAM through `/dev/hsa_p2p`, direct when the published topology allows it.

use anyhow::{bail, Result};

use hsa_p2p_runtime::cli::CopyArgs;
use hsa_p2p_runtime::device::transfer::{copy_verified, read_published, resolve_gpu};
use hsa_p2p_runtime::device::{Device, PathChoice};

use hsa_p2p_runtime::spec::ByteSize;

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
    let report = copy_verified(&device, &topology, from, to, args.size.0, choice, args.seed)?;
    if args.output.json {
        emit_json(&report, args.output)?;
    } else {
        println!("copy node {} -> node {}", report.from, report.to);
        println!("  path:     {} ({})", report.path.name(), report.reason);
        println!("  bytes:    {} ({})", report.bytes, ByteSize(report.bytes));
        println!(
            "  rate:     {:.3} GB/s ({:.3} ms; {:.3} ms in the kernel)",
            report.gbps,
            report.seconds * 1e3,
            report.kernel_seconds * 1e3
        );
        println!(
            "  verified: {} (source {:016x}, destination {:016x})",
            if report.verified { "ok" } else { "MISMATCH" },
            report.source_checksum,
            report.destination_checksum
        );
    }
    if !report.verified {
        bail!("the destination does not match the source");
    }
    Ok(())
}
