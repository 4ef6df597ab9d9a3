//! The device's behaviour beyond single requests (`device`): its node's mode, handles private
//! to their open file, user mappings revoked when their buffer is freed or its GPU unbound,
//! buffers freed with their file, and copies between every ordered GPU pair, left in VRAM and
//! described in the report so that an outside observer (the emulated machine's host) can
//! verify the bytes too.

use hsa_p2p_core::abi::{self, AbiError};
use hsa_p2p_runtime::device::transfer::GpuRef;
use hsa_p2p_runtime::device::{Buffer, CopyPath};

use crate::context::Context;
use crate::device::{Backend, Errno, Probe, Reply, Request, Session};
use crate::report::{CopyRecord, Outcome};
use crate::runner::{Test, TestOutput};

/// The `device` suite; the pair copies come last, so that nothing overwrites what they leave
/// in VRAM.
pub const TESTS: &[Test] = &[
    Test {
        suite: "device",
        name: "node_is_0660",
        description: "/dev/hsa_p2p is a character device owned by root:root with mode 0660",
        run: node_is_0660,
    },
    Test {
        suite: "device",
        name: "another_process_cannot_use_a_handle",
        description: "a buffer handle names nothing in another process's open file",
        run: another_process_cannot_use_a_handle,
    },
    Test {
        suite: "device",
        name: "the_owner_still_has_its_buffer",
        description: "another process's attempts leave the owner's buffer in place",
        run: the_owner_still_has_its_buffer,
    },
    Test {
        suite: "device",
        name: "freed_buffer_mapping_faults",
        description: "touching the user mapping of a freed buffer kills the process with SIGBUS",
        run: freed_buffer_mapping_faults,
    },
    Test {
        suite: "device",
        name: "unbound_gpu_buffer_copy_fails",
        description: "a copy from a buffer of an unbound GPU fails with ENODEV",
        run: unbound_gpu_buffer_copy_fails,
    },
    Test {
        suite: "device",
        name: "unbound_gpu_buffer_mapping_faults",
        description: "touching the user mapping of an unbound GPU's buffer kills the process with SIGBUS",
        run: unbound_gpu_buffer_mapping_faults,
    },
    Test {
        suite: "device",
        name: "republish_readers_never_accept_a_torn_tree",
        description: "threads reading the module's topology by the generation_id protocol while the last GPU is unbound and bound 20 times accept only complete trees",
        run: super::republish::readers_never_accept_a_torn_tree,
    },
    Test {
        suite: "device",
        name: "closing_the_file_frees_its_buffers",
        description: "a GPU filled from one open file has the same room again after it is closed",
        run: closing_the_file_frees_its_buffers,
    },
    Test {
        suite: "device",
        name: "copies_between_every_ordered_pair",
        description: "random data copied between every ordered GPU pair arrives intact, direct exactly where the topology has a p2p link",
        run: copies_between_every_ordered_pair,
    },
];

/// Seed of the source buffer on node `node`.
pub fn source_seed(node: u32) -> u64 {
    0x5eed_0000 + u64::from(node)
}

/// Runs `check` on a session of `context`: its outcome, or a failure with its problem.
pub fn with_session(
    context: &Context,
    check: impl FnOnce(&Session) -> Result<TestOutput, String>,
) -> TestOutput {
    match Session::open(context) {
        Ok(session) => check(&session).unwrap_or_else(|problem| Outcome::fail(problem).into()),
        Err(output) => output,
    }
}

fn node_is_0660(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let mode = session.backend.node_mode()?;
        let expected = u32::from(abi::DEVICE_MODE);
        Ok(Outcome::from_problems(
            [
                (!mode.char_device).then(|| "not a character device".to_string()),
                (mode.permissions != expected)
                    .then(|| format!("mode {:o}, expected {expected:o}", mode.permissions)),
                ((mode.uid, mode.gid) != (0, 0))
                    .then(|| format!("owned by {}:{}", mode.uid, mode.gid)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        )
        .into())
    })
}

/// Allocates a buffer, lets another process try its handle, and returns both results.
fn foreign_attempt(session: &Session) -> Result<(Result<(), String>, Buffer), String> {
    let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
    let buffer = session.backend.alloc(gpu, 4096)?;
    let outcome = session.backend.probe(&Probe::ForeignHandle {
        handle: buffer.handle,
        gpu_id: gpu.gpu_id,
    });
    let foreign = if outcome.succeeded() {
        Ok(())
    } else {
        Err(format!("the other process: {outcome:?}"))
    };
    Ok((foreign, buffer))
}

fn another_process_cannot_use_a_handle(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let (foreign, buffer) = foreign_attempt(session)?;
        session.backend.free(buffer.handle)?;
        Ok(Outcome::from_problems(foreign.err().into_iter().collect()).into())
    })
}

fn the_owner_still_has_its_buffer(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let (_, buffer) = foreign_attempt(session)?;
        let info = session.backend.submit(&Request::Info {
            handle: buffer.handle,
        });
        session.backend.free(buffer.handle)?;
        Ok(match info {
            Ok(Reply::Info(_)) => Outcome::Pass,
            other => Outcome::fail(format!("INFO of the owner's buffer: {other:?}")),
        }
        .into())
    })
}

fn freed_buffer_mapping_faults(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
        let outcome = session
            .backend
            .probe(&Probe::TouchAfterFree { gpu_id: gpu.gpu_id });
        Ok(if outcome.died_of_sigbus() {
            Outcome::Pass
        } else {
            Outcome::fail(format!("expected death by SIGBUS, got {outcome:?}"))
        }
        .into())
    })
}

/// Unbinds the last GPU under a probe that maps one of its buffers, binds it again; the
/// probe's outcome.
fn through_unbind(
    session: &Session,
    context: &Context,
) -> Result<crate::device::ProbeOutcome, TestOutput> {
    let gpu: GpuRef = *session
        .gpus
        .last()
        .ok_or_else(|| TestOutput::from(Outcome::skip("the module's topology has no GPU")))?;
    let address = session
        .topology
        .node(gpu.node)
        .map(|node| node.pci_address().to_string())
        .ok_or_else(|| TestOutput::from(Outcome::fail("the GPU's node vanished")))?;
    let driver = context.driver_path();
    if !driver.join(&address).exists() {
        return Err(Outcome::skip(format!(
            "{address} is not bound to the hsa_p2p driver (it binds emulated GPUs only)"
        ))
        .into());
    }
    let outcome = session.backend.probe(&Probe::TouchAfterUnbind {
        gpu_id: gpu.gpu_id,
        address: address.clone(),
        driver: driver.clone(),
    });
    if let Err(error) = crate::guest::pci_bind::bind(&driver, &address) {
        return Err(Outcome::fail(error).into());
    }
    Ok(outcome)
}

fn unbound_gpu_buffer_copy_fails(context: &Context) -> TestOutput {
    with_session(context, |session| {
        Ok(match through_unbind(session, context) {
            Ok(outcome) if outcome.output.lines().any(|line| line == "copy: ok") => {
                Outcome::Pass.into()
            }
            Ok(outcome) => Outcome::fail(format!("the probe: {outcome:?}")).into(),
            Err(output) => output,
        })
    })
}

fn unbound_gpu_buffer_mapping_faults(context: &Context) -> TestOutput {
    with_session(context, |session| {
        Ok(match through_unbind(session, context) {
            Ok(outcome) if outcome.died_of_sigbus() => Outcome::Pass.into(),
            Ok(outcome) => {
                Outcome::fail(format!("expected death by SIGBUS, got {outcome:?}")).into()
            }
            Err(output) => output,
        })
    })
}

/// Allocates 4 MiB buffers on `gpu` until the VRAM is full; how many fit.
fn fill_gpu(backend: &dyn Backend, gpu: GpuRef) -> Result<usize, String> {
    let mut count = 0;
    loop {
        match backend.submit(&Request::Alloc {
            gpu_id: gpu.gpu_id,
            size: 4 << 20,
        }) {
            Ok(_) => count += 1,
            Err(errno) if errno == Errno::of(AbiError::NoVram) => return Ok(count),
            Err(errno) => return Err(format!("alloc {}: {errno}", count + 1)),
        }
    }
}

fn closing_the_file_frees_its_buffers(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let gpu = session.first_gpu().map_err(|_| "no GPU".to_string())?;
        let first = fill_gpu(session.backend.reopen()?.as_ref(), gpu)?;
        let second = fill_gpu(session.backend.reopen()?.as_ref(), gpu)?;
        Ok(if first == 0 || first != second {
            Outcome::fail(format!(
                "{first} buffers fit before closing, {second} after"
            ))
        } else {
            Outcome::Pass
        }
        .into())
    })
}

fn copies_between_every_ordered_pair(context: &Context) -> TestOutput {
    with_session(context, |session| {
        let size = context.pair_copy_bytes;
        let backend = session.backend.as_ref();
        let mut sources = Vec::new();
        for &gpu in &session.gpus {
            let buffer = backend.alloc(gpu, size)?;
            let sum = backend.fill(&buffer, source_seed(gpu.node))?;
            sources.push((gpu, buffer, sum));
        }
        let mut problems = Vec::new();
        let mut copies = Vec::new();
        for &(from, src, sum) in &sources {
            for &(to, _, _) in sources.iter().filter(|(to, _, _)| *to != from) {
                // Destinations stay allocated until the run ends: nothing may reuse them.
                let dst = backend.alloc(to, size)?;
                let (record, pair_problems) = copy_pair(session, from, src, to, dst, sum)?;
                problems.extend(
                    pair_problems
                        .into_iter()
                        .map(|p| format!("node {} -> node {}: {p}", from.node, to.node)),
                );
                copies.push(record);
            }
        }
        Ok(TestOutput {
            outcome: Outcome::from_problems(problems),
            notes: vec![format!("{} ordered pairs of {size} bytes", copies.len())],
            copies,
        })
    })
}

/// One copy: mapped for the accessor and direct when linked, refused direct and staged when
/// not, read back; its record and problems.
fn copy_pair(
    session: &Session,
    from: GpuRef,
    src: Buffer,
    to: GpuRef,
    dst: Buffer,
    expected: u64,
) -> Result<(CopyRecord, Vec<String>), String> {
    let backend = session.backend.as_ref();
    let linked = session.linked(from, to);
    let mut problems = Vec::new();
    let mapped = backend.submit(&Request::MapPeer {
        handle: dst.handle,
        peer_gpu_id: from.gpu_id,
    });
    let mapping = match (linked, mapped) {
        (true, Ok(Reply::Mapped(mapping))) => Some(mapping),
        (false, Err(refusal))
            if refusal == Errno::of(AbiError::NoPeerLink) && refusal.denial_reasons != 0 =>
        {
            None
        }
        (linked, other) => {
            problems.push(format!(
                "map for peer (p2p link: {linked}) gave {other:?} (a refusal must carry its \
                 denial reasons)"
            ));
            None
        }
    };
    let size = src.size.min(dst.size);
    let direct = backend.submit(&Request::copy(
        src.handle,
        dst.handle,
        size,
        CopyPath::Direct,
    ));
    let (path, direct_refused) = match (linked, direct) {
        (true, Ok(Reply::Copied(outcome))) => (outcome.path, false),
        (false, Err(errno)) if errno == Errno::of(AbiError::NoPeerLink) => {
            match backend.submit(&Request::copy(
                src.handle,
                dst.handle,
                size,
                CopyPath::Staged,
            )) {
                Ok(Reply::Copied(outcome)) => (outcome.path, true),
                other => return Err(format!("staged copy gave {other:?}")),
            }
        }
        (linked, other) => {
            problems.push(format!("direct copy (p2p link: {linked}) gave {other:?}"));
            (CopyPath::Direct, false)
        }
    };
    let expected_path = if linked {
        CopyPath::Direct
    } else {
        CopyPath::Staged
    };
    if path != expected_path {
        problems.push(format!("took the {} path", path.name()));
    }
    let got = backend.checksum(&dst)?;
    if got != expected {
        problems.push(format!("checksum {got:016x}, expected {expected:016x}"));
    }
    let phys_address = match backend.submit(&Request::Info { handle: dst.handle }) {
        Ok(Reply::Info(info)) => info.phys_address,
        other => return Err(format!("INFO of the destination: {other:?}")),
    };
    Ok((
        CopyRecord {
            from: from.node,
            to: to.node,
            src_offset: src.vram_offset,
            dst_offset: dst.vram_offset,
            size,
            seed: source_seed(from.node),
            path,
            direct_refused,
            map_type: mapping.map_or(0, |m| m.map_type),
            bus_address: mapping.map_or(0, |m| m.bus_address),
            phys_address,
        },
        problems,
    ))
}
