//! hsa-p2p user space: the KFD topology reader, the predictor, peer-access reports and the
//! explanations behind `p2pctl`.
pub mod apu;
pub mod bench_report;
pub mod cli;
pub mod device;
pub mod explain;
pub mod export;
pub mod host_bridge;
pub mod kfd_validation;
pub mod libhsakmt;
pub mod machine_facts;
pub mod node_names;
pub use hsa_p2p_core::p2pdma;
pub mod peers;
pub mod predict;
pub mod report;
pub mod snapshot;
pub mod spec;
pub mod stats;
pub mod sysfs;
pub mod views;
