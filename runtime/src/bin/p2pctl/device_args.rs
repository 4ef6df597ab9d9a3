//! `--root` and `--device` of the commands that use `/dev/hsa_p2p` (`copy`, `bench`).

use std::path::PathBuf;

use clap::Args;

use hsa_p2p_runtime::device::DEVICE_PATH;
use hsa_p2p_runtime::sysfs::HSA_P2P_TOPOLOGY;

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
