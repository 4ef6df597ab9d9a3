//! The pure core of hsa-p2p.
//!
//! One definition of the KFD topology model, the upstream peer-to-peer rules and the sysfs
//! property text format, shared by the kernel module (which mounts these files at its crate
//! root with `#[path]`, the rust/pin-init precedent) and the host runtime.
//!
//! Rules for every file in this crate, so that the kernel module can include it unchanged:
//! `no_std`, no allocation (except in [`topology`], behind the `alloc` feature), no floating
//! point, no panics on any input, and sibling modules referred to as `crate::<module>`.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
// The lints the kernel build adds on top of clippy::all (Makefile `rust_common_flags`), so that
// host clippy finds what `make CLIPPY=1` would.
#![warn(
    clippy::as_ptr_cast_mut,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ignored_unit_patterns,
    clippy::mut_mut,
    clippy::needless_bitwise_bool,
    clippy::ptr_as_ptr,
    clippy::ptr_cast_constness,
    clippy::ref_as_ptr,
    clippy::float_arithmetic
)]
// No panics on any input: nothing that panics on a value it did not check.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod abi;
pub mod builder;
pub mod compose;
pub mod descriptor;
pub mod facts;
pub mod gate;
pub mod gpu_id;
pub mod link;
pub mod link_finish;
pub mod node;
pub mod numa;
pub mod p2pdma;
pub mod pcie;
pub mod properties;
#[cfg(feature = "alloc")]
pub mod topology;
