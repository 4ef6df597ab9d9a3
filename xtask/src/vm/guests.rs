//! What every command that boots the machines of specs does the same way (`vm`, `vm-test`,
//! `stress`, `bench` and its bring-up measurement): once per command, the guests are prepared
//! ([`Guests`]: the flavour's kernel, the module, the static tools); then each machine
//! (`crate::emulation::emulate` of a spec, e.g. a [`shipped_spec`]) boots with a script
//! ([`Boot`]), and the command reads what the guest printed with [`super::protocol`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use hsa_p2p_runtime::spec::Spec;

use super::options::{GuestOptions, GuestSettings};
use super::{GuestFile, VmConfig, VmOutcome};
use crate::emulation::EmulatedMachine;
use crate::kernel::KernelEnv;
use crate::util;

/// The folder of the shipped specs.
pub fn topologies_dir() -> PathBuf {
    util::workspace_root().join("topologies")
}

/// The shipped spec `topologies/<file>`.
pub fn shipped_spec(file: &str) -> Result<Spec> {
    Ok(Spec::load(&topologies_dir().join(file))?)
}

/// A static program of ours that a guest runs, at `/bin/<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestTool {
    /// `p2pctl`: the runtime's command line.
    P2pctl,
    /// `hwtests`: the checks inside a machine.
    Hwtests,
}

impl GuestTool {
    /// Builds the static program: its file in the guest.
    fn build(self) -> Result<GuestFile> {
        Ok(match self {
            Self::P2pctl => GuestFile::host("/bin/p2pctl", crate::guest_tools::static_p2pctl()?),
            Self::Hwtests => GuestFile::host("/bin/hwtests", crate::guest_tools::static_hwtests()?),
        })
    }
}

/// What every machine of a command boots with.
#[derive(Clone, Debug)]
pub struct Guests {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The module, the timeout, the echo and the kernel flavour.
    pub settings: GuestSettings,
    /// The static tools in every guest.
    tools: Vec<GuestFile>,
}

impl Guests {
    /// From a command's options: the settings (the module built when none was given,
    /// `default_timeout` when no timeout was), the flavour's kernel as `cargo xtask kernel`
    /// built it, and the `tools` built.
    pub fn prepare(
        options: &GuestOptions,
        default_timeout: Duration,
        tools: &[GuestTool],
    ) -> Result<Self> {
        let settings = options.settings(default_timeout)?;
        let env = KernelEnv::load_flavour(settings.flavour)?;
        Self::new(env.bzimage, settings, tools)
    }

    /// With the kernel at hand, the `tools` built.
    pub fn new(kernel: PathBuf, settings: GuestSettings, tools: &[GuestTool]) -> Result<Self> {
        let tools = tools
            .iter()
            .map(|tool| tool.build())
            .collect::<Result<_>>()?;
        Ok(Self {
            kernel,
            settings,
            tools,
        })
    }

    /// The same guests without the tools: machines that only load the module.
    pub fn without_tools(&self) -> Self {
        Self {
            tools: Vec::new(),
            ..self.clone()
        }
    }

    /// The VM of `boot`: its machine, with the kernel, the settings and an initramfs of the
    /// script, the module and the tools.
    pub fn vm_config(&self, boot: Boot) -> VmConfig {
        let mut config = boot.machine.vm_config(boot.name, &self.kernel);
        config.keep_shm_files = boot.keep_shm_files;
        self.settings
            .apply(&mut config, boot.script, self.tools.clone());
        config.timeout *= timeout_factor(boot.machine.gpus.len());
        config
    }

    /// Boots `boot`'s machine and runs its script to the end.
    pub fn boot(&self, boot: Boot) -> Result<VmOutcome> {
        super::run(&self.vm_config(boot))
    }
}

/// GPUs a machine may have within the settings' timeout.
const GPUS_PER_TIMEOUT: usize = 4;

/// How many timeouts a machine of `gpus` GPUs gets: one per [`GPUS_PER_TIMEOUT`] GPUs begun.
/// Binding, publishing and tearing down grow with the GPUs and their p2p links (16 GPUs have
/// 240); measured on the debug flavour under load, the 16-GPU machine's bind, checks and ten
/// reloads ran past 20 minutes while the 2-GPU machines end in 2-3.
fn timeout_factor(gpus: usize) -> u32 {
    gpus.div_ceil(GPUS_PER_TIMEOUT).max(1) as u32
}

/// One boot of an emulated machine.
pub struct Boot<'a> {
    /// The run's name: its folder `target/vm/<name>/` and its console prefix.
    pub name: String,
    /// The machine.
    pub machine: &'a EmulatedMachine,
    /// The guest script (`protocol::script`).
    pub script: String,
    /// Keep the VRAM backing files after the run, for the host to read.
    pub keep_shm_files: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulation::emulate;
    use crate::flavour::Flavour;

    #[test]
    fn a_boot_gets_the_machine_the_script_the_module_and_the_tools() {
        let machine = emulate(&shipped_spec("same-switch.toml").unwrap(), "test").unwrap();
        let settings = GuestSettings {
            module: "/build/hsa_p2p.ko".into(),
            timeout: Duration::from_secs(7),
            echo: false,
            flavour: Flavour::Normal,
        };
        let guests = Guests {
            kernel: "/build/bzImage".into(),
            settings,
            tools: vec![GuestFile::host("/bin/hwtests", "/build/hwtests")],
        };
        let boot = |keep_shm_files| Boot {
            name: "test-run".into(),
            machine: &machine,
            script: "exit 0\n".into(),
            keep_shm_files,
        };
        let config = guests.vm_config(boot(true));
        assert_eq!(config.name, "test-run");
        assert_eq!(config.kernel, PathBuf::from("/build/bzImage"));
        assert_eq!(config.qemu_args, machine.qemu_args);
        assert_eq!(config.shm_files.len(), machine.gpus.len());
        assert!(config.keep_shm_files);
        assert_eq!(config.timeout, Duration::from_secs(7));
        assert!(!config.echo);
        assert_eq!(config.initramfs.script, "exit 0\n");
        let files: Vec<&str> = config
            .initramfs
            .files
            .iter()
            .map(|file| file.guest_path.as_str())
            .collect();
        assert_eq!(files, ["/hsa_p2p.ko", "/bin/hwtests"]);
        assert!(!guests.vm_config(boot(false)).keep_shm_files);
        let bare = guests.without_tools().vm_config(boot(false));
        assert_eq!(bare.initramfs.files.len(), 1);
        let sixteen = emulate(&shipped_spec("sixteen-gpus.toml").unwrap(), "test").unwrap();
        let large = guests.vm_config(Boot {
            machine: &sixteen,
            ..boot(false)
        });
        assert_eq!(large.timeout, Duration::from_secs(4 * 7));
    }

    #[test]
    fn the_timeout_grows_with_every_four_gpus_begun() {
        let factors: Vec<u32> = [0, 1, 2, 4, 5, 8, 9, 16].map(timeout_factor).into();
        assert_eq!(factors, [1, 1, 1, 1, 2, 2, 3, 4]);
    }
}
