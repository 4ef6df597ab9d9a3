//! Peer transfers through the `hsa_p2p` module: every allowed pair moves data both ways and the
//! data arrives intact (users report P2P that is advertised but corrupts or hangs, so every
//! transfer is verified); every refused pair is refused.
//!
//! The transfers go through a [`TransferBackend`]. The backend is to be built on
//! `hsa_p2p_runtime::device` (issue 4, in progress): until [`transfer_backend`] returns one,
//! these tests are skipped with that reason — never passed.

use hsa_p2p_core::topology::Topology;

use crate::context::{Context, ModuleState};
use crate::report::Outcome;
use crate::runner::{Test, TestOutput};

/// The `transfer` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "transfer",
        name: "push_to_peer_is_verified",
        description: "for every p2p link, data the accessor writes into the owner's VRAM reads back intact on the owner",
        run: push_to_peer_is_verified,
    },
    Test {
        suite: "transfer",
        name: "pull_from_peer_is_verified",
        description: "for every p2p link, data the owner holds reads back intact through the accessor",
        run: pull_from_peer_is_verified,
    },
    Test {
        suite: "transfer",
        name: "refused_pairs_are_rejected",
        description: "a pair without a p2p link cannot transfer",
        run: refused_pairs_are_rejected,
    },
];

/// Why a transfer did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The module refused the pair (what a pair without a p2p link must get).
    #[error("refused: {0}")]
    Refused(String),
    /// The transfer was attempted and failed.
    #[error("failed: {0}")]
    Failed(String),
}

/// Moves bytes between GPUs (KFD node ids of the module's tree).
pub trait TransferBackend {
    /// `accessor` writes `data` into `owner`'s VRAM at `offset` (`accessor == owner`: local).
    fn write(
        &self,
        accessor: u32,
        owner: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransferError>;
    /// `accessor` reads `len` bytes of `owner`'s VRAM at `offset` (`accessor == owner`: local).
    fn read(
        &self,
        accessor: u32,
        owner: u32,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, TransferError>;
}

/// THE HOOK: the transfer backend of this machine, or why there is none.
///
/// Wire `hsa_p2p_runtime::device` in here when issue 4 lands; nothing else needs to change.
pub fn transfer_backend(_context: &Context) -> Result<Box<dyn TransferBackend>, String> {
    Err(
        "no transfer backend: hsa_p2p_runtime::device (issue 4) is not available yet \
         (hook: hsa_p2p_hwtests::cases::transfer::transfer_backend)"
            .to_string(),
    )
}

/// Offset of the test buffer: past the descriptor page the module reserves.
const BUFFER_OFFSET: u64 = hsa_p2p_core::descriptor::DESCRIPTOR_PAGE_SIZE;
/// Test buffer size.
const BUFFER_LEN: usize = 1 << 20;

/// A pattern that differs per pair and per position, so a misplaced or stale block shows.
fn pattern(accessor: u32, owner: u32, salt: u8) -> Vec<u8> {
    (0..BUFFER_LEN)
        .map(|i| {
            (i as u32 ^ (accessor << 24) ^ (owner << 16)).wrapping_mul(2_654_435_761) as u8 ^ salt
        })
        .collect()
}

fn first_difference(expected: &[u8], actual: &[u8]) -> Option<usize> {
    if expected.len() != actual.len() {
        return Some(expected.len().min(actual.len()));
    }
    expected.iter().zip(actual).position(|(a, b)| a != b)
}

type PairCheck = fn(&dyn TransferBackend, u32, u32) -> Result<(), String>;

/// Runs `check` on every (accessor, owner) p2p link of the module's tree, or skips.
fn on_links(context: &Context, allowed: bool, check: PairCheck) -> TestOutput {
    if let ModuleState::Unavailable(reason) = &context.module {
        return Outcome::skip(reason.clone()).into();
    }
    let backend = match transfer_backend(context) {
        Ok(backend) => backend,
        Err(reason) => return Outcome::skip(reason).into(),
    };
    let tree: &Topology = match context.module_tree() {
        Some(Ok(tree)) => tree,
        Some(Err(error)) => return Outcome::fail(format!("unreadable topology: {error}")).into(),
        None => return Outcome::skip("the hsa_p2p module is not loaded").into(),
    };
    let gpus: Vec<u32> = tree
        .nodes
        .iter()
        .filter(|n| n.is_gpu())
        .map(|n| n.id)
        .collect();
    let pairs: Vec<(u32, u32)> = gpus
        .iter()
        .flat_map(|&from| gpus.iter().map(move |&to| (from, to)))
        .filter(|(from, to)| from != to && tree.p2p_link(*from, *to).is_some() == allowed)
        .collect();
    if pairs.is_empty() {
        let what = if allowed { "p2p link" } else { "refused pair" };
        return Outcome::skip(format!("the module's topology has no {what}")).into();
    }
    let problems: Vec<String> = pairs
        .iter()
        .filter_map(|&(accessor, owner)| {
            check(backend.as_ref(), accessor, owner)
                .err()
                .map(|problem| format!("node {accessor} -> node {owner}: {problem}"))
        })
        .collect();
    TestOutput {
        outcome: Outcome::from_problems(problems),
        notes: vec![format!(
            "{} pairs, {} KiB each",
            pairs.len(),
            BUFFER_LEN / 1024
        )],
    }
}

fn push(backend: &dyn TransferBackend, accessor: u32, owner: u32) -> Result<(), String> {
    let data = pattern(accessor, owner, 0x5a);
    backend
        .write(accessor, owner, BUFFER_OFFSET, &data)
        .map_err(|e| e.to_string())?;
    let back = backend
        .read(owner, owner, BUFFER_OFFSET, data.len())
        .map_err(|e| format!("local read-back {e}"))?;
    match first_difference(&data, &back) {
        None => Ok(()),
        Some(at) => Err(format!("data differs from byte {at} on")),
    }
}

fn pull(backend: &dyn TransferBackend, accessor: u32, owner: u32) -> Result<(), String> {
    let data = pattern(accessor, owner, 0xa5);
    backend
        .write(owner, owner, BUFFER_OFFSET, &data)
        .map_err(|e| format!("local write {e}"))?;
    let back = backend
        .read(accessor, owner, BUFFER_OFFSET, data.len())
        .map_err(|e| e.to_string())?;
    match first_difference(&data, &back) {
        None => Ok(()),
        Some(at) => Err(format!("data differs from byte {at} on")),
    }
}

fn refused(backend: &dyn TransferBackend, accessor: u32, owner: u32) -> Result<(), String> {
    match backend.write(accessor, owner, BUFFER_OFFSET, &[0u8; 64]) {
        Err(TransferError::Refused(_)) => Ok(()),
        Err(TransferError::Failed(error)) => {
            Err(format!("failed instead of being refused: {error}"))
        }
        Ok(()) => Err("the transfer went through although the pair has no p2p link".into()),
    }
}

fn push_to_peer_is_verified(context: &Context) -> TestOutput {
    on_links(context, true, push)
}

fn pull_from_peer_is_verified(context: &Context) -> TestOutput {
    on_links(context, true, pull)
}

fn refused_pairs_are_rejected(context: &Context) -> TestOutput {
    on_links(context, false, refused)
}
