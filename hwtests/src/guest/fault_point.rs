//! The module's fault points (`/sys/kernel/debug/hsa_p2p/<name>`, root only): a case arms one
//! for its own run, and it is put back to 0 (off) whatever the case's outcome.

use std::path::{Path, PathBuf};

use super::debugfs;

/// Where the module's fault points are, below the machine's root.
const DIRECTORY: &str = "sys/kernel/debug/hsa_p2p";

/// An armed fault point, disarmed (set to 0) on drop.
#[derive(Debug)]
pub struct FaultPoint {
    path: PathBuf,
}

impl FaultPoint {
    /// The fault point `name` below `root` (debugfs mounted first when needed), or why it is
    /// not there (no module, a module without it, not root).
    pub fn find(root: &Path, name: &str) -> Result<FaultPoint, String> {
        let path = root.join(DIRECTORY).join(name);
        if !path.exists() {
            debugfs::mount(root);
        }
        if !path.exists() {
            return Err(format!("no fault point {}", path.display()));
        }
        Ok(FaultPoint { path })
    }

    /// Sets the fault point to `value`.
    pub fn set(&self, value: u64) -> Result<(), String> {
        std::fs::write(&self.path, value.to_string())
            .map_err(|error| format!("set {} to {value}: {error}", self.path.display()))
    }
}

impl Drop for FaultPoint {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, "0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_point_is_disarmed_on_drop() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(DIRECTORY)).unwrap();
        let file = root.path().join(DIRECTORY).join("delay");
        std::fs::write(&file, "0").unwrap();
        {
            let point = FaultPoint::find(root.path(), "delay").unwrap();
            point.set(250).unwrap();
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "250");
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "0");
    }

    #[test]
    fn a_missing_fault_point_says_where_it_was_looked_for() {
        let root = tempfile::tempdir().unwrap();
        let error = FaultPoint::find(root.path(), "delay").unwrap_err();
        assert!(error.contains("sys/kernel/debug/hsa_p2p/delay"), "{error}");
    }
}
