//! Readers following the `generation_id` protocol race the republish of an unbind and a rebind,
//! again and again, and must never accept a torn tree (`device.republish_readers_never_accept_a_torn_tree`).
//!
//! The last GPU in bind order is unbound and bound again, so exactly two topologies are ever
//! complete: every GPU bound, and every GPU but that one. Each reader thread reads the tree the
//! way the runtime (and libhsakmt) does: `generation_id`, the tree, `generation_id` again, retry
//! when the two differ. A read it accepts must be one of the two topologies; an error after a
//! stable generation (a file missing, a dangling link, no tree at all) means it took a torn tree
//! for a stable one. Only retries that ran out (`Unstable`) are expected under such churn.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::sysfs::{read_topology, ReadError};

use crate::context::Context;
use crate::report::Outcome;
use crate::runner::TestOutput;

/// Concurrent readers.
const READERS: usize = 2;
/// Unbind/bind cycles.
const CYCLES: u32 = 20;
/// How long the readers may take, after the cycles, to finish a first read each (unbinding may
/// be quicker than one read of the tree).
const FIRST_READ_GRACE: Duration = Duration::from_secs(10);

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

fn read_shape(root: &Path) -> Result<Topology, String> {
    read_topology(root)
        .map(shape)
        .map_err(|error| format!("reading the tree at rest: {error}"))
}

fn reader(root: &Path, expected: &[Topology], stop: &AtomicBool, reads: &AtomicUsize) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let read = read_topology(root);
        reads.fetch_add(1, Ordering::Relaxed);
        match read {
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

/// Unbinds and binds the last GPU [`CYCLES`] times while [`READERS`] threads read the tree.
pub fn readers_never_accept_a_torn_tree(context: &Context) -> TestOutput {
    match race(context) {
        Ok(output) => output,
        Err(problem) => Outcome::fail(problem).into(),
    }
}

fn race(context: &Context) -> Result<TestOutput, String> {
    let root = context.module_topology_path();
    if !root.join("generation_id").exists() {
        return Ok(Outcome::skip("the hsa_p2p module's topology is not there").into());
    }
    let full = read_shape(&root)?;
    let Some(last) = full.nodes.iter().rev().find(|node| node.is_gpu()) else {
        return Ok(Outcome::skip("the module's topology has no GPU").into());
    };
    let address = last.pci_address().to_string();
    let driver = context.driver_path();
    if !driver.join(&address).exists() {
        return Ok(Outcome::skip(format!(
            "{address} is not bound to the hsa_p2p driver (it binds emulated GPUs only)"
        ))
        .into());
    }
    let rebind = |verb: &str| {
        std::fs::write(driver.join(verb), &address)
            .map_err(|error| format!("cannot {verb} {address}: {error}"))
    };
    rebind("unbind")?;
    let without_last = read_shape(&root);
    rebind("bind")?;
    let without_last = without_last?;
    if read_shape(&root)? != full {
        return Err(format!(
            "unbinding and binding {address} again did not restore the topology"
        ));
    }

    let expected = [full, without_last];
    let stop = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    let (tallies, cycled) = thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| scope.spawn(|| reader(&root, &expected, &stop, &reads)))
            .collect();
        let cycled = (0..CYCLES).try_for_each(|_| {
            rebind("unbind")?;
            rebind("bind")
        });
        let grace = Instant::now() + FIRST_READ_GRACE;
        while reads.load(Ordering::Relaxed) < READERS && Instant::now() < grace {
            thread::sleep(Duration::from_millis(1));
        }
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
        "{CYCLES} unbind/bind cycles of {address}, {READERS} readers: {accepted} reads \
         accepted, {unstable} gave up on a changing generation, {} torn",
        torn.len()
    );
    let outcome = match torn.first() {
        Some(first) => Outcome::fail(format!("{summary}; first: {first}")),
        None if accepted == 0 => Outcome::fail(format!("{summary}: no read to judge")),
        None => Outcome::Pass,
    };
    Ok(TestOutput::with_notes(outcome, vec![summary]))
}
