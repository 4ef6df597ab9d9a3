//! Peer transfers through the `hsa_p2p` module's `/dev/hsa_p2p`: every p2p link carries a
//! direct copy, every pair a staged one, and every copy arrives intact (users report P2P that
//! is advertised but corrupts data, so each one is verified); a pair without a p2p link is
//! refused a peer mapping.
//!
//! The cases talk to a [`TransferBackend`]; on a machine it is [`DeviceBackend`], built on
//! `hsa_p2p_runtime::device`. Without the device (module not loaded) they are skipped with the
//! reason, never passed.

use std::path::PathBuf;

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::device::transfer::{copy_verified, gpus, GpuRef};
use hsa_p2p_runtime::device::{CopyPath, Device, DeviceError, PathChoice};

use crate::context::{Context, ModuleState};
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

/// Why a transfer did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The module refused the pair (what a pair without a p2p link must get).
    #[error("refused: {0}")]
    Refused(String),
    /// The transfer was attempted and failed, or arrived corrupt.
    #[error("{0}")]
    Failed(String),
}

/// Moves bytes between the GPUs of the module's topology.
pub trait TransferBackend {
    /// Copies [`COPY_BYTES`] from `from` to `to` along `path`; Ok when the destination reads
    /// back exactly what the source held and the kernel took `path`.
    fn copy_verified(&self, from: GpuRef, to: GpuRef, path: CopyPath) -> Result<(), TransferError>;
    /// Asks the module to map a buffer of `owner` for `accessor`; Ok when it granted it.
    fn map_peer(&self, accessor: GpuRef, owner: GpuRef) -> Result<(), TransferError>;
}

/// The backend of a machine: `/dev/hsa_p2p` and the module's published topology.
pub struct DeviceBackend {
    device: Device,
    topology: Topology,
}

impl DeviceBackend {
    /// Opens the device node under the context's root.
    pub fn open(context: &Context, topology: Topology) -> Result<Self, DeviceError> {
        let node: PathBuf = context.root().join("dev/hsa_p2p");
        Ok(DeviceBackend {
            device: Device::open_at(&node)?,
            topology,
        })
    }
}

fn failed(error: impl std::fmt::Display) -> TransferError {
    TransferError::Failed(error.to_string())
}

impl TransferBackend for DeviceBackend {
    fn copy_verified(&self, from: GpuRef, to: GpuRef, path: CopyPath) -> Result<(), TransferError> {
        let choice = match path {
            CopyPath::Direct => PathChoice::Direct,
            CopyPath::Staged => PathChoice::Staged,
        };
        let seed = u64::from(from.node) << 32 | u64::from(to.node);
        let report = copy_verified(
            &self.device,
            &self.topology,
            from,
            to,
            COPY_BYTES,
            choice,
            seed,
        )
        .map_err(failed)?;
        if report.path != path {
            return Err(failed(format!(
                "asked for a {} copy, the kernel made a {} one",
                path.name(),
                report.path.name()
            )));
        }
        if !report.verified {
            return Err(failed(format!(
                "{} copy arrived corrupt: source checksum {:#x}, destination {:#x}",
                path.name(),
                report.source_checksum,
                report.destination_checksum
            )));
        }
        Ok(())
    }

    fn map_peer(&self, accessor: GpuRef, owner: GpuRef) -> Result<(), TransferError> {
        let buffer = self.device.alloc(owner.gpu_id, 4096).map_err(failed)?;
        let mapped = self.device.map_peer(buffer.handle, accessor.gpu_id);
        if mapped.is_ok() {
            let _ = self.device.unmap_peer(buffer.handle, accessor.gpu_id);
        }
        let _ = self.device.free(buffer.handle);
        match mapped {
            Ok(_) => Ok(()),
            Err(error @ DeviceError::NoPeerLink { .. }) => {
                Err(TransferError::Refused(error.to_string()))
            }
            Err(error) => Err(failed(error)),
        }
    }
}

/// The backend and topology for `context`, or the output that ends the test.
fn backend(context: &Context) -> Result<(Box<dyn TransferBackend>, Topology), TestOutput> {
    if let ModuleState::Unavailable(reason) = &context.module {
        return Err(Outcome::skip(reason.clone()).into());
    }
    let topology = match context.module_tree() {
        Some(Ok(tree)) => tree.clone(),
        Some(Err(error)) => {
            return Err(Outcome::fail(format!("unreadable topology: {error}")).into())
        }
        None if context.module == ModuleState::Loaded => {
            return Err(Outcome::fail("the module is loaded but publishes no topology").into())
        }
        None => return Err(Outcome::skip("the hsa_p2p module is not loaded").into()),
    };
    match DeviceBackend::open(context, topology.clone()) {
        Ok(device) => Ok((Box::new(device), topology)),
        // Loaded by the caller: its device must be there.
        Err(error) if context.module == ModuleState::Loaded => {
            Err(Outcome::fail(error.to_string()).into())
        }
        Err(error) => Err(Outcome::skip(error.to_string()).into()),
    }
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

/// Runs `check` on the `pairs` of `topology`; skips when there is none.
pub fn check_pairs(
    backend: &dyn TransferBackend,
    topology: &Topology,
    pairs: Pairs,
    check: fn(&dyn TransferBackend, GpuRef, GpuRef) -> Result<(), String>,
) -> TestOutput {
    let all = gpus(topology);
    let selected: Vec<(GpuRef, GpuRef)> = all
        .iter()
        .flat_map(|&from| all.iter().map(move |&to| (from, to)))
        .filter(|(from, to)| from != to)
        .filter(|(from, to)| {
            let linked = topology.p2p_link(from.node, to.node).is_some();
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
            check(backend, from, to)
                .err()
                .map(|problem| format!("node {} -> node {}: {problem}", from.node, to.node))
        })
        .collect();
    TestOutput {
        outcome: Outcome::from_problems(problems),
        notes: vec![format!("{} ordered pairs", selected.len())],
    }
}

fn direct(backend: &dyn TransferBackend, from: GpuRef, to: GpuRef) -> Result<(), String> {
    backend
        .copy_verified(from, to, CopyPath::Direct)
        .map_err(|error| error.to_string())
}

fn staged(backend: &dyn TransferBackend, from: GpuRef, to: GpuRef) -> Result<(), String> {
    backend
        .copy_verified(from, to, CopyPath::Staged)
        .map_err(|error| error.to_string())
}

fn refused(backend: &dyn TransferBackend, accessor: GpuRef, owner: GpuRef) -> Result<(), String> {
    match backend.map_peer(accessor, owner) {
        Err(TransferError::Refused(_)) => Ok(()),
        Err(TransferError::Failed(error)) => {
            Err(format!("failed instead of being refused: {error}"))
        }
        Ok(()) => Err("mapped although the pair has no p2p link".into()),
    }
}

fn on_pairs(
    context: &Context,
    pairs: Pairs,
    check: fn(&dyn TransferBackend, GpuRef, GpuRef) -> Result<(), String>,
) -> TestOutput {
    match backend(context) {
        Ok((backend, topology)) => check_pairs(backend.as_ref(), &topology, pairs, check),
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
    use std::cell::RefCell;

    use hsa_p2p_runtime::sysfs::read_topology;

    use super::*;

    /// Records calls; corrupts copies into `corrupt_to` and grants every mapping when `lax`.
    struct Fake {
        calls: RefCell<Vec<(u32, u32, &'static str)>>,
        corrupt_to: Option<u32>,
        lax: bool,
        topology: Topology,
    }

    impl TransferBackend for Fake {
        fn copy_verified(
            &self,
            from: GpuRef,
            to: GpuRef,
            path: CopyPath,
        ) -> Result<(), TransferError> {
            self.calls
                .borrow_mut()
                .push((from.node, to.node, path.name()));
            if self.corrupt_to == Some(to.node) {
                return Err(TransferError::Failed("copy arrived corrupt".into()));
            }
            Ok(())
        }

        fn map_peer(&self, accessor: GpuRef, owner: GpuRef) -> Result<(), TransferError> {
            self.calls
                .borrow_mut()
                .push((accessor.node, owner.node, "map"));
            if self.lax || self.topology.p2p_link(accessor.node, owner.node).is_some() {
                Ok(())
            } else {
                Err(TransferError::Refused("EXDEV".into()))
            }
        }
    }

    fn mixed_three_gpus() -> Topology {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../runtime/tests/fixtures/predicted/mixed-three-gpus");
        read_topology(&root).unwrap()
    }

    fn fake(corrupt_to: Option<u32>, lax: bool) -> Fake {
        Fake {
            calls: RefCell::new(Vec::new()),
            corrupt_to,
            lax,
            topology: mixed_three_gpus(),
        }
    }

    #[test]
    fn direct_copies_cover_exactly_the_p2p_links() {
        let backend = fake(None, false);
        let output = check_pairs(&backend, &backend.topology, Pairs::Linked, direct);
        assert_eq!(output.outcome, Outcome::Pass);
        assert_eq!(
            *backend.calls.borrow(),
            [(1, 2, "direct"), (2, 1, "direct")]
        );
    }

    #[test]
    fn a_corrupt_copy_fails_naming_the_pair() {
        let backend = fake(Some(2), false);
        let output = check_pairs(&backend, &backend.topology, Pairs::All, staged);
        let Outcome::Fail(problems) = output.outcome else {
            panic!("{output:?}")
        };
        assert_eq!(
            problems,
            [
                "node 1 -> node 2: copy arrived corrupt",
                "node 3 -> node 2: copy arrived corrupt"
            ]
        );
    }

    #[test]
    fn refusals_are_required_for_unlinked_pairs() {
        let strict = fake(None, false);
        let output = check_pairs(&strict, &strict.topology, Pairs::Unlinked, refused);
        assert_eq!(output.outcome, Outcome::Pass);
        assert_eq!(strict.calls.borrow().len(), 4);
        let lax = fake(None, true);
        let output = check_pairs(&lax, &lax.topology, Pairs::Unlinked, refused);
        assert!(output.outcome.is_failure());
    }

    #[test]
    fn without_the_device_the_cases_skip() {
        let context = Context::new("/nonexistent-root", ModuleState::Unknown);
        for test in TESTS {
            let output = (test.run)(&context);
            assert!(output.outcome.is_skip(), "{}: {output:?}", test.name);
        }
    }
}
