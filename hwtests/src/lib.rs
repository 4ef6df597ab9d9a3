//! Hardware-in-the-loop tests of hsa-p2p.
//!
//! Named test cases ([`cases`]) validate a machine's topologies — amdkfd's own and the
//! `hsa_p2p` module's — against the shared rules applied to the machine's PCI facts
//! ([`machine_facts`], [`kfd_validation`]), and the module's device ([`device`]): peer
//! transfers, answers to bad input, handles, mappings and unbinding, and the module under
//! attack (isolation, lifetimes, concurrency; helpers for it in [`guest`]). The
//! [`runner`] runs them (with an `--only` filter) into a [`report::Run`] that renders as KTAP,
//! JUnit XML and JSON. `cargo xtask test-hw` drives it on a real machine; the `hwtests` binary
//! runs it anywhere, including against a fixture directory standing in for `/`.

pub mod cases;
pub mod context;
pub mod device;
pub mod guest;
pub mod report;
pub mod rocm;
pub mod runner;
pub mod stress;

// The facts and the validation live in the runtime, which `p2pctl why` shares them with.
pub use hsa_p2p_runtime::{kfd_validation, machine_facts};

pub use context::{Context, ModuleState};
pub use runner::Filter;

/// Every test, one line each: `-` marks those `filter` deselects, then `suite.name` and what it
/// checks.
pub fn listing(filter: &Filter) -> String {
    cases::all()
        .iter()
        .map(|test| {
            let selected = if filter.selects(&test.full_name()) {
                ' '
            } else {
                '-'
            };
            format!("{selected} {:<45} {}\n", test.full_name(), test.description)
        })
        .collect()
}

/// Runs every test `filter` selects against `context`.
pub fn run(name: &str, context: &Context, filter: &Filter) -> report::Run {
    runner::run(name, &cases::all(), filter, context)
}
