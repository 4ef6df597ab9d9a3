//! Topology readers: user space following the `generation_id` protocol (read it, read the
//! tree, read it again) while GPUs come and go. Every snapshot the protocol accepts must be a
//! whole, consistent tree; a reader may be told to retry ("kept changing"), but the tree must
//! never be missing or malformed while the module is loaded.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hsa_p2p_runtime::sysfs::{read_topology, ReadError};

use super::tally::{Failure, Tally};

/// Reads `topology` until `stop` is set.
pub fn run(topology: &Path, seed: u64, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut rng = fastrand::Rng::with_seed(seed);
    while !stop.load(Ordering::Relaxed) {
        tally.op("read_topology");
        match read_topology(topology) {
            // The reader's own checks (counts, link ends, numbering) passed.
            Ok(_) => tally.topology_reads += 1,
            Err(ReadError::Unstable { .. }) => {}
            Err(error) => tally.fail(Failure::TornRead, error.to_string()),
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..5)));
    }
    tally
}
