//! Bandwidth and latency of peer copies the way `rocm_bandwidth_test` shows them: one
//! direction at a time (direct, staged, and a user-space copy between two mmaps), both
//! directions at once, all pairs at once, rate against size, latency, and each GPU against
//! system memory; next to a memcpy baseline of the same process.

mod async_copies;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use hsa_p2p_core::abi::AbiError;
use hsa_p2p_core::topology::Topology;

use super::transfer::{gbps, gpus, has_direct_path, GpuRef, TransferError};
use super::{checksum, fill_random, Buffer, Device, DeviceError, PathChoice};
pub use crate::bench_report::{
    memcpy_gbps, render, verified, AsyncBench, BenchConfig, BenchOptions, BenchReport, BenchView,
    ConcurrentBench, CpuGpuBench, PairBench, SizeSweep, SweepRow, BENCH_SCHEMA,
};
use crate::stats::median;
pub use async_copies::IN_FLIGHT;

/// Bytes of the latency copies.
pub const LATENCY_SIZES: [u64; 2] = [64, 4096];

/// How far the staggered destination is moved from the source buffer's BAR offset (a few
/// pages), to show whether the placement matters.
pub const STAGGER: u64 = 5 * 4096;

/// The sizes of the sweep: 4 KiB to 256 MiB, by factors of 4.
pub const SWEEP_SIZES: [u64; 9] = [
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    64 << 20,
    256 << 20,
];

/// Each timed sample of the sweep copies at least this many bytes (small copies in batches).
const SWEEP_BATCH_BYTES: u64 = 1 << 20;

/// The buffers a measurement allocated, freed when it ends.
struct Held<'d> {
    device: &'d Device,
    handles: Vec<u32>,
}

impl<'d> Held<'d> {
    fn new(device: &'d Device) -> Self {
        Self {
            device,
            handles: Vec::new(),
        }
    }

    fn alloc(&mut self, gpu_id: u32, size: u64) -> Result<Buffer, DeviceError> {
        let buffer = self.device.alloc(gpu_id, size)?;
        self.handles.push(buffer.handle);
        Ok(buffer)
    }

    /// A source buffer filled with random bytes, and their checksum.
    fn source(&mut self, gpu: GpuRef, size: u64, seed: u64) -> Result<(Buffer, u64), DeviceError> {
        let buffer = self.alloc(gpu.gpu_id, size)?;
        let mut view = self.device.mmap(&buffer)?;
        fill_random(view.as_mut_slice(), seed);
        Ok((buffer, checksum(view.as_slice())))
    }

    fn checksum(&self, buffer: &Buffer) -> Result<u64, DeviceError> {
        Ok(checksum(self.device.mmap(buffer)?.as_slice()))
    }

    /// Frees everything; the first error, if any.
    fn release(mut self) -> Result<(), DeviceError> {
        let handles = std::mem::take(&mut self.handles);
        handles
            .iter()
            .map(|&handle| self.device.free(handle))
            .fold(Ok(()), Result::and)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Only after an error of the measurement, which is what gets reported.
        for &handle in &self.handles {
            let _ = self.device.free(handle);
        }
    }
}

/// Runs `measure` with a [`Held`] and frees its buffers; the measurement's error first.
fn with_buffers<T>(
    device: &Device,
    measure: impl FnOnce(&mut Held) -> Result<T, TransferError>,
) -> Result<T, TransferError> {
    let mut held = Held::new(device);
    let result = measure(&mut held);
    let freed = held.release();
    let value = result?;
    freed?;
    Ok(value)
}

/// The rate of one run of `op`, which moves `bytes`.
fn timed(bytes: u64, op: impl FnOnce() -> Result<(), TransferError>) -> Result<f64, TransferError> {
    let started = Instant::now();
    op()?;
    Ok(gbps(bytes, started.elapsed().as_secs_f64()))
}

/// The best rate of `iterations` samples, each `batch` runs of `op` moving `bytes` each.
fn best_rate(
    iterations: u32,
    batch: u64,
    bytes: u64,
    mut op: impl FnMut() -> Result<(), TransferError>,
) -> Result<f64, TransferError> {
    let mut best: f64 = 0.0;
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        for _ in 0..batch.max(1) {
            op()?;
        }
        best = best.max(gbps(bytes * batch.max(1), started.elapsed().as_secs_f64()));
    }
    Ok(best)
}

fn copy_rate(
    device: &Device,
    src: &Buffer,
    dst: &Buffer,
    size: u64,
    iterations: u32,
    choice: PathChoice,
) -> Result<f64, TransferError> {
    let batch = (SWEEP_BATCH_BYTES / size.max(1)).max(1);
    let batch = if size >= SWEEP_BATCH_BYTES { 1 } else { batch };
    best_rate(iterations, batch, size, || {
        device.copy(src.handle, 0, dst.handle, 0, size, choice)?;
        Ok(())
    })
}

fn median_latency_us(
    device: &Device,
    src: &Buffer,
    dst: &Buffer,
    bytes: u64,
    iterations: u32,
    choice: PathChoice,
) -> Result<f64, TransferError> {
    let mut samples = Vec::new();
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        device.copy(src.handle, 0, dst.handle, 0, bytes, choice)?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median(&samples).expect("`iterations.max(1)` samples, durations (no NaN)"))
}

/// `ratio` of two rates, `None` when either is missing or the divisor is zero.
fn ratio(of: Option<f64>, over: f64) -> Option<f64> {
    of.filter(|_| over > 0.0).map(|rate| rate / over)
}

fn latencies(
    device: &Device,
    src: &Buffer,
    dst: &Buffer,
    iterations: u32,
    choice: PathChoice,
) -> Result<[f64; 2], TransferError> {
    let [small, page] = LATENCY_SIZES;
    Ok([
        median_latency_us(device, src, dst, small, iterations, choice)?,
        median_latency_us(device, src, dst, page, iterations, choice)?,
    ])
}

fn bench_pair(
    device: &Device,
    topology: &Topology,
    from: GpuRef,
    to: GpuRef,
    config: &BenchConfig,
) -> Result<PairBench, TransferError> {
    with_buffers(device, |held| {
        let size = config.size;
        let seed = u64::from(from.node) << 8 | u64::from(to.node);
        // Placement: `dst` where `p2pctl copy` puts it (the first allocation of an empty GPU,
        // the source's offset), then `staggered` a few pages further.
        let (src, expected) = held.source(from, size, seed)?;
        let dst = held.alloc(to.gpu_id, size)?;
        let direct = has_direct_path(topology, from, to);
        let mut staggered = None;
        if direct {
            device.map_peer(dst.handle, from.gpu_id)?;
            // A second buffer of that size may not fit: the staggered placement is optional.
            if let Ok(buffer) = held
                .alloc(to.gpu_id, STAGGER)
                .and_then(|_| held.alloc(to.gpu_id, size))
            {
                device.map_peer(buffer.handle, from.gpu_id)?;
                staggered = Some(buffer);
            }
        }
        let source = device.mmap(&src)?;
        let mut destination = device.mmap(&dst)?;
        let copy_into = |target: &Buffer, choice| {
            device.copy(src.handle, 0, target.handle, 0, size, choice)?;
            Ok(())
        };
        // One copy of every kind per round, so that a change of the host's load (the machine
        // is emulated on shared cores) hits them all alike; the best round of each counts.
        let [mut direct_best, mut staggered_best, mut staged_best, mut user_best] = [0.0f64; 4];
        for _ in 0..config.iterations.max(1) {
            if direct {
                direct_best = direct_best.max(timed(size, || copy_into(&dst, PathChoice::Direct))?);
            }
            if let Some(staggered) = &staggered {
                let rate = timed(size, || copy_into(staggered, PathChoice::Direct))?;
                staggered_best = staggered_best.max(rate);
            }
            staged_best = staged_best.max(timed(size, || copy_into(&dst, PathChoice::Staged))?);
            user_best = user_best.max(timed(size, || {
                destination
                    .as_mut_slice()
                    .copy_from_slice(std::hint::black_box(source.as_slice()));
                Ok(())
            })?);
        }
        // Every path verified on its own, into a zeroed destination.
        let mut verified = true;
        let mut paths = vec![(&dst, PathChoice::Staged)];
        if direct {
            paths.push((&dst, PathChoice::Direct));
        }
        if let Some(staggered) = &staggered {
            paths.push((staggered, PathChoice::Direct));
        }
        for (target, choice) in paths {
            device.mmap(target)?.as_mut_slice().fill(0);
            copy_into(target, choice)?;
            verified &= held.checksum(target)? == expected;
        }
        destination.as_mut_slice().fill(0);
        destination
            .as_mut_slice()
            .copy_from_slice(source.as_slice());
        verified &= checksum(destination.as_slice()) == expected;
        let direct_latency = if direct {
            Some(latencies(
                device,
                &src,
                &dst,
                config.latency_iterations,
                PathChoice::Direct,
            )?)
        } else {
            None
        };
        let [staged_latency_64_us, staged_latency_4k_us] = latencies(
            device,
            &src,
            &dst,
            config.latency_iterations,
            PathChoice::Staged,
        )?;
        let direct_gbps = direct.then_some(direct_best);
        let direct_gbps_staggered = staggered.is_some().then_some(staggered_best);
        let (staged_gbps, user_mmap_gbps) = (staged_best, user_best);
        Ok(PairBench {
            from: from.node,
            to: to.node,
            direct_gbps,
            direct_gbps_staggered,
            staged_gbps,
            direct_over_staged: ratio(direct_gbps, staged_gbps),
            user_mmap_gbps,
            direct_over_user_mmap: ratio(direct_gbps, user_mmap_gbps),
            direct_latency_64_us: direct_latency.map(|[small, _]| small),
            direct_latency_4k_us: direct_latency.map(|[_, page]| page),
            staged_latency_64_us,
            staged_latency_4k_us,
            verified,
        })
    })
}

/// Direct copies of `size` bytes between `pairs`, all at once, each by its own thread.
fn concurrent_at(
    device: &Device,
    pairs: &[(GpuRef, GpuRef)],
    size: u64,
    iterations: u32,
) -> Result<ConcurrentBench, TransferError> {
    with_buffers(device, |held| {
        let mut copies = Vec::new();
        for (index, &(from, to)) in pairs.iter().enumerate() {
            let (src, expected) = held.source(from, size, 0xa11 + index as u64)?;
            let dst = held.alloc(to.gpu_id, size)?;
            device.map_peer(dst.handle, from.gpu_id)?;
            copies.push((src, dst, expected));
        }
        let (first_src, first_dst, _) = &copies[0];
        let single_pair_gbps = copy_rate(
            device,
            first_src,
            first_dst,
            size,
            iterations,
            PathChoice::Direct,
        )?;
        let mut aggregate_gbps: f64 = 0.0;
        for _ in 0..iterations.max(1) {
            let barrier = Barrier::new(copies.len());
            let spans = std::thread::scope(|scope| {
                let threads: Vec<_> = copies
                    .iter()
                    .map(|(src, dst, _)| {
                        let barrier = &barrier;
                        scope.spawn(move || {
                            barrier.wait();
                            let started = Instant::now();
                            device
                                .copy(src.handle, 0, dst.handle, 0, size, PathChoice::Direct)
                                .map(|_| (started, Instant::now()))
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .map(|thread| thread.join().expect("a copy thread panicked"))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            let start = spans.iter().map(|(start, _)| *start).min();
            let end = spans.iter().map(|(_, end)| *end).max();
            let wall = match (start, end) {
                (Some(start), Some(end)) => end.duration_since(start),
                _ => Duration::ZERO,
            };
            let total = size * copies.len() as u64;
            aggregate_gbps = aggregate_gbps.max(gbps(total, wall.as_secs_f64()));
        }
        let mut verified = true;
        for (_, dst, expected) in &copies {
            verified &= held.checksum(dst)? == *expected;
        }
        Ok(ConcurrentBench {
            pairs: pairs
                .iter()
                .map(|(from, to)| (from.node, to.node))
                .collect(),
            size_bytes: size,
            aggregate_gbps,
            single_pair_gbps,
            aggregate_over_single: ratio(Some(aggregate_gbps), single_pair_gbps).unwrap_or(0.0),
            verified,
        })
    })
}

/// Whether `error` says the VRAM is full.
fn out_of_vram(error: &TransferError) -> bool {
    matches!(error, TransferError::Device(device) if device.abi_error() == Some(AbiError::NoVram))
}

/// [`concurrent_at`] at `size`, halved until every GPU holds its buffers.
fn concurrent(
    device: &Device,
    pairs: &[(GpuRef, GpuRef)],
    config: &BenchConfig,
) -> Result<ConcurrentBench, TransferError> {
    let mut size = config.size;
    loop {
        match concurrent_at(device, pairs, size, config.iterations) {
            Err(error) if out_of_vram(&error) && size > 4096 => size /= 2,
            other => return other,
        }
    }
}

fn size_sweep(
    device: &Device,
    from: GpuRef,
    to: GpuRef,
    iterations: u32,
) -> Result<SizeSweep, TransferError> {
    let mut rows = Vec::new();
    for size in SWEEP_SIZES {
        let row = with_buffers(device, |held| {
            let (src, _) = held.source(from, size, size)?;
            let dst = held.alloc(to.gpu_id, size)?;
            device.map_peer(dst.handle, from.gpu_id)?;
            Ok(SweepRow {
                size_bytes: size,
                direct_gbps: copy_rate(device, &src, &dst, size, iterations, PathChoice::Direct)?,
                staged_gbps: copy_rate(device, &src, &dst, size, iterations, PathChoice::Staged)?,
            })
        });
        match row {
            Ok(row) => rows.push(row),
            // The BARs hold no larger pair of buffers.
            Err(error) if out_of_vram(&error) => break,
            Err(error) => return Err(error),
        }
    }
    Ok(SizeSweep {
        from: from.node,
        to: to.node,
        rows,
    })
}

fn cpu_gpu(
    device: &Device,
    gpu: GpuRef,
    config: &BenchConfig,
) -> Result<CpuGpuBench, TransferError> {
    with_buffers(device, |held| {
        let buffer = held.alloc(gpu.gpu_id, config.size)?;
        let mut view = device.mmap(&buffer)?;
        let len = view.as_slice().len();
        let mut system = vec![0u8; len];
        fill_random(&mut system, u64::from(gpu.node));
        let cpu_to_gpu_gbps = best_rate(config.iterations, 1, config.size, || {
            view.as_mut_slice()
                .copy_from_slice(std::hint::black_box(&system));
            Ok(())
        })?;
        let gpu_to_cpu_gbps = best_rate(config.iterations, 1, config.size, || {
            system.copy_from_slice(std::hint::black_box(view.as_slice()));
            Ok(())
        })?;
        Ok(CpuGpuBench {
            gpu: gpu.node,
            cpu_to_gpu_gbps,
            gpu_to_cpu_gbps,
        })
    })
}

/// Benchmarks every ordered GPU pair of `topology`, then the concurrent views (those of
/// `config.views`; the others are left empty).
pub fn run(
    device: &Device,
    topology: &Topology,
    config: &BenchConfig,
) -> Result<BenchReport, TransferError> {
    let all = gpus(topology);
    let mut pairs = Vec::new();
    let mut direct_pairs = Vec::new();
    for &from in &all {
        for &to in all.iter().filter(|to| **to != from) {
            if config.measures(BenchView::Pairs) {
                pairs.push(bench_pair(device, topology, from, to, config)?);
            }
            if has_direct_path(topology, from, to) {
                direct_pairs.push((from, to));
            }
        }
    }
    let mut bidirectional = Vec::new();
    if config.measures(BenchView::Bidirectional) {
        for &(from, to) in direct_pairs.iter().filter(|(from, to)| from.node < to.node) {
            if direct_pairs.contains(&(to, from)) {
                bidirectional.push(concurrent(device, &[(from, to), (to, from)], config)?);
            }
        }
    }
    let all_to_all = match direct_pairs.len() {
        _ if !config.measures(BenchView::AllToAll) => None,
        0 | 1 => None,
        _ => Some(concurrent(device, &direct_pairs, config)?),
    };
    let size_sweep = match direct_pairs.first() {
        Some(&(from, to)) if config.measures(BenchView::SizeSweep) => {
            Some(size_sweep(device, from, to, config.iterations)?)
        }
        _ => None,
    };
    // A module of ABI 1.1 has no asynchronous copies: the view is left out.
    let (_, minor) = device.version()?;
    let async_copies = match direct_pairs.first() {
        Some(&(from, to)) if config.measures(BenchView::Async) && minor >= 2 => {
            Some(async_copies::async_copies(device, from, to, config)?)
        }
        _ => None,
    };
    let cpu_gpu = if config.measures(BenchView::CpuGpu) {
        all.iter()
            .map(|&gpu| cpu_gpu(device, gpu, config))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(BenchReport {
        schema: BENCH_SCHEMA.into(),
        size_bytes: config.size,
        iterations: config.iterations,
        latency_iterations: config.latency_iterations,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        memcpy_gbps: memcpy_gbps(config.size, config.iterations),
        pairs,
        bidirectional,
        all_to_all,
        size_sweep,
        cpu_gpu,
        async_copies,
    })
}
