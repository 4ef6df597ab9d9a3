//! The directory `p2pctl predict --emit-sysfs` writes: a topology tree plus a marker file, so that
//! `--force` replaces only a tree it wrote itself and never deletes a directory it was merely
//! pointed at (a typo in DIR must not cost the user their home directory).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::write::{write_tree, WriteError};

/// The file that marks a directory as a tree written by [`emit_tree`].
pub const EMITTED_MARKER: &str = ".hsa-p2p-emitted-tree";

/// Why a tree was not written.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// DIR holds something and replacing it was not asked for.
    #[error("{} exists and is not empty; pass --force to replace it", .0.display())]
    NotEmpty(PathBuf),
    /// DIR holds something this program did not write: never deleted, even with `--force`.
    #[error(
        "{} is not a topology tree written by `p2pctl predict --emit-sysfs` (it has no {} \
         file), so --force does not delete it; choose another directory or empty it yourself",
        .0.display(),
        EMITTED_MARKER
    )]
    NotEmitted(PathBuf),
    /// DIR exists but is not a directory.
    #[error("{} exists and is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Reading or removing DIR failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "removing").
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing the tree failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Writes `files` (e.g. `Topology::render_sysfs()`) as a tree in `dir` with the marker file.
///
/// `dir` may be absent or empty. With `replace`, a `dir` holding a tree an earlier call wrote
/// (it has the marker) is deleted first; anything else is refused.
pub fn emit_tree<P, C>(
    dir: &Path,
    files: impl IntoIterator<Item = (P, C)>,
    replace: bool,
) -> Result<(), EmitError>
where
    P: AsRef<Path>,
    C: AsRef<[u8]>,
{
    let io_error = |action, source| EmitError::Io {
        action,
        path: dir.to_path_buf(),
        source,
    };
    match fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("reading", error)),
        Ok(metadata) if !metadata.is_dir() => {
            return Err(EmitError::NotADirectory(dir.to_path_buf()))
        }
        Ok(_) => {
            let empty = fs::read_dir(dir)
                .map_err(|error| io_error("reading", error))?
                .next()
                .is_none();
            if !empty {
                if !replace {
                    return Err(EmitError::NotEmpty(dir.to_path_buf()));
                }
                if !dir.join(EMITTED_MARKER).is_file() {
                    return Err(EmitError::NotEmitted(dir.to_path_buf()));
                }
                fs::remove_dir_all(dir).map_err(|error| io_error("removing", error))?;
            }
        }
    }
    write_tree(dir, files)?;
    write_tree(
        dir,
        [(
            EMITTED_MARKER,
            "written by `p2pctl predict --emit-sysfs`; `--force` may replace this directory\n",
        )],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE: [(&str, &str); 2] = [("generation_id", "1\n"), ("nodes/0/properties", "x 1\n")];

    #[test]
    fn force_replaces_a_tree_it_wrote() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("tree");
        emit_tree(&dir, TREE, false).unwrap();
        fs::write(dir.join("stale"), "old").unwrap();
        assert!(matches!(
            emit_tree(&dir, TREE, false),
            Err(EmitError::NotEmpty(_))
        ));
        emit_tree(&dir, TREE, true).unwrap();
        assert!(!dir.join("stale").exists());
        assert_eq!(
            fs::read_to_string(dir.join("generation_id")).unwrap(),
            "1\n"
        );
    }

    #[test]
    fn force_never_deletes_a_directory_it_did_not_write() {
        let scratch = tempfile::tempdir().unwrap();
        let precious = scratch.path().join("home");
        fs::create_dir(&precious).unwrap();
        fs::write(precious.join("thesis.tex"), "years of work").unwrap();
        let error = emit_tree(&precious, TREE, true).unwrap_err();
        assert!(matches!(error, EmitError::NotEmitted(_)), "{error}");
        assert!(error.to_string().contains(EMITTED_MARKER), "{error}");
        assert_eq!(
            fs::read_to_string(precious.join("thesis.tex")).unwrap(),
            "years of work"
        );
        assert!(!precious.join("generation_id").exists());
    }

    #[test]
    fn a_file_is_not_replaced() {
        let scratch = tempfile::tempdir().unwrap();
        let file = scratch.path().join("file");
        fs::write(&file, "data").unwrap();
        assert!(matches!(
            emit_tree(&file, TREE, true),
            Err(EmitError::NotADirectory(_))
        ));
        assert_eq!(fs::read_to_string(&file).unwrap(), "data");
    }
}
