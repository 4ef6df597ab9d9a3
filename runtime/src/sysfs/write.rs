//! Writing a topology's files as a sysfs-like tree (what `p2pctl predict --emit-sysfs` and the VM
//! harness's copies of the guest's tree are), readable back with [`super::read_topology`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A file or directory of the tree that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct WriteError {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// Writes `(relative path, content)` pairs (e.g. `Topology::render_sysfs()`) below `dir`,
/// creating directories as needed and replacing files that exist.
pub fn write_tree<P, C>(
    dir: &Path,
    files: impl IntoIterator<Item = (P, C)>,
) -> Result<(), WriteError>
where
    P: AsRef<Path>,
    C: AsRef<[u8]>,
{
    for (relative, content) in files {
        let path = dir.join(relative);
        let at = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError { path, source }
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(at(parent))?;
        }
        fs::write(&path, content).map_err(at(&path))?;
    }
    Ok(())
}
