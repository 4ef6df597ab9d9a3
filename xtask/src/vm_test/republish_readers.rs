//! In the guest: readers following the `generation_id` protocol race the republish of an
//! unbind and a rebind, again and again, and must never accept a torn tree.
//!
//! The last GPU in bind order is unbound and bound again, so exactly two topologies are ever
//! complete: every GPU bound, and every GPU but that one. Each reader thread reads the tree the
//! way the runtime (and libhsakmt) does: `generation_id`, the tree, `generation_id` again, retry
//! when the two differ. A read it accepts must be one of the two topologies; an error after a
//! stable generation (a file missing, a dangling link) means it took a torn tree for a stable
//! one; "no topology" means the tree vanished while the module was loaded. Only retries that
//! ran out (`Unstable`) are expected under such churn.
//!
//! Result line: `@@CHECK republish_readers_never_accept_a_torn_tree ok|FAIL …`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use anyhow::{bail, Context, Result};
use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::sysfs::{read_topology, ReadError, HSA_P2P_TOPOLOGY};

/// The driver's sysfs directory.
const DRIVER: &str = "/sys/bus/pci/drivers/hsa_p2p";
/// Concurrent readers.
const READERS: usize = 2;

/// What the readers saw.
#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    unstable: usize,
    /// Accepted trees that are neither expected topology, or errors after a stable generation.
    torn: Vec<String>,
}

/// A topology without its generation, to compare trees of different generations.
fn shape(mut topology: Topology) -> Topology {
    topology.generation_id = 0;
    topology
}

fn read_shape(root: &Path) -> Result<Topology> {
    Ok(shape(read_topology(root).with_context(|| {
        format!("cannot read {} at rest", root.display())
    })?))
}

fn reader(root: &Path, expected: &[Topology], stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        match read_topology(root) {
            Ok(topology) => {
                tally.accepted += 1;
                let topology = shape(topology);
                if !expected.contains(&topology) {
                    tally.torn.push(format!(
                        "accepted a tree with {} nodes that is neither expected topology",
                        topology.nodes.len()
                    ));
                }
            }
            Err(ReadError::Unstable { .. }) => tally.unstable += 1,
            Err(error) => tally
                .torn
                .push(format!("after a stable generation: {error}")),
        }
    }
    tally
}

/// Unbinds and binds the last GPU `cycles` times while [`READERS`] threads read the tree.
pub fn republish_readers(cycles: u32) -> Result<()> {
    let root = Path::new(HSA_P2P_TOPOLOGY);
    let full = read_shape(root)?;
    let last = full
        .nodes
        .iter()
        .rev()
        .find(|node| node.is_gpu())
        .context("the published topology has no GPU")?;
    let address = last.pci_address().to_string();
    let rebind = |verb: &str| {
        std::fs::write(format!("{DRIVER}/{verb}"), &address)
            .with_context(|| format!("cannot {verb} {address}"))
    };
    rebind("unbind")?;
    let without_last = read_shape(root)?;
    rebind("bind")?;
    if read_shape(root)? != full {
        bail!("unbinding and binding {address} again did not restore the topology");
    }

    let expected = [full, without_last];
    let stop = AtomicBool::new(false);
    let (tallies, cycled) = thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| scope.spawn(|| reader(root, &expected, &stop)))
            .collect();
        let cycled = (0..cycles).try_for_each(|_| {
            rebind("unbind")?;
            rebind("bind")
        });
        stop.store(true, Ordering::Relaxed);
        let tallies: Vec<Tally> = readers
            .into_iter()
            .map(|r| r.join().expect("reader thread panicked"))
            .collect();
        (tallies, cycled)
    });
    cycled?;
    let accepted: usize = tallies.iter().map(|t| t.accepted).sum();
    let unstable: usize = tallies.iter().map(|t| t.unstable).sum();
    let torn: Vec<&String> = tallies.iter().flat_map(|t| &t.torn).collect();
    let summary = format!(
        "{cycles} unbind/bind cycles of {address}, {READERS} readers: {accepted} reads accepted, \
         {unstable} gave up on a changing generation, {} torn",
        torn.len()
    );
    let name = "republish_readers_never_accept_a_torn_tree";
    if let Some(first) = torn.first() {
        println!("@@CHECK {name} FAIL {summary}; first: {first}");
        bail!("readers accepted torn trees");
    }
    if accepted == 0 {
        println!("@@CHECK {name} FAIL {summary}: no read to judge");
        bail!("no reader finished a read");
    }
    println!("@@CHECK {name} ok");
    println!("{summary}");
    Ok(())
}
