//! Asynchronous copies (`async_copy`): `COPY_SUBMIT` starts a copy on the copy engines and
//! returns a ticket, `COPY_WAIT` reports its end and reaps it, an eventfd counts the ends.
//! Several copies are in flight per file, at unaligned offsets and sizes (heads and tails of
//! the engines' blocks), and every byte is verified, those around the copied ranges included;
//! a running copy polls `EAGAIN`; one file may have only so many copies unreaped (`EBUSY`);
//! a reaped ticket names nothing (`ENOENT`); closing the file cancels its copies at once and
//! still signals their eventfd. Copies are held in flight with the module's
//! `delay_copy_chunk_ms` fault point. (An unbind under a copy is `isolation`'s.)

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use hsa_p2p_core::abi::{self, AbiError, CopySubmitArgs, CopyWaitArgs};
use hsa_p2p_runtime::device::transfer::GpuRef;
use hsa_p2p_runtime::device::{random_bytes, Buffer, CopyPath, EventFd};

use crate::cases::device::with_session;
use crate::cases::transfer::{check_pairs, Pairs};
use crate::context::Context;
use crate::device::{
    map_for_peer, with_buffer_pair, Backend, Errno, Probe, Reply, Request, Session,
};
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// The `async_copy` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "async_copy",
        name: "direct_copies_in_flight_over_every_p2p_link_are_verified",
        description: "for every p2p link, several direct copies at unaligned offsets and sizes submitted at once all end with status 0, and every byte of the destination is as expected",
        run: direct_copies_in_flight_over_every_p2p_link_are_verified,
    },
    Test {
        suite: "async_copy",
        name: "staged_copies_in_flight_between_every_pair_are_verified",
        description: "for every ordered GPU pair, several staged copies at unaligned offsets and sizes submitted at once arrive intact",
        run: staged_copies_in_flight_between_every_pair_are_verified,
    },
    Test {
        suite: "async_copy",
        name: "the_eventfd_counts_every_end",
        description: "copies submitted with one eventfd add one each to its counter when they end",
        run: the_eventfd_counts_every_end,
    },
    Test {
        suite: "async_copy",
        name: "a_running_copy_polls_eagain_then_ends",
        description: "COPY_WAIT of a copy held in flight answers EAGAIN to a poll and a short timeout, then 0 once it ends, with its bytes copied",
        run: a_running_copy_polls_eagain_then_ends,
    },
    Test {
        suite: "async_copy",
        name: "submissions_beyond_the_limit_are_busy",
        description: "a file with max_async_copies_per_file copies unreaped is refused another with EBUSY, and may submit again once one is reaped",
        run: submissions_beyond_the_limit_are_busy,
    },
    Test {
        suite: "async_copy",
        name: "a_reaped_ticket_is_unknown",
        description: "COPY_WAIT of a ticket already reaped, or never issued, is ENOENT",
        run: a_reaped_ticket_is_unknown,
    },
    Test {
        suite: "async_copy",
        name: "closing_the_file_cancels_its_copies",
        description: "closing a file with a copy held in flight returns within a bound: the copy is cancelled, not finished",
        run: closing_the_file_cancels_its_copies,
    },
    Test {
        suite: "async_copy",
        name: "a_killed_process_does_not_wait_for_its_copies",
        description: "a process killed with a copy held in flight is reaped within a bound: its file's release cancels the copy",
        run: a_killed_process_does_not_wait_for_its_copies,
    },
    Test {
        suite: "async_copy",
        name: "a_cancelled_copy_signals_its_eventfd",
        description: "closing a file with a copy held in flight still signals the copy's eventfd",
        run: a_cancelled_copy_signals_its_eventfd,
    },
];

/// Bytes of each buffer of the in-flight cases.
const BUFFER: u64 = 4 << 20;

/// The copies submitted at once (source offset, destination offset, size): a page, then
/// ranges whose starts, ends and lengths are not multiples of anything the engines use, one
/// larger than a copy chunk, one split across engines; the destination ranges do not overlap,
/// and the bytes between them must stay as they were.
const RANGES: [(u64, u64, u64); 4] = [
    (0, 0, 4096),
    (1, 4099, 65_537),
    (70_001, 100_003, (1 << 20) + 7),
    (1_200_001, 1_200_005, (2 << 20) - 9),
];

/// How long the fault point holds a copy between two chunks in the cases that need one in
/// flight.
const HOLD_MS: u32 = 1000;

/// A new eventfd, or the skip of a case needing one on a kernel without them (built without
/// `CONFIG_EVENTFD`: the system call is `ENOSYS`).
fn eventfd_or_skip() -> Result<EventFd, TestOutput> {
    EventFd::new().map_err(|error| match error.raw_os_error() {
        Some(libc::ENOSYS) => {
            Outcome::skip("this kernel has no eventfd (built without CONFIG_EVENTFD)").into()
        }
        _ => Outcome::fail(format!("eventfd: {error}")).into(),
    })
}

/// `COPY_SUBMIT` of `size` bytes from `src` at `src_offset` to `dst` at `dst_offset` along
/// `path`, signalling `eventfd`.
fn submit_request(
    (src, src_offset): (&Buffer, u64),
    (dst, dst_offset): (&Buffer, u64),
    size: u64,
    path: CopyPath,
    eventfd: i32,
) -> Request {
    Request::CopySubmit(CopySubmitArgs {
        src_handle: src.handle,
        dst_handle: dst.handle,
        src_offset,
        dst_offset,
        size,
        flags: match path {
            CopyPath::Direct => abi::COPY_DIRECT,
            CopyPath::Staged => abi::COPY_STAGED,
        },
        eventfd,
        ticket: 0,
    })
}

/// `COPY_SUBMIT` that must succeed: its ticket.
fn submit(backend: &dyn Backend, request: &Request) -> Result<u64, String> {
    match backend.submit(request) {
        Ok(Reply::Submitted(ticket)) => Ok(ticket),
        other => Err(format!("submit: {other:?}")),
    }
}

/// `COPY_WAIT` of `ticket` with `timeout_ns`: the argument block written back, or the errno.
fn wait(backend: &dyn Backend, ticket: u64, timeout_ns: u64) -> Result<CopyWaitArgs, Errno> {
    let request = Request::CopyWait(CopyWaitArgs {
        ticket,
        timeout_ns,
        ..CopyWaitArgs::default()
    });
    match backend.submit(&request) {
        Ok(Reply::Waited(done)) => Ok(done),
        // A reply COPY_WAIT never gives: errno 0 fails every check of the callers.
        Ok(_) => Err(Errno(0)),
        Err(refusal) => Err(refusal.errno),
    }
}

/// `COPY_WAIT` until the copy ends, which must be with status 0 along `path`.
fn wait_ok(backend: &dyn Backend, ticket: u64, path: CopyPath) -> Result<(), String> {
    let done = wait(backend, ticket, abi::WAIT_FOREVER)
        .map_err(|errno| format!("wait for ticket {ticket}: {errno}"))?;
    let expected = match path {
        CopyPath::Direct => abi::PATH_DIRECT,
        CopyPath::Staged => abi::PATH_STAGED,
    };
    if done.status != 0 || done.path != expected {
        return Err(format!(
            "ticket {ticket} ended with status {} along path {}, expected 0 along {expected}",
            done.status, done.path
        ));
    }
    Ok(())
}

/// The first offset where `got` differs from `expected`, described.
fn first_difference(got: &[u8], expected: &[u8]) -> Option<String> {
    if got.len() != expected.len() {
        return Some(format!("{} bytes, expected {}", got.len(), expected.len()));
    }
    got.iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .map(|at| {
            format!(
                "byte {at} is {:#04x}, expected {:#04x}",
                got[at], expected[at]
            )
        })
}

/// Two buffers on `from` and `to` filled with distinct random streams (the destination mapped
/// for the source when `path` is direct between two GPUs); frees them when `check` is done.
fn with_pair_buffers(
    backend: &dyn Backend,
    (from, to): (GpuRef, GpuRef),
    path: CopyPath,
    check: impl FnOnce(&Buffer, &Buffer) -> Result<(), String>,
) -> Result<(), String> {
    with_buffer_pair(backend, (from, to), BUFFER, |src, dst| {
        backend.fill(src, seed(from, to, 0))?;
        backend.fill(dst, seed(from, to, 1))?;
        if path == CopyPath::Direct && from != to {
            map_for_peer(backend, dst, from)?;
        }
        check(src, dst)
    })
}

fn seed(from: GpuRef, to: GpuRef, which: u64) -> u64 {
    0xa5c0_0000_0000 | u64::from(from.node) << 24 | u64::from(to.node) << 8 | which
}

/// Submits every copy of [`RANGES`] at once from `src` to `dst` along `path`, signalling
/// `eventfd`, and waits for them: each must end with status 0.
fn submit_ranges_and_wait(
    backend: &dyn Backend,
    (src, dst): (&Buffer, &Buffer),
    path: CopyPath,
    eventfd: i32,
) -> Result<(), String> {
    let mut tickets = Vec::new();
    for (src_offset, dst_offset, size) in RANGES {
        let request = submit_request((src, src_offset), (dst, dst_offset), size, path, eventfd);
        tickets.push(submit(backend, &request)?);
    }
    tickets
        .into_iter()
        .try_for_each(|ticket| wait_ok(backend, ticket, path))
}

/// Submits every copy of [`RANGES`] at once from `from` to `to` along `path`, waits for them,
/// and checks every byte of the destination.
fn copies_in_flight_verified(
    session: &Session,
    from: GpuRef,
    to: GpuRef,
    path: CopyPath,
) -> Result<(), String> {
    let backend = session.backend.as_ref();
    with_pair_buffers(backend, (from, to), path, |src, dst| {
        submit_ranges_and_wait(backend, (src, dst), path, abi::NO_EVENTFD)?;
        let source = random_bytes(BUFFER as usize, seed(from, to, 0));
        let mut expected = random_bytes(BUFFER as usize, seed(from, to, 1));
        for (src_offset, dst_offset, size) in RANGES {
            let (s, d, n) = (src_offset as usize, dst_offset as usize, size as usize);
            expected[d..d + n].copy_from_slice(&source[s..s + n]);
        }
        match first_difference(&backend.read(dst)?, &expected) {
            None => Ok(()),
            Some(difference) => Err(format!(
                "{} copies node {} -> {}: {difference}",
                path.name(),
                from.node,
                to.node
            )),
        }
    })
}

fn direct_copies_in_flight_over_every_p2p_link_are_verified(context: &Context) -> TestOutput {
    match Session::open(context) {
        Ok(session) => check_pairs(&session, Pairs::Linked, |session, from, to| {
            copies_in_flight_verified(session, from, to, CopyPath::Direct)
        }),
        Err(output) => output,
    }
}

fn staged_copies_in_flight_between_every_pair_are_verified(context: &Context) -> TestOutput {
    match Session::open(context) {
        Ok(session) => check_pairs(&session, Pairs::All, |session, from, to| {
            copies_in_flight_verified(session, from, to, CopyPath::Staged)
        }),
        Err(output) => output,
    }
}

fn the_eventfd_counts_every_end(context: &Context) -> TestOutput {
    let eventfd = match eventfd_or_skip() {
        Ok(eventfd) => eventfd,
        Err(output) => return output,
    };
    with_session(context, |session| {
        let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
        let backend = session.backend.as_ref();
        let fd = eventfd.as_fd().as_raw_fd();
        let counted = with_pair_buffers(backend, (gpu, gpu), CopyPath::Direct, |src, dst| {
            submit_ranges_and_wait(backend, (src, dst), CopyPath::Direct, fd)?;
            match eventfd.take() {
                Ok(signals) if signals == RANGES.len() as u64 => Ok(()),
                other => Err(format!(
                    "the eventfd counted {other:?} ends of {} copies",
                    RANGES.len()
                )),
            }
        });
        Ok(Outcome::from_problems(counted.err().into_iter().collect()).into())
    })
}

/// The fault point holding copies for `ms` between chunks, disarmed on drop.
struct Hold<'a>(&'a dyn Backend);

impl<'a> Hold<'a> {
    fn arm(backend: &'a dyn Backend, ms: u32) -> Result<Self, String> {
        backend.delay_copy_chunks(ms)?;
        Ok(Hold(backend))
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let _ = self.0.delay_copy_chunks(0);
    }
}

fn a_running_copy_polls_eagain_then_ends(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
        let backend = session.backend.as_ref();
        let problems = with_pair_buffers(backend, (gpu, gpu), CopyPath::Direct, |src, dst| {
            let hold = Hold::arm(backend, HOLD_MS)?;
            let request = submit_request((src, 0), (dst, 0), BUFFER, CopyPath::Direct, -1);
            let ticket = submit(backend, &request)?;
            let polled = wait(backend, ticket, 0);
            let short = wait(backend, ticket, 1_000_000);
            drop(hold);
            let ended = wait_ok(backend, ticket, CopyPath::Direct);
            let not_ended = Errno::of(AbiError::NotEnded);
            if polled.as_ref().err() != Some(&not_ended) || short.as_ref().err() != Some(&not_ended)
            {
                return Err(format!(
                    "a copy held in flight: poll gave {polled:?}, a 1 ms wait {short:?}, \
                     expected EAGAIN twice"
                ));
            }
            ended?;
            let expected = random_bytes(BUFFER as usize, seed(gpu, gpu, 0));
            match first_difference(&backend.read(dst)?, &expected) {
                None => Ok(()),
                Some(difference) => Err(format!("the held copy: {difference}")),
            }
        });
        Ok(Outcome::from_problems(problems.err().into_iter().collect()).into())
    })
}

fn submissions_beyond_the_limit_are_busy(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
        let backend = session.backend.as_ref();
        let limit = abi::DEFAULT_MAX_ASYNC_COPIES_PER_FILE;
        let problems = with_pair_buffers(backend, (gpu, gpu), CopyPath::Direct, |src, dst| {
            let request = submit_request((src, 0), (dst, 0), 4096, CopyPath::Direct, -1);
            let mut tickets = Vec::new();
            for _ in 0..limit {
                tickets.push(submit(backend, &request)?);
            }
            let beyond = backend.submit(&request);
            let reaped = wait_ok(backend, tickets.remove(0), CopyPath::Direct);
            let again = submit(backend, &request);
            tickets.extend(again.as_ref().ok());
            for ticket in tickets {
                wait_ok(backend, ticket, CopyPath::Direct)?;
            }
            match beyond {
                Err(refusal) if refusal == Errno::of(AbiError::TooManyCopies) => {}
                other => {
                    return Err(format!(
                        "copy {} beyond the limit of {limit}: {other:?}, expected EBUSY",
                        limit + 1
                    ))
                }
            }
            reaped?;
            again
                .map(drop)
                .map_err(|problem| format!("after reaping one: {problem}"))
        });
        Ok(Outcome::from_problems(problems.err().into_iter().collect()).into())
    })
}

fn a_reaped_ticket_is_unknown(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
        let backend = session.backend.as_ref();
        let problems = with_pair_buffers(backend, (gpu, gpu), CopyPath::Direct, |src, dst| {
            let request = submit_request((src, 0), (dst, 0), 4096, CopyPath::Direct, -1);
            let ticket = submit(backend, &request)?;
            wait_ok(backend, ticket, CopyPath::Direct)?;
            let unknown = Errno::of(AbiError::UnknownHandle);
            let mut problems = Vec::new();
            for (what, ticket) in [("reaped", ticket), ("never issued", 0)] {
                let again = wait(backend, ticket, abi::WAIT_FOREVER);
                if again.as_ref().err() != Some(&unknown) {
                    problems.push(format!(
                        "wait for a {what} ticket: {again:?}, expected ENOENT"
                    ));
                }
            }
            problems.is_empty().then_some(()).ok_or(problems.join("; "))
        });
        Ok(Outcome::from_problems(problems.err().into_iter().collect()).into())
    })
}

/// Longest a close may take with one copy held in flight: the copy stops at its next chunk,
/// so at most one hold and one chunk; finishing it instead takes several holds.
const CLOSE_BOUND: Duration = Duration::from_millis(2 * HOLD_MS as u64 + 500);

/// Closes a file with a copy held in flight (signalling `eventfd`): how long the close took.
fn close_with_a_copy_in_flight(session: &Session, eventfd: i32) -> Result<Duration, String> {
    let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
    let other = session.backend.reopen()?;
    let hold = Hold::arm(session.backend.as_ref(), HOLD_MS)?;
    // 16 chunks: held for several seconds even when split across engines.
    let size = 16 << 20;
    let src = other.alloc(gpu, size)?;
    let dst = other.alloc(gpu, size)?;
    let request = submit_request((&src, 0), (&dst, 0), size, CopyPath::Direct, eventfd);
    submit(other.as_ref(), &request)?;
    let closing = Instant::now();
    drop(other);
    let took = closing.elapsed();
    drop(hold);
    Ok(took)
}

fn closing_the_file_cancels_its_copies(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let took = close_with_a_copy_in_flight(session, abi::NO_EVENTFD)?;
        Ok(if took > CLOSE_BOUND {
            Outcome::fail(format!(
                "closing the file took {took:?} with a copy in flight (bound {CLOSE_BOUND:?})"
            ))
        } else {
            Outcome::Pass
        }
        .into())
    })
}

fn a_cancelled_copy_signals_its_eventfd(context: &Context) -> TestOutput {
    let eventfd = match eventfd_or_skip() {
        Ok(eventfd) => eventfd,
        Err(output) => return output,
    };
    with_session(context, |session| {
        close_with_a_copy_in_flight(session, eventfd.as_fd().as_raw_fd())?;
        Ok(match eventfd.take() {
            Ok(1) => Outcome::Pass,
            other => Outcome::fail(format!(
                "the cancelled copy's eventfd counted {other:?} ends, expected 1"
            )),
        }
        .into())
    })
}

/// Longest a probe process may take to start, allocate, submit a held copy and be reaped after
/// killing itself: its release cancels the copy (at most one hold), where finishing it takes
/// many holds.
const KILLED_BOUND: Duration = Duration::from_millis(4 * HOLD_MS as u64);

fn a_killed_process_does_not_wait_for_its_copies(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
        let hold = Hold::arm(session.backend.as_ref(), HOLD_MS)?;
        let started = Instant::now();
        let outcome = session.backend.probe(&Probe::DieWithCopyInFlight {
            gpu_id: gpu.gpu_id,
            size: 16 << 20,
        });
        let took = started.elapsed();
        drop(hold);
        let mut problems = Vec::new();
        if outcome.signal != Some(crate::device::probe::SIGKILL) {
            problems.push(format!("the probe did not die of SIGKILL: {outcome:?}"));
        }
        if took > KILLED_BOUND {
            problems.push(format!(
                "the killed process was reaped after {took:?} with a copy in flight (bound \
                 {KILLED_BOUND:?})"
            ));
        }
        Ok(Outcome::from_problems(problems).into())
    })
}
