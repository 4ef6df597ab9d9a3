//! The options every command that boots a machine shares (`vm`, `vm-test`, `bench`), and the
//! plain settings the code below the command line works with.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::{GuestFile, Initramfs, VmConfig};
use crate::flavour::{Flavour, FlavourArgs};

/// Where the guest finds the module.
pub const GUEST_MODULE: &str = "/hsa_p2p.ko";

/// The script step that loads the module (a failed step when it cannot).
pub fn load_module_step() -> String {
    format!("insmod {GUEST_MODULE} || fail insmod")
}

/// `--module`, `--timeout`, `--verbose`, `--debug`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct GuestOptions {
    /// Module to load (default: build it with `cargo xtask build`).
    #[arg(long, value_name = "KO")]
    pub module: Option<PathBuf>,
    /// Timeout per machine in seconds (default: 180 for vm, 300 for vm-test, 600 for bench;
    /// multiplied by 4 with `--debug`, and by 2, 3, 4 ... for machines of 5-8, 9-12, 13-16 ...
    /// GPUs).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Echo the guest console.
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub flavour: FlavourArgs,
}

/// How to run a guest.
#[derive(Clone, Debug)]
pub struct GuestSettings {
    /// The module to load.
    pub module: PathBuf,
    /// Timeout per machine.
    pub timeout: Duration,
    /// Echo the guest console.
    pub echo: bool,
    /// The kernel flavour to boot (the module is built for it).
    pub flavour: Flavour,
}

impl GuestOptions {
    /// The settings, with the module built when none was given and `default_timeout` when
    /// no timeout was.
    pub fn settings(&self, default_timeout: Duration) -> Result<GuestSettings> {
        let flavour = self.flavour.flavour();
        Ok(GuestSettings {
            module: crate::kmod::given_or_built(self.module.as_deref(), self.flavour)?,
            timeout: flavour.timeout(self.timeout.map_or(default_timeout, Duration::from_secs)),
            echo: self.verbose,
            flavour,
        })
    }
}

impl GuestSettings {
    /// Applies the timeout and echo to `config` and gives it an initramfs running `script`, with
    /// the module at [`GUEST_MODULE`] and `tools`.
    pub fn apply(&self, config: &mut VmConfig, script: String, tools: Vec<GuestFile>) {
        config.timeout = self.timeout;
        config.echo = self.echo;
        let mut files = vec![GuestFile::host(GUEST_MODULE, &self.module)];
        files.extend(tools);
        config.initramfs = Initramfs { script, files };
    }
}
