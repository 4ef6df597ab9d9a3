//! Every named test, by suite: amdkfd's topology (`kfd`), the module's topology (`hsa_p2p`)
//! and peer transfers (`transfer`).

pub mod kfd;
pub mod module_topology;
pub mod transfer;
mod tree_checks;

use crate::runner::Test;

/// Every test, in run order.
pub fn all() -> Vec<Test> {
    [kfd::TESTS, module_topology::TESTS, transfer::TESTS].concat()
}
