//! Shared helpers of the integration tests: fixture paths and the KTAP grammar checker.

#![allow(dead_code)]

pub mod ktap_grammar;

use std::path::PathBuf;

/// The fixture machine `name` (a directory standing in for `/`).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
