//! Where the module's files go in a kernel tree: `samples/rust/hsa_p2p/`, keeping the
//! repository's layout below it (`src/`, `core/src/`) so that the crate root's
//! `#[path = "../core/src/…"]` attributes resolve unchanged and the patch carries the same code
//! the out-of-tree build and the host tests use.
//!
//! Two adaptations, both mechanical: `kmod/Kbuild` becomes the directory's `Makefile` with
//! `obj-m` replaced by the sample's Kconfig symbol, and a core file without an SPDX line gets
//! `// SPDX-License-Identifier: GPL-2.0` (the kernel requires one in every file; the workspace
//! is GPL-2.0-only).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The sample's directory in the kernel tree.
pub const SAMPLE_DIR: &str = "samples/rust/hsa_p2p";
/// The sample's Kconfig symbol (without `CONFIG_`).
pub const KCONFIG_SYMBOL: &str = "SAMPLE_RUST_HSA_P2P";
/// The SPDX line of the workspace's license, in the kernel's spelling.
pub const SPDX_RUST: &str = "// SPDX-License-Identifier: GPL-2.0";

/// One file the series adds to the kernel tree.
#[derive(Clone, Debug)]
pub struct TreeFile {
    /// Path in the kernel tree.
    pub path: String,
    pub contents: String,
    /// Whether an SPDX line was added.
    pub spdx_added: bool,
}

/// The sample's files, grouped the way the series adds them.
pub struct SampleFiles {
    /// The shared core's files the crate root mounts with `#[path]`.
    pub core: Vec<TreeFile>,
    /// The driver: crate root, modules, C shims and the Makefile.
    pub driver: Vec<TreeFile>,
}

/// Prepends the SPDX line to a Rust or C file that has none in its first two lines.
fn with_spdx(text: &str, extension: &str) -> (String, bool) {
    if text
        .lines()
        .take(2)
        .any(|l| l.contains("SPDX-License-Identifier"))
    {
        return (text.to_owned(), false);
    }
    let line = match extension {
        "rs" | "c" => SPDX_RUST.to_owned(),
        "h" => "/* SPDX-License-Identifier: GPL-2.0 */".to_owned(),
        _ => "# SPDX-License-Identifier: GPL-2.0".to_owned(),
    };
    (format!("{line}\n\n{text}"), true)
}

/// kbuild's `obj-m` becomes `obj-$(CONFIG_SAMPLE_RUST_HSA_P2P)`.
pub fn makefile_from_kbuild(kbuild: &str) -> Result<String> {
    let mut replaced = false;
    let text: Vec<String> = kbuild
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("obj-m") {
                replaced = true;
                let rest = rest.trim_start();
                let rest = rest
                    .strip_prefix(":=")
                    .or_else(|| rest.strip_prefix("+="))
                    .unwrap_or(rest);
                format!("obj-$(CONFIG_{KCONFIG_SYMBOL}) +={rest}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    if !replaced {
        bail!("kmod/Kbuild has no obj-m line to turn into obj-$(CONFIG_{KCONFIG_SYMBOL})");
    }
    Ok(text.join("\n") + "\n")
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn tree_file(kmod: &Path, relative: &Path) -> Result<TreeFile> {
    let origin = kmod.join(relative);
    let extension = relative
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (contents, spdx_added) = with_spdx(&read(&origin)?, &extension);
    Ok(TreeFile {
        path: format!("{SAMPLE_DIR}/{}", relative.display()),
        contents,
        spdx_added,
    })
}

/// The sample's files from the repository's `kmod/`.
pub fn sample_files(kmod: &Path) -> Result<SampleFiles> {
    let src = kmod.join("src");
    let mut driver = Vec::new();
    let mut core_paths = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(&src)
        .with_context(|| format!("cannot read {}", src.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
        if !matches!(extension.as_deref(), Some("rs" | "c" | "h")) {
            continue;
        }
        let relative = path.strip_prefix(kmod)?.to_path_buf();
        if extension.as_deref() == Some("rs") {
            for line in read(&path)?.lines() {
                if let Some(value) = path_attribute(line) {
                    // Relative to the file's directory (src/), normalised to kmod-relative.
                    let target = Path::new("src").join(value);
                    core_paths.push(normalise(&target));
                }
            }
        }
        driver.push(tree_file(kmod, &relative)?);
    }
    let makefile = makefile_from_kbuild(&read(&kmod.join("Kbuild"))?)?;
    driver.push(TreeFile {
        path: format!("{SAMPLE_DIR}/Makefile"),
        contents: makefile,
        spdx_added: false,
    });
    core_paths.sort();
    core_paths.dedup();
    let core = core_paths
        .iter()
        .map(|relative| tree_file(kmod, relative))
        .collect::<Result<Vec<_>>>()?;
    if core.is_empty() {
        bail!("the crate root mounts no core file with #[path]: nothing to put in the first patch");
    }
    Ok(SampleFiles { core, driver })
}

/// The value of a `#[path = "value"]` line.
fn path_attribute(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("#[path")?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start().strip_prefix('"')?;
    rest.split_once('"').map(|(value, _)| value)
}

/// Resolves `..` components lexically (`src/../core/src/x.rs` -> `core/src/x.rs`).
fn normalise(path: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other => parts.push(other.as_os_str()),
        }
    }
    parts.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util;

    #[test]
    fn turns_kbuild_into_a_sample_makefile() {
        let makefile = makefile_from_kbuild(
            "# SPDX-License-Identifier: GPL-2.0\nobj-m := hsa_p2p.o\nhsa_p2p-y := src/a.o\n",
        )
        .unwrap();
        assert_eq!(
            makefile,
            "# SPDX-License-Identifier: GPL-2.0\nobj-$(CONFIG_SAMPLE_RUST_HSA_P2P) += hsa_p2p.o\n\
             hsa_p2p-y := src/a.o\n"
        );
        assert!(makefile_from_kbuild("hsa_p2p-y := a.o\n").is_err());
    }

    #[test]
    fn adds_missing_spdx_lines_only() {
        assert_eq!(
            with_spdx("//! Doc.\n", "rs"),
            (
                "// SPDX-License-Identifier: GPL-2.0\n\n//! Doc.\n".to_owned(),
                true
            )
        );
        let tagged = "// SPDX-License-Identifier: GPL-2.0\n\n//! Doc.\n";
        assert_eq!(with_spdx(tagged, "rs"), (tagged.to_owned(), false));
        assert!(with_spdx("x", "h").0.starts_with("/* SPDX"));
    }

    #[test]
    fn normalises_parent_components() {
        assert_eq!(
            normalise(Path::new("src/../core/src/gate.rs")),
            PathBuf::from("core/src/gate.rs")
        );
    }

    #[test]
    fn the_real_module_splits_into_core_and_driver() {
        let files = sample_files(&util::workspace_root().join("kmod")).unwrap();
        assert!(files
            .core
            .iter()
            .all(|f| f.path.starts_with("samples/rust/hsa_p2p/core/src/")));
        assert!(files
            .driver
            .iter()
            .any(|f| f.path == "samples/rust/hsa_p2p/src/hsa_p2p_main.rs"));
        assert!(files
            .driver
            .iter()
            .any(|f| f.path == "samples/rust/hsa_p2p/Makefile"));
        for file in files.core.iter().chain(&files.driver) {
            assert!(
                file.contents
                    .lines()
                    .next()
                    .unwrap()
                    .contains("SPDX-License-Identifier"),
                "{}",
                file.path
            );
        }
    }
}
