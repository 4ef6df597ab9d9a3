//! Asynchronous copies in the benchmark: the submit-to-completion latency of one copy (64 B
//! and 4 KiB), as a program that `poll`s its eventfd sees it, and several copies in flight
//! against one synchronous copy of the same bytes.

use std::os::fd::AsFd;
use std::time::Instant;

use super::super::{checksum, Buffer, CopyRequest, Device, DeviceError, EventFd, PathChoice};
use super::super::{Ticket, WaitTimeout};
use super::{copy_rate, with_buffers, AsyncBench, BenchConfig, GpuRef, LATENCY_SIZES};
use crate::bench_report::gbps;
use crate::device::transfer::TransferError;

/// Copies in flight at once in the throughput row.
pub const IN_FLIGHT: u64 = 4;

fn poll_error(source: std::io::Error) -> TransferError {
    DeviceError::Os {
        op: "poll the eventfd",
        source,
    }
    .into()
}

/// Blocks until `eventfd` has counted `count` signals in all (its counter is reset).
fn wait_for_signals(eventfd: &EventFd, count: u64) -> Result<(), TransferError> {
    let mut seen = 0;
    while seen < count {
        eventfd.wait_readable(-1).map_err(poll_error)?;
        seen += eventfd.take().map_err(poll_error)?;
    }
    Ok(())
}

/// Reaps `ticket` (its eventfd already signalled): an error unless every byte was copied.
fn reap(device: &Device, ticket: Ticket) -> Result<(), TransferError> {
    device.wait_copy(ticket, WaitTimeout::Forever)?.outcome()?;
    Ok(())
}

/// Median submit-to-completion time of direct copies of `bytes`, microseconds.
fn latency_us(
    device: &Device,
    eventfd: &EventFd,
    request: CopyRequest,
    iterations: u32,
) -> Result<f64, TransferError> {
    let mut samples = Vec::new();
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        let ticket = device.submit_copy(&request, Some(eventfd.as_fd()))?;
        wait_for_signals(eventfd, 1)?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        reap(device, ticket)?;
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// `size` bytes from `src` to `dst` as [`IN_FLIGHT`] copies submitted at once; GB/s from the
/// first submit to the last completion signalled.
fn in_flight_rate(
    device: &Device,
    eventfd: &EventFd,
    src: &Buffer,
    dst: &Buffer,
    size: u64,
) -> Result<f64, TransferError> {
    let part = size.div_ceil(IN_FLIGHT);
    let started = Instant::now();
    let mut tickets = Vec::new();
    for index in 0..IN_FLIGHT {
        let offset = index * part;
        if offset >= size {
            break;
        }
        let request = CopyRequest {
            src: src.handle,
            src_offset: offset,
            dst: dst.handle,
            dst_offset: offset,
            size: part.min(size - offset),
            choice: PathChoice::Direct,
        };
        tickets.push(device.submit_copy(&request, Some(eventfd.as_fd()))?);
    }
    wait_for_signals(eventfd, tickets.len() as u64)?;
    let rate = gbps(size, started.elapsed().as_secs_f64());
    for ticket in tickets {
        reap(device, ticket)?;
    }
    Ok(rate)
}

/// The asynchronous view between `from` and `to` (a pair with a direct path).
pub fn async_copies(
    device: &Device,
    from: GpuRef,
    to: GpuRef,
    config: &BenchConfig,
) -> Result<AsyncBench, TransferError> {
    with_buffers(device, |held| {
        let size = config.size;
        let (src, expected) = held.source(from, size, 0xa5c)?;
        let dst = held.alloc(to.gpu_id, size)?;
        device.map_peer(dst.handle, from.gpu_id)?;
        let eventfd = EventFd::new().map_err(|source| DeviceError::Os {
            op: "eventfd",
            source,
        })?;
        // Alternating rounds, as the pairs view does: both kinds see the same host.
        let (mut in_flight_best, mut sync_best) = (0.0f64, 0.0f64);
        for _ in 0..config.iterations.max(1) {
            sync_best = sync_best.max(copy_rate(device, &src, &dst, size, 1, PathChoice::Direct)?);
            in_flight_best =
                in_flight_best.max(in_flight_rate(device, &eventfd, &src, &dst, size)?);
        }
        device.mmap(&dst)?.as_mut_slice().fill(0);
        in_flight_rate(device, &eventfd, &src, &dst, size)?;
        let mut verified = held.checksum(&dst)? == expected;
        let [small, page] = LATENCY_SIZES
            .map(|bytes| CopyRequest::whole(src.handle, dst.handle, bytes, PathChoice::Direct));
        device.mmap(&dst)?.as_mut_slice().fill(0);
        let latency_64_us = latency_us(device, &eventfd, small, config.latency_iterations)?;
        let latency_4k_us = latency_us(device, &eventfd, page, config.latency_iterations)?;
        let page_bytes = page.size as usize;
        verified &= checksum(&device.mmap(&src)?.as_slice()[..page_bytes])
            == checksum(&device.mmap(&dst)?.as_slice()[..page_bytes]);
        Ok(AsyncBench {
            from: from.node,
            to: to.node,
            latency_64_us,
            latency_4k_us,
            in_flight: IN_FLIGHT,
            size_bytes: size,
            in_flight_gbps: in_flight_best,
            sync_gbps: sync_best,
            in_flight_over_sync: if sync_best > 0.0 {
                in_flight_best / sync_best
            } else {
                0.0
            },
            verified,
        })
    })
}
