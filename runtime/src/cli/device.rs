//! The commands that use `/dev/hsa_p2p` (`copy`, `bench`) and the options they share.

use std::path::PathBuf;

use clap::Args;

use super::JsonArgs;

use crate::device::bench::BenchOptions;
use crate::device::DEVICE_PATH;
use crate::spec::ByteSize;
use crate::sysfs::HSA_P2P_TOPOLOGY;

/// Where the module publishes its topology and its device node.
#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// The module's topology directory.
    #[arg(long, default_value = HSA_P2P_TOPOLOGY)]
    pub root: PathBuf,
    /// The device node.
    #[arg(long, default_value = DEVICE_PATH)]
    pub device: PathBuf,
}

/// `p2pctl copy`.
#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Source GPU: node id, `nodeN`, or `gpuN` (the N-th GPU).
    #[arg(long)]
    pub from: String,
    /// Destination GPU (same forms).
    #[arg(long)]
    pub to: String,
    /// Bytes to copy (suffixes K, M, G).
    #[arg(long, default_value = "64M")]
    pub size: ByteSize,
    /// Copy through a system-memory bounce buffer even when a direct path exists.
    #[arg(long, conflicts_with = "direct")]
    pub staged: bool,
    /// Fail (with the module's EXDEV) instead of staging when there is no direct path.
    #[arg(long)]
    pub direct: bool,
    /// Seed of the random source data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Submit the copy asynchronously (COPY_SUBMIT), wait for its eventfd with poll(2), then
    /// reap it (COPY_WAIT) and print its status.
    #[arg(long = "async")]
    pub asynchronous: bool,
    #[command(flatten)]
    pub target: DeviceArgs,
    #[command(flatten)]
    pub output: JsonArgs,
}

/// `p2pctl bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub options: BenchOptions,
    #[command(flatten)]
    pub target: DeviceArgs,
    #[command(flatten)]
    pub output: JsonArgs,
}
