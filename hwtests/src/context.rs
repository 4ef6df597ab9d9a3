//! What the tests run against: a root directory (`/`, or a fixture) and the state of the
//! `hsa_p2p` module as the caller established it. Facts and trees are read once and shared.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hsa_p2p_core::topology::Topology;
use hsa_p2p_runtime::sysfs::{read_topology, HSA_P2P_TOPOLOGY, KFD_TOPOLOGY};

use crate::machine_facts::Inventory;

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
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    /// The module's state.
    pub module: ModuleState,
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
            inventory: OnceLock::new(),
            kfd_tree: OnceLock::new(),
            module_tree: OnceLock::new(),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
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
