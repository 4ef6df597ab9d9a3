//! The DKMS source package `hsa-p2p-dkms`: `/usr/src/hsa-p2p-<version>/` holds `dkms.conf`,
//! the module's kbuild file and sources, the shared core's sources, and the kbuild wrapper
//! whose `check` is the PRE_BUILD explanation of why a kernel cannot build the module.
//!
//! The same payload and [`Scriptlet`] commands make the `.deb` and the `.rpm`.
//!
//! The layout is the repository's (`src/`, `core/src/`): the crate root mounts the core's files
//! with `#[path = "../core/src/…"]`, and [`check_path_attributes`] proves every such path
//! resolves inside the packaged tree.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::layout::Layout;
use super::payload::{Payload, MODE_EXECUTABLE, MODE_FILE};
use crate::util;

/// DKMS module name (`dkms status` shows it; `/usr/src/<name>-<version>`).
pub const DKMS_NAME: &str = "hsa-p2p";
/// The kbuild wrapper, relative to the source tree (dkms.conf names it).
pub const KBUILD_WRAPPER: &str = "dkms/hsa-p2p-kbuild";

pub use crate::kmod::module_sources;

/// Every `#[path = "…"]` of the Rust files in `tree/src`, as (file, attribute value).
pub fn path_attributes(tree: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let src = tree.join("src");
    for entry in fs::read_dir(&src).with_context(|| format!("cannot read {}", src.display()))? {
        let file = entry?.path();
        if file.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&file)?;
            for value in text.lines().filter_map(path_attribute) {
                found.push((file.clone(), value.to_owned()));
            }
        }
    }
    Ok(found)
}

/// The value of a `#[path = "value"]` line.
pub fn path_attribute(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("#[path")?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start().strip_prefix('"')?;
    rest.split_once('"').map(|(value, _)| value)
}

/// Fails unless every `#[path]` of the crate in `tree` names a file inside `tree`.
pub fn check_path_attributes(tree: &Path) -> Result<usize> {
    let attributes = path_attributes(tree)?;
    if attributes.is_empty() {
        bail!(
            "no #[path] attribute found in {}: the shared core is no longer mounted that way, \
             update xtask/src/package/dkms.rs",
            tree.join("src").display()
        );
    }
    let root = fs::canonicalize(tree)?;
    for (file, value) in &attributes {
        let target = file.parent().expect("a file in src/").join(value);
        let resolved = fs::canonicalize(&target).with_context(|| {
            format!(
                "{}: #[path = \"{value}\"] does not resolve in the packaged tree ({} missing)",
                file.display(),
                target.display()
            )
        })?;
        if !resolved.starts_with(&root) {
            bail!(
                "{}: #[path = \"{value}\"] leaves the packaged tree",
                file.display()
            );
        }
    }
    Ok(attributes.len())
}

/// `dkms.conf` for `version` (upstream version, as DKMS and /usr/src use it).
pub fn dkms_conf(template: &str, version: &str) -> String {
    template.replace("@VERSION@", version)
}

/// The files of `hsa-p2p-dkms` for the upstream `version` (both formats): the source tree
/// under `/usr/src/hsa-p2p-<version>/` and the udev rule for `/dev/hsa_p2p`.
pub fn payload(layout: &Layout, version: &str) -> Result<Payload> {
    let root = util::workspace_root();
    let kmod = root.join("kmod");
    let packaging = root.join("packaging");
    let usr_src = format!("/usr/src/{DKMS_NAME}-{version}");
    let mut payload = Payload::default();

    let template = read(&packaging.join("dkms/dkms.conf.in"))?;
    payload.add_bytes(
        &format!("{usr_src}/dkms.conf"),
        dkms_conf(&template, version).as_bytes(),
        MODE_FILE,
    );
    payload.add_file(
        &format!("{usr_src}/{KBUILD_WRAPPER}"),
        &packaging.join("dkms/hsa-p2p-kbuild"),
        MODE_EXECUTABLE,
    )?;
    for file in module_sources(&kmod)? {
        payload.add_file(
            &format!("{usr_src}/{}", file.display()),
            &kmod.join(&file),
            MODE_FILE,
        )?;
    }
    payload.add_file(
        &udev_rule_path(layout),
        &packaging.join(format!("udev/{UDEV_RULE}")),
        MODE_FILE,
    )?;
    Ok(payload)
}

/// The udev rule giving `/dev/hsa_p2p` to the render group.
pub const UDEV_RULE: &str = "70-hsa-p2p.rules";

/// Where `layout` installs [`UDEV_RULE`].
pub fn udev_rule_path(layout: &Layout) -> String {
    format!("{}/{UDEV_RULE}", layout.udev_rules_dir)
}

/// When a scriptlet runs.
#[derive(Clone, Copy, Debug)]
pub enum Scriptlet {
    /// After installation: `dkms add` and `dkms install` for every kernel.
    PostInstall,
    /// Before removal or upgrade: `dkms remove --all`.
    PreRemove,
}

impl Scriptlet {
    fn file(self) -> &'static str {
        match self {
            Self::PostInstall => "post-install.sh",
            Self::PreRemove => "pre-remove.sh",
        }
    }

    /// The shell commands for `version` (`packaging/dkms/<scriptlet>.sh`), shared by the
    /// Debian maintainer scripts and the RPM scriptlets.
    pub fn commands(self, version: &str) -> Result<String> {
        let path = util::workspace_root()
            .join("packaging/dkms")
            .join(self.file());
        Ok(read(&path)?.replace("@VERSION@", version))
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_path_attributes() {
        assert_eq!(
            path_attribute(r#"#[path = "../core/src/gate.rs"]"#),
            Some("../core/src/gate.rs")
        );
        assert_eq!(path_attribute(r#"  #[path="x.rs"] // why"#), Some("x.rs"));
        assert_eq!(path_attribute("pub mod gate;"), None);
        assert_eq!(path_attribute("#[pathological]"), None);
    }

    #[test]
    fn the_module_sources_keep_core_paths_valid() {
        let kmod = util::workspace_root().join("kmod");
        let sources = module_sources(&kmod).unwrap();
        assert!(sources.contains(&PathBuf::from("Kbuild")));
        assert!(sources.contains(&PathBuf::from("src/hsa_p2p_main.rs")));
        assert!(sources.iter().any(|s| s.starts_with("core/src")));
        assert!(check_path_attributes(&kmod).unwrap() > 0);
    }

    #[test]
    fn dkms_conf_names_the_version_and_the_wrapper() {
        let template =
            fs::read_to_string(util::workspace_root().join("packaging/dkms/dkms.conf.in")).unwrap();
        let conf = dkms_conf(&template, "1.2.3");
        assert!(conf.contains("PACKAGE_VERSION=\"1.2.3\""));
        assert!(conf.contains(&format!("PRE_BUILD=\"{KBUILD_WRAPPER} check")));
        assert!(conf.contains(&format!("PACKAGE_NAME=\"{DKMS_NAME}\"")));
        assert!(!conf.contains('@'));
    }

    #[test]
    fn both_layouts_ship_the_same_tree_and_the_udev_rule() {
        use super::super::layout::{DEBIAN, RPM};
        let deb = payload(&DEBIAN, "1.2.3").unwrap();
        let rpm = payload(&RPM, "1.2.3").unwrap();
        let tree = |p: &Payload| -> Vec<String> {
            p.files()
                .iter()
                .map(|f| f.path.clone())
                .filter(|path| path.starts_with("/usr/src/"))
                .collect()
        };
        assert_eq!(tree(&deb), tree(&rpm));
        assert!(tree(&deb).contains(&"/usr/src/hsa-p2p-1.2.3/dkms.conf".to_owned()));
        let rule = deb
            .files()
            .iter()
            .find(|f| f.path == "/lib/udev/rules.d/70-hsa-p2p.rules")
            .expect("the udev rule");
        let rule = String::from_utf8_lossy(&rule.contents);
        assert!(rule.contains(r#"KERNEL=="hsa_p2p""#) && rule.contains(r#"GROUP="render""#));
        assert!(rule.contains(r#"MODE="0660""#));
        assert!(rpm
            .files()
            .iter()
            .any(|f| f.path == "/usr/lib/udev/rules.d/70-hsa-p2p.rules"));
    }

    #[test]
    fn scriptlets_register_and_remove_the_version() {
        let post = Scriptlet::PostInstall.commands("1.2.3").unwrap();
        assert!(post.contains("VERSION=1.2.3") && post.contains("dkms add"));
        assert!(post.contains("dkms install"));
        let pre = Scriptlet::PreRemove.commands("1.2.3").unwrap();
        assert!(pre.contains("dkms remove") && !pre.contains('@'));
    }
}
