//! Shared helpers of the integration tests: fixture paths and the KTAP grammar checker.

#![allow(dead_code)]

pub mod ktap_grammar;

use std::path::PathBuf;

use hsa_p2p_hwtests::report::{Case, Outcome};
use hsa_p2p_hwtests::{Context, Filter, ModuleState};

/// The fixture machine `name` (a directory standing in for `/`).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The cases of the `kfd` suite on the fixture machine `name`.
pub fn run_kfd(name: &str) -> Vec<Case> {
    let context = Context::new(fixture(name), ModuleState::Unknown);
    hsa_p2p_hwtests::run("kfd-fixture", &context, &Filter::new(["kfd.*"])).cases
}

/// Fails naming the first of `cases` (run on `machine`) that did not pass.
pub fn assert_all_pass(machine: &str, cases: &[Case]) {
    for case in cases {
        assert_eq!(
            case.outcome,
            Outcome::Pass,
            "{machine}: {}: {:?}",
            case.name,
            case.outcome
        );
    }
}
