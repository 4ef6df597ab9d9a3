//! Peer transfers through the `hsa_p2p` module's `/dev/hsa_p2p`: every p2p link carries a
//! direct copy, every pair a staged one, and every copy arrives intact (users report P2P that
//! is advertised but corrupts data, so each one is verified); a pair without a p2p link is
//! refused a peer mapping.
//!
//! The cases talk to the device through a [`Session`]'s backend. Without the device (module
//! not loaded) they are skipped with the reason, never passed.

use hsa_p2p_core::abi::AbiError;
use hsa_p2p_runtime::device::transfer::GpuRef;
use hsa_p2p_runtime::device::CopyPath;

use crate::context::Context;
use crate::device::{map_for_peer, with_buffer_pair, Errno, Reply, Request, Session};
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// The `transfer` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "transfer",
        name: "direct_copy_over_every_p2p_link_is_verified",
        description: "for every p2p link, a direct copy from the accessor into the owner's VRAM arrives intact",
        run: direct_copy_over_every_p2p_link_is_verified,
    },
    Test {
        suite: "transfer",
        name: "staged_copy_between_every_pair_is_verified",
        description: "for every ordered GPU pair, a copy staged through system memory arrives intact",
        run: staged_copy_between_every_pair_is_verified,
    },
    Test {
        suite: "transfer",
        name: "pairs_without_p2p_link_are_refused",
        description: "a GPU without a p2p link to another is refused a mapping of its VRAM",
        run: pairs_without_p2p_link_are_refused,
    },
];

/// Bytes moved per copy.
pub const COPY_BYTES: u64 = 1 << 20;

/// Copies [`COPY_BYTES`] of random data from `from` to `to` along `path` (mapping the
/// destination for the source first when direct) and reads them back; frees both buffers.
pub fn copy_verified(
    session: &Session,
    from: GpuRef,
    to: GpuRef,
    path: CopyPath,
) -> Result<(), String> {
    let backend = session.backend.as_ref();
    with_buffer_pair(backend, (from, to), COPY_BYTES, |src, dst| {
        let seed = u64::from(from.node) << 32 | u64::from(to.node);
        let expected = backend.fill(src, seed)?;
        if path == CopyPath::Direct {
            map_for_peer(backend, dst, from)?;
        }
        let taken = match backend.submit(&Request::copy(src.handle, dst.handle, COPY_BYTES, path)) {
            Ok(Reply::Copied(outcome)) => outcome.path,
            other => return Err(format!("{} copy: {other:?}", path.name())),
        };
        if taken != path {
            return Err(format!(
                "asked for a {} copy, the kernel made a {} one",
                path.name(),
                taken.name()
            ));
        }
        let got = backend.checksum(dst)?;
        if got != expected {
            return Err(format!(
                "{} copy arrived corrupt: source checksum {expected:#x}, destination {got:#x}",
                path.name()
            ));
        }
        Ok(())
    })
}

/// Which ordered pairs a case covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairs {
    /// Pairs with a p2p link (accessor -> owner).
    Linked,
    /// Pairs without one.
    Unlinked,
    /// Every ordered pair of distinct GPUs.
    All,
}

/// Runs `check` on the `pairs` of the session's topology; skips when there is none.
pub fn check_pairs(
    session: &Session,
    pairs: Pairs,
    check: fn(&Session, GpuRef, GpuRef) -> Result<(), String>,
) -> TestOutput {
    let selected: Vec<(GpuRef, GpuRef)> = session
        .pairs()
        .into_iter()
        .filter(|&(from, to)| {
            let linked = session.linked(from, to);
            match pairs {
                Pairs::Linked => linked,
                Pairs::Unlinked => !linked,
                Pairs::All => true,
            }
        })
        .collect();
    if selected.is_empty() {
        let what = match pairs {
            Pairs::Linked => "GPU pair with a p2p link",
            Pairs::Unlinked => "GPU pair without a p2p link",
            Pairs::All => "pair of GPUs",
        };
        return Outcome::skip(format!("the module's topology has no {what}")).into();
    }
    let problems: Vec<String> = selected
        .iter()
        .filter_map(|&(from, to)| {
            check(session, from, to)
                .err()
                .map(|problem| format!("node {} -> node {}: {problem}", from.node, to.node))
        })
        .collect();
    TestOutput::with_notes(
        Outcome::from_problems(problems),
        vec![format!("{} ordered pairs", selected.len())],
    )
}

fn direct(session: &Session, from: GpuRef, to: GpuRef) -> Result<(), String> {
    copy_verified(session, from, to, CopyPath::Direct)
}

fn staged(session: &Session, from: GpuRef, to: GpuRef) -> Result<(), String> {
    copy_verified(session, from, to, CopyPath::Staged)
}

/// `accessor` must be refused a mapping of a buffer of `owner` with `EXDEV`.
fn refused(session: &Session, accessor: GpuRef, owner: GpuRef) -> Result<(), String> {
    let backend = session.backend.as_ref();
    let buffer = backend.alloc(owner, 4096)?;
    let request = Request::MapPeer {
        handle: buffer.handle,
        peer_gpu_id: accessor.gpu_id,
    };
    let mapped = backend.submit(&request);
    if mapped.is_ok() {
        let _ = backend.submit(&Request::UnmapPeer {
            handle: buffer.handle,
            peer_gpu_id: accessor.gpu_id,
        });
    }
    backend.free(buffer.handle)?;
    match mapped {
        Err(errno) if errno == Errno::of(AbiError::NoPeerLink) => Ok(()),
        Err(errno) => Err(format!("failed instead of being refused: {errno}")),
        Ok(_) => Err("mapped although the pair has no p2p link".into()),
    }
}

fn on_pairs(
    context: &Context,
    pairs: Pairs,
    check: fn(&Session, GpuRef, GpuRef) -> Result<(), String>,
) -> TestOutput {
    match Session::open(context) {
        Ok(session) => check_pairs(&session, pairs, check),
        Err(output) => output,
    }
}

fn direct_copy_over_every_p2p_link_is_verified(context: &Context) -> TestOutput {
    on_pairs(context, Pairs::Linked, direct)
}

fn staged_copy_between_every_pair_is_verified(context: &Context) -> TestOutput {
    on_pairs(context, Pairs::All, staged)
}

fn pairs_without_p2p_link_are_refused(context: &Context) -> TestOutput {
    on_pairs(context, Pairs::Unlinked, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::fake::{fake_context, Defect};

    fn session(defects: &[Defect]) -> Session {
        Session::open(&fake_context(defects)).unwrap()
    }

    #[test]
    fn direct_copies_cover_exactly_the_p2p_links() {
        let session = session(&[]);
        let output = check_pairs(&session, Pairs::Linked, direct);
        assert_eq!(output.outcome, Outcome::Pass);
        assert_eq!(output.notes, ["2 ordered pairs"]);
    }

    #[test]
    fn a_corrupt_copy_fails_naming_the_pair() {
        let session = session(&[Defect::CorruptsCopiesTo(2)]);
        let output = check_pairs(&session, Pairs::All, staged);
        let Outcome::Fail(problems) = output.outcome else {
            panic!("{output:?}")
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("node 1 -> node 2: staged copy arrived corrupt"));
        assert!(problems[1].starts_with("node 3 -> node 2: staged copy arrived corrupt"));
    }

    #[test]
    fn refusals_are_required_for_unlinked_pairs() {
        let output = check_pairs(&session(&[]), Pairs::Unlinked, refused);
        assert_eq!(output.outcome, Outcome::Pass);
        assert_eq!(output.notes, ["4 ordered pairs"]);
        let lax = session(&[Defect::MapsWithoutLink]);
        assert!(check_pairs(&lax, Pairs::Unlinked, refused)
            .outcome
            .is_failure());
    }

    #[test]
    fn without_the_device_the_cases_skip() {
        let context = Context::new("/nonexistent-root", crate::ModuleState::Unknown);
        for test in TESTS {
            let output = (test.run)(&context);
            assert!(output.outcome.is_skip(), "{}: {output:?}", test.name);
        }
    }
}
