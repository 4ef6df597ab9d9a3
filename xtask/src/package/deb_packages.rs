//! The `.deb`s: each package's shared payload under the Debian [`layout::DEBIAN`], plus what
//! only Debian has (`DEBIAN/control`, md5sums, `copyright`, `changelog.Debian.gz`, lintian
//! overrides, maintainer scripts wrapping the shared scriptlet commands); then the scratch-root
//! check and lintian.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::changelog::{self, ChangelogEntry};
use super::control::{self, Control};
use super::copyright::Copyright;
use super::deb::DebPackage;
use super::dkms::{self, Scriptlet};
use super::layout::DEBIAN;
use super::payload::{Payload, MODE_FILE};
use super::{finding, install_and_check, lintian, tools, Built, Common, PackagePair};
use super::{
    COPYRIGHT_HOLDERS, DKMS_DESCRIPTION, DKMS_PACKAGE, DKMS_SUMMARY, SOURCE, TOOLS_DESCRIPTION,
    TOOLS_PACKAGE, TOOLS_SUMMARY,
};
use crate::util::{self, note, phase};

/// Builds both `.deb`s into `dist`, checks them; returns them and the unpacked DKMS tree.
pub fn build_and_check(
    common: &Common,
    built: &Built,
    dist: &Path,
) -> Result<(Vec<PathBuf>, PathBuf)> {
    let version = control::debian_version(&common.upstream, common.revision);
    let staging = dist.join("staging/deb");
    let dkms_version = &common.info.version;

    phase(format!("{DKMS_PACKAGE} {version} (.deb)"));
    let dkms_payload = dkms::payload(&DEBIAN, dkms_version)?;
    let dkms_deb = build_dkms(common, &version, &dkms_payload, &staging)?;
    note(dkms_deb.display().to_string());
    phase(format!("{TOOLS_PACKAGE} {version} (.deb)"));
    let tools_payload = tools::payload(&DEBIAN, built.stripped_binary, built.man_frame)?;
    let tools_deb = build_tools(common, &version, &tools_payload, built, &staging)?;
    note(tools_deb.display().to_string());

    phase("install the .debs into a scratch root (dpkg-deb -x) and check the files");
    let pair = PackagePair {
        layout: &DEBIAN,
        version: &version,
        dkms: &dkms_deb,
        dkms_payload: &dkms_payload,
        tools: &tools_deb,
        tools_payload: &tools_payload,
    };
    let tree = install_and_check(&pair, dkms_version, &dist.join("scratch-root/deb"))?;

    phase("lintian");
    let (findings, output) = lintian::run(&[&dkms_deb, &tools_deb])?;
    finding::verdict("lintian", &findings, &output, &dist.join("lintian.txt"))?;
    Ok((vec![dkms_deb, tools_deb], tree))
}

fn control(common: &Common, version: &str, package: &str, architecture: &str) -> Control {
    Control {
        package: package.to_owned(),
        source: SOURCE.to_owned(),
        version: version.to_owned(),
        architecture: architecture.to_owned(),
        maintainer: common.maintainer.to_owned(),
        section: String::new(),
        depends: Vec::new(),
        recommends: Vec::new(),
        homepage: common.info.repository.clone(),
        synopsis: String::new(),
        description: String::new(),
        installed_size_kib: None,
    }
}

/// Debian's own files: `copyright`, `changelog.Debian.gz` and the lintian overrides
/// (`packaging/lintian/<package>`, if present).
fn debian_files(common: &Common, version: &str, package: &str, comment: &str) -> Result<Payload> {
    let mut files = Payload::default();
    let doc = format!("/usr/share/doc/{package}");
    let copyright = Copyright {
        upstream_name: SOURCE,
        contact: common.maintainer,
        source: &common.info.repository,
        holders: COPYRIGHT_HOLDERS,
        comment,
    };
    files.add_bytes(
        &format!("{doc}/copyright"),
        copyright.render().as_bytes(),
        MODE_FILE,
    );
    let changes = common.changes();
    let entry = ChangelogEntry {
        source: SOURCE,
        version,
        maintainer: common.maintainer,
        changes: &changes,
        date: &changelog::rfc2822(common.epoch)?,
    };
    files.add_bytes(
        &format!("{doc}/changelog.Debian.gz"),
        &changelog::gzip(entry.render().as_bytes())?,
        MODE_FILE,
    );
    let overrides = util::workspace_root().join(format!("packaging/lintian/{package}"));
    if overrides.is_file() {
        files.add_file(
            &format!("/usr/share/lintian/overrides/{package}"),
            &overrides,
            MODE_FILE,
        )?;
    }
    Ok(files)
}

/// A maintainer script running `scriptlet`'s commands for the `actions` dpkg passes as `$1`.
fn maintainer_script(template: &str, scriptlet: Scriptlet, version: &str) -> Result<String> {
    let path = util::workspace_root().join(format!("packaging/debian/{template}"));
    let text = fs::read_to_string(&path)?;
    let commands = scriptlet.commands(version)?;
    let placeholder = match scriptlet {
        Scriptlet::PostInstall => "@POST_INSTALL@",
        Scriptlet::PreRemove => "@PRE_REMOVE@",
    };
    if !text.contains(placeholder) {
        bail!("{} has no {placeholder}", path.display());
    }
    Ok(text.replace(placeholder, commands.trim_end()))
}

fn build_dkms(
    common: &Common,
    version: &str,
    payload: &Payload,
    staging: &Path,
) -> Result<PathBuf> {
    let mut control = control(common, version, DKMS_PACKAGE, "all");
    control.section = "kernel".to_owned();
    control.depends = vec!["dkms (>= 3.0)".to_owned()];
    // The module must be compiled by the rustc that built the kernel; Debian's is rustc-web
    // (bookworm) or rustc.
    control.recommends = vec!["rustc-web | rustc".to_owned()];
    control.synopsis = DKMS_SUMMARY.to_owned();
    control.description = DKMS_DESCRIPTION.to_owned();
    let deb = DebPackage::new(control, staging.join(DKMS_PACKAGE))?;
    deb.add_payload(payload)?;
    deb.add_payload(&debian_files(common, version, DKMS_PACKAGE, "")?)?;
    let dkms_version = &common.info.version;
    for (name, scriptlet) in [
        ("postinst", Scriptlet::PostInstall),
        ("prerm", Scriptlet::PreRemove),
    ] {
        let template = format!("{DKMS_PACKAGE}.{name}");
        deb.add_maintainer_script(
            name,
            &maintainer_script(&template, scriptlet, dkms_version)?,
        )?;
    }
    deb.build(&util::target_dir().join("dist"), common.epoch)
}

/// The font compiled into p2pctl for its heat-maps (runtime/assets/fonts/).
const EMBEDDED_FONT: &str =
    "/usr/bin/p2pctl also embeds the DejaVu Sans font 2.37 (Copyright (c)\n\
2003 by Bitstream, Inc.; DejaVu changes are in the public domain;\n\
license: Bitstream Vera, as in /usr/share/doc/fonts-dejavu-core/copyright).";

fn build_tools(
    common: &Common,
    version: &str,
    payload: &Payload,
    built: &Built,
    staging: &Path,
) -> Result<PathBuf> {
    let mut control = control(common, version, TOOLS_PACKAGE, "amd64");
    control.section = "utils".to_owned();
    control.depends = tools::shared_library_depends(
        built.stripped_binary,
        TOOLS_PACKAGE,
        &staging.join("shlibdeps"),
    )?;
    control.synopsis = TOOLS_SUMMARY.to_owned();
    control.description = TOOLS_DESCRIPTION.to_owned();
    let crates = tools::linked_crates()?;
    let comment = if crates.is_empty() {
        String::new()
    } else {
        format!(
            "/usr/bin/p2pctl statically links these Rust crates (name, version,\nlicense):\n{}\n\n{EMBEDDED_FONT}",
            crates.join("\n")
        )
    };
    let deb = DebPackage::new(control, staging.join(TOOLS_PACKAGE))?;
    deb.add_payload(payload)?;
    deb.add_payload(&debian_files(common, version, TOOLS_PACKAGE, &comment)?)?;
    deb.build(&util::target_dir().join("dist"), common.epoch)
}
