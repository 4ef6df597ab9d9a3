//! Every named test, by suite: amdkfd's topology (`kfd`), the module's topology (`hsa_p2p`)
//! peer transfers (`transfer`) and the module under attack (`isolation`).

pub mod isolation;
pub mod kfd;
pub mod module_topology;
pub mod transfer;
mod tree_checks;

use crate::runner::Test;

/// Every test, in run order.
pub fn all() -> Vec<Test> {
    [
        kfd::TESTS,
        module_topology::TESTS,
        transfer::TESTS,
        // Last: its cases unbind and rebind GPUs.
        isolation::TESTS,
    ]
    .concat()
}
