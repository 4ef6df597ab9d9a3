//! An RPM binary package built with `rpmbuild` (Debian's `rpm` package) from the same payload
//! as the `.deb`: a spec file whose `%install` copies the staged payload into the build root and
//! whose `%files` lists every payload file with its mode, the directories the package owns, the
//! DKMS scriptlets and a `%changelog`. rpmbuild computes the shared-library `Requires` of ELF
//! files itself (elfdeps), as it does on Fedora.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::payload::Payload;
use crate::util::{capture, run_logged};

/// What the spec file says besides the files.
pub struct RpmSpec<'a> {
    pub name: &'a str,
    /// The upstream version (`~` before a pre-release, as in Debian).
    pub version: &'a str,
    pub release: u32,
    pub summary: &'a str,
    /// `Group:` (openSUSE still uses it; Fedora ignores it).
    pub group: &'a str,
    /// SPDX expression (Fedora's `License:` is SPDX since 2022).
    pub license: &'a str,
    pub url: &'a str,
    /// Paragraphs separated by empty lines (wrapped to 72 columns).
    pub description: &'a str,
    /// `Some("noarch")` for architecture-independent packages; `None`: the build host's.
    pub build_arch: Option<&'a str>,
    pub requires: &'a [&'a str],
    pub recommends: &'a [&'a str],
    /// `%post` and `%preun` commands.
    pub post: Option<String>,
    pub preun: Option<String>,
    /// Payload paths marked `%license` and `%doc`.
    pub license_files: &'a [String],
    pub doc_files: &'a [String],
    /// Directories below which every directory belongs to this package (`/usr/src/x-1.0`).
    pub owned_dirs: &'a [String],
    /// `%changelog`: `Thu Nov 26 2026`, the packager, the change lines.
    pub changelog_date: &'a str,
    pub packager: &'a str,
    pub changes: &'a [String],
}

impl RpmSpec<'_> {
    /// The spec file; `%install` copies `staging` (the payload staged as `/`).
    pub fn render(&self, payload: &Payload, staging: &Path) -> String {
        let mut spec = String::from(
            "# Written by `cargo xtask package --rpm`: the files are staged by xtask, this spec\n\
             # only copies them into the build root.\n\
             # The payload is final (p2pctl stripped, man pages compressed): no debuginfo package,\n\
             # no build-id links, none of the brp scripts' post-processing.\n\
             %global debug_package %{nil}\n\
             %global _build_id_links none\n\
             %global __os_install_post %{nil}\n\
             # Reproducible: build time and file times from SOURCE_DATE_EPOCH (the last commit).\n\
             %global use_source_date_epoch_as_buildtime 1\n\
             %global clamp_mtime_to_source_date_epoch 1\n\
             %global _buildhost reproducible\n\n",
        );
        let fields = [
            ("Name", self.name.to_owned()),
            ("Version", self.version.to_owned()),
            ("Release", self.release.to_string()),
            ("Summary", self.summary.to_owned()),
            ("Group", self.group.to_owned()),
            ("License", self.license.to_owned()),
            ("URL", self.url.to_owned()),
            ("Packager", self.packager.to_owned()),
        ];
        for (name, value) in fields {
            spec.push_str(&format!("{name}: {value}\n"));
        }
        if let Some(arch) = self.build_arch {
            spec.push_str(&format!("BuildArch: {arch}\n"));
        }
        for requirement in self.requires {
            spec.push_str(&format!("Requires: {requirement}\n"));
        }
        for recommendation in self.recommends {
            spec.push_str(&format!("Recommends: {recommendation}\n"));
        }
        spec.push_str(&format!(
            "\n%description\n{}\n\n%prep\n\n%build\n\n%install\nmkdir -p %{{buildroot}}\n\
             cp -a '{}'/. %{{buildroot}}/\n\n",
            wrap(self.description),
            staging.display()
        ));
        for (section, commands) in [("post", &self.post), ("preun", &self.preun)] {
            if let Some(commands) = commands {
                spec.push_str(&format!("%{section}\n{}\n", commands.trim_end()));
            }
        }
        spec.push_str("%files\n");
        for dir in owned_directories(payload, self.owned_dirs) {
            spec.push_str(&format!("%dir %attr(0755,root,root) {dir}\n"));
        }
        for file in payload.files() {
            let kind = if self.license_files.contains(&file.path) {
                "%license "
            } else if self.doc_files.contains(&file.path) {
                "%doc "
            } else {
                ""
            };
            spec.push_str(&format!(
                "{kind}%attr({:04o},root,root) {}\n",
                file.mode,
                quote_path(&file.path)
            ));
        }
        spec.push_str(&format!(
            "\n%changelog\n* {} {} - {}-{}\n",
            self.changelog_date, self.packager, self.version, self.release
        ));
        for change in self.changes {
            spec.push_str(&format!("- {change}\n"));
        }
        spec
    }

    /// Builds `<out_dir>/<name>-<version>-<release>.<arch>.rpm` under `work` (the rpmbuild
    /// top directory); returns its path.
    pub fn build(
        &self,
        payload: &Payload,
        work: &Path,
        out_dir: &Path,
        source_date_epoch: u64,
    ) -> Result<PathBuf> {
        let _ = fs::remove_dir_all(work);
        let staging = work.join("payload");
        fs::create_dir_all(&staging)?;
        payload.stage(&staging)?;
        let spec_file = work.join(format!("{}.spec", self.name));
        fs::write(&spec_file, self.render(payload, &staging))?;
        fs::create_dir_all(out_dir)?;
        let define = |name: &str, value: &Path| format!("{name} {}", value.display());
        run_logged(
            Command::new("rpmbuild")
                .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string())
                .env("LC_ALL", "C.UTF-8")
                .arg("-bb")
                .arg("--define")
                .arg(define("_topdir", &work.join("rpmbuild")))
                .arg("--define")
                .arg(define("_rpmdir", out_dir))
                .args([
                    "--define",
                    "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                ])
                .arg(&spec_file),
            &work.join("rpmbuild.log"),
            false,
        )
        .with_context(|| format!("rpmbuild of {} failed", spec_file.display()))?;
        // The name rpmbuild writes is fixed by _build_name_fmt.
        let arch = match self.build_arch {
            Some(arch) => arch.to_owned(),
            None => capture(Command::new("rpm").args(["--eval", "%{_arch}"]))?
                .trim()
                .to_owned(),
        };
        let rpm = out_dir.join(format!(
            "{}-{}-{}.{arch}.rpm",
            self.name, self.version, self.release
        ));
        if !rpm.is_file() {
            bail!("rpmbuild reported success but {} is missing", rpm.display());
        }
        Ok(rpm)
    }
}

/// Every directory of the payload at or below one of `roots`, parents first.
fn owned_directories(payload: &Payload, roots: &[String]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for file in payload.files() {
        let mut dir = Path::new(&file.path).parent();
        while let Some(current) = dir {
            let text = current.display().to_string();
            if !roots.iter().any(|root| text.starts_with(root.as_str())) {
                break;
            }
            dirs.insert(text);
            dir = current.parent();
        }
    }
    dirs
}

/// rpm's `%files` treats whitespace and glob characters specially; payload paths have none,
/// but a path that did would silently name other files, so quote it.
fn quote_path(path: &str) -> String {
    if path.contains(|c: char| c.is_whitespace() || "*?[]{}".contains(c)) {
        format!("\"{path}\"")
    } else {
        path.to_owned()
    }
}

/// `%description` text: paragraphs re-wrapped to 72 columns (rpmlint: description-line-too-long
/// past 79).
fn wrap(text: &str) -> String {
    let mut out = Vec::new();
    for paragraph in text.trim().split("\n\n") {
        let mut line = String::new();
        let mut lines = Vec::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > 72 {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
        out.push(lines.join("\n"));
    }
    out.join("\n\n")
}

/// The RPM `%changelog` date of a Unix time: `Thu Nov 26 2026`.
pub fn changelog_date(epoch: u64) -> Result<String> {
    Ok(capture(
        Command::new("date")
            .env("LC_ALL", "C")
            .args(["-u", "+%a %b %d %Y", "-d"])
            .arg(format!("@{epoch}")),
    )?
    .trim()
    .to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::payload::{MODE_EXECUTABLE, MODE_FILE};
    use super::*;

    fn spec<'a>(
        license_files: &'a [String],
        owned: &'a [String],
        changes: &'a [String],
    ) -> RpmSpec<'a> {
        RpmSpec {
            name: "hsa-p2p-dkms",
            version: "1.0.0~rc.1",
            release: 2,
            summary: "One line",
            group: "System/Kernel",
            license: "GPL-2.0-only",
            url: "https://example.org/",
            description: "First paragraph.\n\nSecond.",
            build_arch: Some("noarch"),
            requires: &["dkms"],
            recommends: &[],
            post: Some("dkms add -m x -v 1\n".to_owned()),
            preun: None,
            license_files,
            doc_files: &[],
            owned_dirs: owned,
            changelog_date: "Thu Jan 01 1970",
            packager: "A <a@example.org>",
            changes,
        }
    }

    #[test]
    fn renders_files_dirs_scriptlets_and_changelog() {
        let mut payload = Payload::default();
        payload.add_bytes("/usr/src/x-1/dkms.conf", b"", MODE_FILE);
        payload.add_bytes("/usr/src/x-1/dkms/kbuild", b"", MODE_EXECUTABLE);
        payload.add_bytes("/usr/share/licenses/x/GPL-2", b"", MODE_FILE);
        let licenses = ["/usr/share/licenses/x/GPL-2".to_owned()];
        let owned = ["/usr/src/x-1".to_owned()];
        let changes = ["First.".to_owned()];
        let text = spec(&licenses, &owned, &changes).render(&payload, Path::new("/stage"));
        assert!(text.contains("Version: 1.0.0~rc.1\nRelease: 2\n"));
        assert!(text.contains("BuildArch: noarch\nRequires: dkms\n"));
        assert!(text.contains("cp -a '/stage'/. %{buildroot}/\n"));
        assert!(text.contains("%post\ndkms add -m x -v 1\n%files\n"));
        assert!(text.contains(
            "%files\n%dir %attr(0755,root,root) /usr/src/x-1\n\
             %dir %attr(0755,root,root) /usr/src/x-1/dkms\n\
             %attr(0644,root,root) /usr/src/x-1/dkms.conf\n\
             %attr(0755,root,root) /usr/src/x-1/dkms/kbuild\n\
             %license %attr(0644,root,root) /usr/share/licenses/x/GPL-2\n"
        ));
        assert!(text.ends_with(
            "%changelog\n* Thu Jan 01 1970 A <a@example.org> - 1.0.0~rc.1-2\n- First.\n"
        ));
        assert!(!text.contains("%preun"));
    }

    #[test]
    fn dates_and_wrapping() {
        assert_eq!(changelog_date(0).unwrap(), "Thu Jan 01 1970");
        let long = "word ".repeat(40);
        for line in wrap(&format!("{long}\n\nshort")).lines() {
            assert!(line.len() <= 72, "{line:?}");
        }
        assert_eq!(quote_path("/a b"), "\"/a b\"");
    }
}
