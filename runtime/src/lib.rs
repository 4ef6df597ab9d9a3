//! hsa-p2p runtime
pub mod predict;
pub mod spec;
