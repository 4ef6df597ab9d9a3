//! Asynchronous copies in the benchmark: the submit-to-completion latency of one copy (64 B
//! and 4 KiB), as a program that `poll`s its eventfd sees it, and several copies in flight
//! against one synchronous copy of the same bytes. On a kernel without eventfds
//! (`CONFIG_EVENTFD` unset: `eventfd(2)` fails with `ENOSYS`) the completion is waited for with
//! `COPY_WAIT` instead, and the report says so.

use std::os::fd::AsFd;
use std::time::Instant;

use super::super::{checksum, Buffer, CopyRequest, Device, DeviceError, EventFd, PathChoice};
use super::super::{Ticket, WaitTimeout};
use super::{copy_rate, median, with_buffers, AsyncBench, BenchConfig, GpuRef, LATENCY_SIZES};
use crate::bench_report::gbps;
use crate::device::transfer::TransferError;

/// Copies in flight at once in the throughput row.
pub const IN_FLIGHT: u64 = 4;

/// How the benchmark learns that a copy ended.
enum Completion {
    /// `poll` on an eventfd the copies signal, then `COPY_WAIT` reaps them.
    EventFd(EventFd),
    /// `COPY_WAIT` without timeout (no eventfds in this kernel).
    CopyWait,
}

impl Completion {
    fn new() -> Result<Self, TransferError> {
        match EventFd::new() {
            Ok(eventfd) => Ok(Completion::EventFd(eventfd)),
            Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => Ok(Completion::CopyWait),
            Err(source) => Err(DeviceError::Os {
                op: "eventfd",
                source,
            }
            .into()),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Completion::EventFd(_) => "eventfd",
            Completion::CopyWait => "copy_wait",
        }
    }

    fn submit(&self, device: &Device, request: &CopyRequest) -> Result<Ticket, TransferError> {
        let eventfd = match self {
            Completion::EventFd(eventfd) => Some(eventfd.as_fd()),
            Completion::CopyWait => None,
        };
        Ok(device.submit_copy(request, eventfd)?)
    }

    /// Blocks until every copy of `tickets` has ended; returns when they had (the time taken
    /// by the reaping that follows an eventfd is not counted) and reaps them.
    fn wait_all(&self, device: &Device, tickets: &[Ticket]) -> Result<Instant, TransferError> {
        match self {
            Completion::EventFd(eventfd) => {
                wait_for_signals(eventfd, tickets.len() as u64)?;
                let ended = Instant::now();
                for &ticket in tickets {
                    reap(device, ticket)?;
                }
                Ok(ended)
            }
            Completion::CopyWait => {
                for &ticket in tickets {
                    reap(device, ticket)?;
                }
                Ok(Instant::now())
            }
        }
    }
}

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

/// Median submit-to-completion time of `request`, microseconds.
fn latency_us(
    device: &Device,
    completion: &Completion,
    request: CopyRequest,
    iterations: u32,
) -> Result<f64, TransferError> {
    let mut samples = Vec::new();
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        let ticket = completion.submit(device, &request)?;
        let ended = completion.wait_all(device, &[ticket])?;
        samples.push(ended.duration_since(started).as_secs_f64() * 1e6);
    }
    Ok(median(&samples).expect("`iterations.max(1)` samples, durations (no NaN)"))
}

/// `size` bytes from `src` to `dst` as [`IN_FLIGHT`] copies submitted at once; GB/s from the
/// first submit to the last completion signalled.
fn in_flight_rate(
    device: &Device,
    completion: &Completion,
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
        tickets.push(completion.submit(device, &request)?);
    }
    let ended = completion.wait_all(device, &tickets)?;
    Ok(gbps(size, ended.duration_since(started).as_secs_f64()))
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
        let completion = Completion::new()?;
        // Alternating rounds, as the pairs view does: both kinds see the same host.
        let (mut in_flight_best, mut sync_best) = (0.0f64, 0.0f64);
        for _ in 0..config.iterations.max(1) {
            sync_best = sync_best.max(copy_rate(device, &src, &dst, size, 1, PathChoice::Direct)?);
            in_flight_best =
                in_flight_best.max(in_flight_rate(device, &completion, &src, &dst, size)?);
        }
        device.mmap(&dst)?.as_mut_slice().fill(0);
        in_flight_rate(device, &completion, &src, &dst, size)?;
        let mut verified = held.checksum(&dst)? == expected;
        let [small, page] = LATENCY_SIZES
            .map(|bytes| CopyRequest::whole(src.handle, dst.handle, bytes, PathChoice::Direct));
        device.mmap(&dst)?.as_mut_slice().fill(0);
        let latency_64_us = latency_us(device, &completion, small, config.latency_iterations)?;
        let latency_4k_us = latency_us(device, &completion, page, config.latency_iterations)?;
        let page_bytes = page.size as usize;
        verified &= checksum(&device.mmap(&src)?.as_slice()[..page_bytes])
            == checksum(&device.mmap(&dst)?.as_slice()[..page_bytes]);
        Ok(AsyncBench {
            from: from.node,
            to: to.node,
            completion: completion.name().to_owned(),
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
