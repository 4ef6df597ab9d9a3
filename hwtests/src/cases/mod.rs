//! Every named test, by suite: amdkfd's topology (`kfd`), the module's topology (`hsa_p2p`),
//! the ROCm tools' view of the GPU pairs (`rocm`), peer transfers (`transfer`), asynchronous
//! copies (`async_copy`), peer mappings as
//! the platform decides them (`platform`), the device's answers to bad input (`abi`), the module
//! under attack (`isolation`), GPUs pulled from their slots and added back (`hotplug`) and the
//! device's behaviour across files, processes and unbinding (`device`).
//!
//! A suite is one file here declaring `pub const TESTS: &[Test]`, plus its line in [`SUITES`];
//! the device suites talk to the device only through [`crate::device::Session`], so that the
//! host tests run them against the fake backend (`isolation` needs the real device: see its
//! file).

pub mod abi;
pub mod async_copy;
pub mod device;
pub mod hotplug;
pub mod isolation;
pub mod kfd;
pub mod module_topology;
pub mod platform;
mod republish;
pub mod rocm;
pub mod transfer;
mod tree_checks;

use crate::runner::Test;

/// Every suite, in run order (`device` last: its pair copies stay in VRAM for the host).
pub const SUITES: &[&[Test]] = &[
    kfd::TESTS,
    module_topology::TESTS,
    rocm::TESTS,
    transfer::TESTS,
    async_copy::TESTS,
    platform::TESTS,
    abi::TESTS,
    // Its cases unbind and rebind GPUs, and put them back in their bind order.
    isolation::TESTS,
    // Its cases remove and add GPUs, and put them back in their bind order.
    hotplug::TESTS,
    device::TESTS,
];

/// Every test, in run order.
pub fn all() -> Vec<Test> {
    SUITES.concat()
}
