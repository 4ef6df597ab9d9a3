//! The `.rpm`s: each package's shared payload under the RPM [`layout::RPM`] plus the license
//! text, built by `rpmbuild` with the shared scriptlet commands as `%post`/`%preun`; then the
//! scratch-root check (`rpm2cpio | cpio`) and rpmlint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::dkms::{self, Scriptlet};
use super::layout::RPM;
use super::payload::{Payload, MODE_FILE};
use super::rpm::{self, RpmSpec};
use super::{finding, install_and_check, rpmlint, tools, Built, Common, PackagePair};
use super::{
    DKMS_DESCRIPTION, DKMS_PACKAGE, DKMS_SUMMARY, TOOLS_DESCRIPTION, TOOLS_PACKAGE, TOOLS_SUMMARY,
};
use crate::util::{note, phase};

/// The workspace's license (SPDX, `[workspace.package] license`).
const LICENSE: &str = "GPL-2.0-only";
/// The GPL-2 text shipped as `%license` (base-files on every Debian host that builds these).
const GPL_2_TEXT: &str = "/usr/share/common-licenses/GPL-2";

/// Builds both `.rpm`s into `dist`, checks them; returns them and the unpacked DKMS tree.
pub fn build_and_check(
    common: &Common,
    built: &Built,
    dist: &Path,
) -> Result<(Vec<PathBuf>, PathBuf)> {
    let dkms_version = &common.info.version;
    let version_release = format!("{}-{}", common.upstream, common.revision);
    let work = dist.join("staging/rpm");
    let changelog_date = rpm::changelog_date(common.epoch)?;
    let changes = common.changes();
    let no_dirs: [String; 0] = [];

    phase(format!("{DKMS_PACKAGE} {version_release} (.rpm)"));
    let mut dkms_payload = dkms::payload(&RPM, dkms_version)?;
    let dkms_license = add_license(&mut dkms_payload, DKMS_PACKAGE)?;
    let dkms_docs = add_docs(&mut dkms_payload, DKMS_PACKAGE)?;
    let usr_src = [format!("/usr/src/{}-{dkms_version}", dkms::DKMS_NAME)];
    let spec = RpmSpec {
        name: DKMS_PACKAGE,
        version: &common.upstream,
        release: common.revision,
        summary: DKMS_SUMMARY,
        group: "System/Kernel",
        license: LICENSE,
        url: &common.info.repository,
        description: DKMS_DESCRIPTION,
        build_arch: Some("noarch"),
        requires: &["dkms"],
        // Fedora's and openSUSE's rustc package; it must be the one that built the kernel.
        recommends: &["rust"],
        post: Some(Scriptlet::PostInstall.commands(dkms_version)?),
        preun: Some(Scriptlet::PreRemove.commands(dkms_version)?),
        license_files: &dkms_license,
        doc_files: &dkms_docs,
        owned_dirs: &usr_src,
        changelog_date: &changelog_date,
        packager: common.maintainer,
        changes: &changes,
    };
    let dkms_rpm = spec.build(&dkms_payload, &work.join(DKMS_PACKAGE), dist, common.epoch)?;
    note(dkms_rpm.display().to_string());

    phase(format!("{TOOLS_PACKAGE} {version_release} (.rpm)"));
    let mut tools_payload = tools::payload(&RPM, built.stripped_binary, built.man_frame)?;
    let tools_license_files = add_license(&mut tools_payload, TOOLS_PACKAGE)?;
    let tools_docs = add_docs(&mut tools_payload, TOOLS_PACKAGE)?;
    // p2pctl also embeds the DejaVu Sans font for its heat-maps (runtime/assets/fonts/).
    let tools_license = format!(
        "{} AND {EMBEDDED_FONT_LICENSE}",
        license_with_crates(&tools::linked_crates()?)
    );
    let spec = RpmSpec {
        name: TOOLS_PACKAGE,
        summary: TOOLS_SUMMARY,
        group: "Hardware/Other",
        license: &tools_license,
        description: TOOLS_DESCRIPTION,
        build_arch: None,
        requires: &[],
        recommends: &[],
        post: None,
        preun: None,
        license_files: &tools_license_files,
        doc_files: &tools_docs,
        owned_dirs: &no_dirs,
        ..spec
    };
    let tools_rpm = spec.build(
        &tools_payload,
        &work.join(TOOLS_PACKAGE),
        dist,
        common.epoch,
    )?;
    note(tools_rpm.display().to_string());

    phase("install the .rpms into a scratch root (rpm2cpio | cpio) and check the files");
    let pair = PackagePair {
        layout: &RPM,
        version: &version_release,
        dkms: &dkms_rpm,
        dkms_payload: &dkms_payload,
        tools: &tools_rpm,
        tools_payload: &tools_payload,
    };
    let tree = install_and_check(&pair, dkms_version, &dist.join("scratch-root/rpm"))?;

    phase("rpmlint");
    let (findings, output) = rpmlint::run(&[&dkms_rpm, &tools_rpm])?;
    finding::verdict("rpmlint", &findings, &output, &dist.join("rpmlint.txt"))?;
    Ok((vec![dkms_rpm, tools_rpm], tree))
}

/// Ships the GPL-2 text as `/usr/share/licenses/<package>/GPL-2` (where Fedora's `%license`
/// puts it); returns the paths to mark `%license`.
fn add_license(payload: &mut Payload, package: &str) -> Result<Vec<String>> {
    let path = format!("/usr/share/licenses/{package}/GPL-2");
    payload
        .add_file(&path, Path::new(GPL_2_TEXT), MODE_FILE)
        .with_context(|| format!("the GPL-2 text ({GPL_2_TEXT}, package base-files)"))?;
    Ok(vec![path])
}

/// Ships the repository's README.md as `/usr/share/doc/<package>/README.md` (`%doc`): what the
/// project is and where its documentation lives; returns the paths to mark `%doc`.
fn add_docs(payload: &mut Payload, package: &str) -> Result<Vec<String>> {
    let path = format!("/usr/share/doc/{package}/README.md");
    payload.add_file(
        &path,
        &crate::util::workspace_root().join("README.md"),
        MODE_FILE,
    )?;
    Ok(vec![path])
}

/// SPDX license of the font compiled into p2pctl (DejaVu Sans: Bitstream Vera terms).
const EMBEDDED_FONT_LICENSE: &str = "Bitstream-Vera";

/// The `License:` of a binary that statically links crates: the workspace's license AND each
/// distinct crate license term (Fedora's Rust packaging rule), from `name version (license)`
/// lines. Crate expressions are flattened at their top-level `AND`s, so the result has one
/// level of parentheses, which rpmlint's license parser understands.
pub fn license_with_crates(crates: &[String]) -> String {
    let mut terms: Vec<String> = crates
        .iter()
        .filter_map(|line| line.split_once(" (")?.1.strip_suffix(')'))
        .filter(|license| *license != "license not declared")
        // Old crates write `MIT/Apache-2.0` for `MIT OR Apache-2.0`.
        .map(|license| license.replace('/', " OR "))
        .flat_map(|license| top_level_and_terms(&license))
        .filter(|term| term != LICENSE)
        .map(|term| {
            if !term.contains(' ') {
                return term;
            }
            // `Apache-2.0 OR MIT` and `MIT OR Apache-2.0` are one choice: one spelling.
            let mut choices: Vec<&str> = term.split(" OR ").collect();
            if choices.iter().all(|choice| !choice.contains(' ')) {
                choices.sort_unstable();
                return format!("({})", choices.join(" OR "));
            }
            format!("({term})")
        })
        .collect();
    terms.sort();
    terms.dedup();
    let mut expression = LICENSE.to_owned();
    for term in terms {
        expression.push_str(" AND ");
        expression.push_str(&term);
    }
    expression
}

/// `(A OR B) AND C` -> `["A OR B", "C"]`: the operands of the `AND`s outside parentheses,
/// without their outer parentheses.
fn top_level_and_terms(expression: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for word in expression.split_whitespace() {
        if depth == 0 && word == "AND" {
            terms.push(std::mem::take(&mut current));
            continue;
        }
        depth += word.matches('(').count();
        depth = depth.saturating_sub(word.matches(')').count());
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    terms.push(current);
    terms
        .into_iter()
        .map(|term| {
            let inner = term.strip_prefix('(').and_then(|t| t.strip_suffix(')'));
            match inner {
                // Only when the parentheses enclose the whole term: `(A) OR (B)` keeps its own.
                Some(inner) if !inner.contains(')') => inner.to_owned(),
                _ => term,
            }
        })
        .filter(|term| !term.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_license_names_every_linked_crate_license_once() {
        let crates = [
            "anyhow 1.0.0 (MIT OR Apache-2.0)".to_owned(),
            "clap 4.0.0 (MIT OR Apache-2.0)".to_owned(),
            "old 0.1.0 (MIT/Apache-2.0)".to_owned(),
            "unicode-ident 1.0.0 ((MIT OR Apache-2.0) AND Unicode-3.0)".to_owned(),
            "x 1.0.0 (license not declared)".to_owned(),
            "memchr 2.0.0 (Unlicense OR MIT)".to_owned(),
            "other 1.0.0 (Apache-2.0 OR MIT)".to_owned(),
        ];
        assert_eq!(
            license_with_crates(&crates),
            "GPL-2.0-only AND (Apache-2.0 OR MIT) AND (MIT OR Unlicense) AND Unicode-3.0"
        );
        assert_eq!(license_with_crates(&[]), "GPL-2.0-only");
    }
}
