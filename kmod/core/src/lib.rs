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
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod builder;
pub mod compose;
pub mod descriptor;
pub mod facts;
pub mod gate;
pub mod gpu_id;
pub mod link;
pub mod node;
pub mod pcie;
pub mod properties;
#[cfg(feature = "alloc")]
pub mod topology;
