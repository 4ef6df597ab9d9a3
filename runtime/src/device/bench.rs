//! Bandwidth and latency of peer copies, direct and staged, next to a memcpy baseline.

use std::time::Instant;

use hsa_p2p_core::topology::Topology;

use super::transfer::{gbps, gpus, has_direct_path, GpuRef, TransferError};
use super::{checksum, fill_random, Device, PathChoice};
pub use crate::bench_report::{BenchConfig, BenchOptions, BenchReport, PairBench, BENCH_SCHEMA};

/// Bytes of the latency copies.
pub const LATENCY_BYTES: u64 = 4096;

/// How far the destination buffer is moved from the source buffer's BAR offset (a few pages).
///
/// Under QEMU TCG, a copy between identical offsets of two BAR mappings makes source and
/// destination pages alias in the emulator's software TLB; that costs a large factor and says
/// nothing about peer-to-peer. The benchmark measures direct copies at staggered offsets and
/// reports the aliased case separately.
pub const STAGGER: u64 = 5 * 4096;

fn best_gbps(
    device: &Device,
    src: u32,
    dst: u32,
    size: u64,
    iterations: u32,
    choice: PathChoice,
) -> Result<f64, TransferError> {
    let mut best: f64 = 0.0;
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        device.copy(src, 0, dst, 0, size, choice)?;
        best = best.max(gbps(size, started.elapsed().as_secs_f64()));
    }
    Ok(best)
}

fn median_latency_us(
    device: &Device,
    src: u32,
    dst: u32,
    iterations: u32,
    choice: PathChoice,
) -> Result<f64, TransferError> {
    let mut samples = Vec::new();
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        device.copy(src, 0, dst, 0, LATENCY_BYTES, choice)?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// memcpy of `size` bytes between two heap buffers, best of `iterations`, GB/s.
pub fn memcpy_gbps(size: u64, iterations: u32) -> f64 {
    let len = usize::try_from(size).unwrap_or(usize::MAX >> 1);
    let mut src = vec![0u8; len];
    fill_random(&mut src, 1);
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

fn bench_pair(
    device: &Device,
    topology: &Topology,
    from: GpuRef,
    to: GpuRef,
    config: &BenchConfig,
) -> Result<PairBench, TransferError> {
    let src = device.alloc(from.gpu_id, config.size)?;
    let mut held = vec![src.handle];
    let result = (|| {
        // Placement: `aliased` at the source's offset when the destination GPU is as empty as
        // the source's, then `dst` a few pages further.
        let aliased = device.alloc(to.gpu_id, config.size).ok();
        held.extend(aliased.map(|b| b.handle));
        let pad = device.alloc(to.gpu_id, STAGGER)?;
        held.push(pad.handle);
        let dst = device.alloc(to.gpu_id, config.size)?;
        held.push(dst.handle);
        let aliased = aliased.filter(|b| b.vram_offset == src.vram_offset);
        let mut source = device.mmap(&src)?;
        fill_random(
            source.as_mut_slice(),
            u64::from(from.node) << 8 | u64::from(to.node),
        );
        let expected = checksum(source.as_slice());
        drop(source);
        let direct = has_direct_path(topology, from, to);
        let mut verified = true;
        let (direct_gbps, direct_gbps_aliased, direct_latency_us) = if direct {
            device.map_peer(dst.handle, from.gpu_id)?;
            let rate = best_gbps(
                device,
                src.handle,
                dst.handle,
                config.size,
                config.iterations,
                PathChoice::Direct,
            )?;
            verified &= checksum(device.mmap(&dst)?.as_slice()) == expected;
            let aliased_rate = match aliased {
                Some(aliased) => {
                    device.map_peer(aliased.handle, from.gpu_id)?;
                    let rate = best_gbps(
                        device,
                        src.handle,
                        aliased.handle,
                        config.size,
                        config.iterations,
                        PathChoice::Direct,
                    )?;
                    verified &= checksum(device.mmap(&aliased)?.as_slice()) == expected;
                    Some(rate)
                }
                None => None,
            };
            let latency = median_latency_us(
                device,
                src.handle,
                dst.handle,
                config.latency_iterations,
                PathChoice::Direct,
            )?;
            (Some(rate), aliased_rate, Some(latency))
        } else {
            (None, None, None)
        };
        let staged_gbps = best_gbps(
            device,
            src.handle,
            dst.handle,
            config.size,
            config.iterations,
            PathChoice::Staged,
        )?;
        verified &= checksum(device.mmap(&dst)?.as_slice()) == expected;
        let staged_latency_us = median_latency_us(
            device,
            src.handle,
            dst.handle,
            config.latency_iterations,
            PathChoice::Staged,
        )?;
        Ok::<_, TransferError>(PairBench {
            from: from.node,
            to: to.node,
            direct_gbps,
            direct_gbps_aliased,
            staged_gbps,
            direct_over_staged: direct_gbps
                .filter(|_| staged_gbps > 0.0)
                .map(|rate| rate / staged_gbps),
            direct_latency_us,
            staged_latency_us,
            verified,
        })
    })();
    let freed = held.iter().try_for_each(|&handle| device.free(handle));
    let pair = result?;
    freed?;
    Ok(pair)
}

/// Benchmarks every ordered GPU pair of `topology`.
pub fn run(
    device: &Device,
    topology: &Topology,
    config: &BenchConfig,
) -> Result<BenchReport, TransferError> {
    let all = gpus(topology);
    let mut pairs = Vec::new();
    for &from in &all {
        for &to in all.iter().filter(|to| **to != from) {
            pairs.push(bench_pair(device, topology, from, to, config)?);
        }
    }
    Ok(BenchReport {
        schema: BENCH_SCHEMA.into(),
        size_bytes: config.size,
        iterations: config.iterations,
        latency_iterations: config.latency_iterations,
        memcpy_gbps: memcpy_gbps(config.size, config.iterations),
        pairs,
    })
}

/// The report as a text matrix (rows = source, columns = destination).
pub fn render(report: &BenchReport) -> String {
    let mut nodes: Vec<u32> = report.pairs.iter().flat_map(|p| [p.from, p.to]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut out = format!(
        "copy bandwidth, {} MiB per copy, best of {} (GB/s; rows = source node, columns = destination)\n",
        report.size_bytes >> 20,
        report.iterations
    );
    for (title, cell) in [
        (
            "direct",
            &(|p: &PairBench| p.direct_gbps.map_or("-".to_owned(), |v| format!("{v:.2}")))
                as &dyn Fn(&PairBench) -> String,
        ),
        ("staged", &|p: &PairBench| format!("{:.2}", p.staged_gbps)),
        ("4 KiB latency direct/staged (us)", &|p: &PairBench| {
            format!(
                "{}/{:.0}",
                p.direct_latency_us
                    .map_or("-".to_owned(), |v| format!("{v:.0}")),
                p.staged_latency_us
            )
        }),
    ] {
        out.push_str(&format!("\n{title}\n{:>8}", "from\\to"));
        for to in &nodes {
            out.push_str(&format!("{to:>12}"));
        }
        out.push('\n');
        for from in &nodes {
            out.push_str(&format!("{from:>8}"));
            for to in &nodes {
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
    out.push_str(
        "\nX = the node itself, - = no direct path (no p2p link), ? = pair not measured\n",
    );
    out.push_str(&format!(
        "memcpy baseline (system memory, same process): {:.2} GB/s\n",
        report.memcpy_gbps
    ));
    let failed: Vec<String> = (report.pairs.iter())
        .filter(|p| !p.verified)
        .map(|p| format!("{} -> {}", p.from, p.to))
        .collect();
    if !failed.is_empty() {
        out.push_str(&format!(
            "VERIFICATION FAILED (the destination does not match the source): {}\n",
            failed.join(", ")
        ));
    }
    out
}
