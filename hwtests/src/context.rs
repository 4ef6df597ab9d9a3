//! What the tests run against: a root directory (`/`, or a fixture), the state of the
//! `hsa_p2p` module as the caller established it, and how to open its device (the real node
//! under the root, or a fake in host tests). Facts and trees are read once and shared.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::sysfs::{read_topology, HSA_P2P_TOPOLOGY, KFD_TOPOLOGY};

use crate::device::real::RealBackend;
use crate::device::Backend;
use crate::machine_facts::Inventory;
use crate::rocm::recording::{self, Recording};
use crate::rocm::tools::{self, Found, Run};
use crate::rocm::{collect, RocmSource, DEFAULT_BANDWIDTH_FRACTION};

/// Opens the device under test; why not when it cannot.
pub type DeviceOpener = Arc<dyn Fn(&Context) -> Result<Box<dyn Backend>, String> + Send + Sync>;

/// Bytes each GPU pair copies in `device.copies_between_every_ordered_pair` by default.
pub const DEFAULT_PAIR_COPY_BYTES: u64 = 1 << 20;

/// What the caller knows about the `hsa_p2p` module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleState {
    /// Nothing: use its tree if it is there, skip its tests if not (standalone `hwtests`).
    Unknown,
    /// The caller loaded it: its tree must be there.
    Loaded,
    /// The caller could not load it; why (its tests are skipped with this reason).
    Unavailable(String),
}

/// A tree that is absent, unreadable, or read.
pub type TreeRead = Option<Result<Topology, String>>;

/// The test context.
pub struct Context {
    root: PathBuf,
    /// The module's state.
    pub module: ModuleState,
    /// Bytes each GPU pair copies in `device.copies_between_every_ordered_pair`.
    pub pair_copy_bytes: u64,
    /// The serial line to the host of an emulated machine (`crate::guest::host_channel`),
    /// for the `hotplug` suite; `None` on a real machine.
    pub host_channel: Option<PathBuf>,
    /// Fraction of a link's max_bandwidth a peer copy must reach in the `rocm` suite.
    pub bandwidth_fraction: f64,
    rocm: RocmSource,
    recording: OnceLock<Result<Recording, String>>,
    rocm_tools: OnceLock<Vec<Found>>,
    rocm_runs: OnceLock<Vec<Run>>,
    opener: DeviceOpener,
    inventory: OnceLock<Result<Inventory, String>>,
    kfd_tree: OnceLock<TreeRead>,
    module_tree: OnceLock<TreeRead>,
}

fn read_tree(root: &Path) -> TreeRead {
    root.join("generation_id")
        .exists()
        .then(|| read_topology(root).map_err(|error| error.to_string()))
}

impl Context {
    /// A context over `root` (`/` on a real machine).
    pub fn new(root: impl Into<PathBuf>, module: ModuleState) -> Self {
        Context {
            root: root.into(),
            module,
            pair_copy_bytes: DEFAULT_PAIR_COPY_BYTES,
            host_channel: None,
            bandwidth_fraction: DEFAULT_BANDWIDTH_FRACTION,
            rocm: RocmSource::Machine,
            recording: OnceLock::new(),
            rocm_tools: OnceLock::new(),
            rocm_runs: OnceLock::new(),
            opener: Arc::new(|context: &Context| {
                let node = context.device_path();
                RealBackend::open_in(&node, context.root())
                    .map(|backend| Box::new(backend) as Box<dyn Backend>)
                    .map_err(|error| error.to_string())
            }),
            inventory: OnceLock::new(),
            kfd_tree: OnceLock::new(),
            module_tree: OnceLock::new(),
        }
    }

    /// A context replaying the recording in `dir`: its facts stand in for `/`, its outputs for
    /// the ROCm tools (the module is not there).
    pub fn replay(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let mut context = Context::new(
            dir.join(recording::ROOT),
            ModuleState::Unavailable("replaying a recording".into()),
        );
        context.rocm = RocmSource::Replay(dir);
        context
    }

    /// Where the `rocm` suite's outputs come from.
    pub fn rocm_source(&self) -> &RocmSource {
        &self.rocm
    }

    fn recording(&self, dir: &Path) -> Result<&Recording, &str> {
        self.recording
            .get_or_init(|| recording::read(dir).map_err(|error| error.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// The ROCm tools: found in `PATH` (when the root is `/`) and `<root>/opt/rocm*/bin`, or
    /// those of the recording.
    pub fn rocm_tools(&self) -> Result<&[Found], &str> {
        match &self.rocm {
            RocmSource::Replay(dir) => Ok(&self.recording(dir)?.found),
            RocmSource::Machine => Ok(self.rocm_tools.get_or_init(|| {
                let path = (self.root == Path::new("/"))
                    .then(|| std::env::var_os("PATH"))
                    .flatten();
                tools::discover(&tools::search_dirs(&self.root, path))
            })),
        }
    }

    /// The tools' runs: run now (once, on first use) or those of the recording.
    pub fn rocm_runs(&self) -> Result<&[Run], &str> {
        match &self.rocm {
            RocmSource::Replay(dir) => Ok(&self.recording(dir)?.runs),
            RocmSource::Machine => {
                let found = self.rocm_tools()?;
                Ok(self.rocm_runs.get_or_init(|| collect::collect(found)))
            }
        }
    }

    /// The same context with another way to open the device (a fake, in host tests).
    pub fn with_device(mut self, opener: DeviceOpener) -> Self {
        self.opener = opener;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The module's device node.
    pub fn device_path(&self) -> PathBuf {
        self.under_root(hsa_p2p_runtime::device::DEVICE_PATH)
    }

    /// The module's PCI driver directory (`bind`, `unbind`, one link per bound device).
    pub fn driver_path(&self) -> PathBuf {
        self.under_root("/sys/bus/pci/drivers/hsa_p2p")
    }

    /// Opens the device under test.
    pub fn open_device(&self) -> Result<Box<dyn Backend>, String> {
        (self.opener)(self)
    }

    /// amdkfd's topology directory.
    pub fn kfd_topology_path(&self) -> PathBuf {
        self.under_root(KFD_TOPOLOGY)
    }

    /// The module's topology directory.
    pub fn module_topology_path(&self) -> PathBuf {
        self.under_root(HSA_P2P_TOPOLOGY)
    }

    /// An absolute path of the machine under test, below the root (a fixture stands in for `/`).
    fn under_root(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// The machine's PCI and platform facts.
    pub fn inventory(&self) -> Result<&Inventory, &str> {
        self.inventory
            .get_or_init(|| Inventory::collect(&self.root).map_err(|error| error.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// amdkfd's tree, None when there is none.
    pub fn kfd_tree(&self) -> Option<Result<&Topology, &str>> {
        self.kfd_tree
            .get_or_init(|| read_tree(&self.kfd_topology_path()))
            .as_ref()
            .map(|read| read.as_ref().map_err(String::as_str))
    }

    /// The module's tree, None when there is none.
    pub fn module_tree(&self) -> Option<Result<&Topology, &str>> {
        self.module_tree
            .get_or_init(|| read_tree(&self.module_topology_path()))
            .as_ref()
            .map(|read| read.as_ref().map_err(String::as_str))
    }

    /// A boolean module parameter, `None` when it does not exist.
    pub fn module_parameter(&self, module: &str, parameter: &str) -> Option<bool> {
        let path = self
            .root
            .join(format!("sys/module/{module}/parameters/{parameter}"));
        let value = std::fs::read_to_string(path).ok()?;
        Some(matches!(value.trim(), "Y" | "y" | "1"))
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("root", &self.root)
            .field("module", &self.module)
            .field("pair_copy_bytes", &self.pair_copy_bytes)
            .field("host_channel", &self.host_channel)
            .field("bandwidth_fraction", &self.bandwidth_fraction)
            .field("rocm", &self.rocm)
            .finish_non_exhaustive()
    }
}
