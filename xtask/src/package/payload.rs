//! The files a binary package installs, independent of the package format: the `.deb` and the
//! `.rpm` of a package are made from the same payload, so their file lists cannot differ except
//! where the distributions' layouts do ([`super::layout::Layout`]).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Mode of an ordinary shipped file.
pub const MODE_FILE: u32 = 0o644;
/// Mode of programs and scripts.
pub const MODE_EXECUTABLE: u32 = 0o755;

/// One installed file.
#[derive(Clone, Debug)]
pub struct PayloadFile {
    /// Absolute path on the installed system (`/usr/bin/p2pctl`).
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// The files of one package, in the order they were added.
#[derive(Clone, Debug, Default)]
pub struct Payload {
    files: Vec<PayloadFile>,
}

impl Payload {
    /// Ships `contents` at the absolute path `path`.
    pub fn add_bytes(&mut self, path: &str, contents: &[u8], mode: u32) {
        debug_assert!(path.starts_with('/'), "package paths are absolute: {path}");
        self.files.push(PayloadFile {
            path: path.to_owned(),
            contents: contents.to_vec(),
            mode,
        });
    }

    /// Ships the file `source` at `path`.
    pub fn add_file(&mut self, path: &str, source: &Path, mode: u32) -> Result<()> {
        let contents =
            fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
        self.add_bytes(path, &contents, mode);
        Ok(())
    }

    pub fn files(&self) -> &[PayloadFile] {
        &self.files
    }

    /// Writes every file under `root` (the future `/`) with its mode.
    pub fn stage(&self, root: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for file in &self.files {
            let target = root.join(file.path.trim_start_matches('/'));
            fs::create_dir_all(target.parent().expect("package paths are absolute"))?;
            fs::write(&target, &file.contents)
                .with_context(|| format!("cannot write {}", target.display()))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(file.mode))
                .with_context(|| format!("cannot chmod {}", target.display()))?;
        }
        Ok(())
    }
}
