//! The `DEBIAN/control` paragraph of a binary package and the Debian version derived from the
//! workspace version.

/// Width of extended description lines without the leading space (lintian warns past 80).
const DESCRIPTION_WIDTH: usize = 72;

/// Fields of a binary package's control file.
#[derive(Clone, Debug)]
pub struct Control {
    pub package: String,
    pub source: String,
    pub version: String,
    pub architecture: String,
    pub maintainer: String,
    pub section: String,
    pub depends: Vec<String>,
    pub recommends: Vec<String>,
    pub homepage: String,
    /// The first line of `Description`.
    pub synopsis: String,
    /// The extended description: paragraphs separated by empty lines.
    pub description: String,
    /// Filled in by [`super::deb::DebPackage::build`].
    pub installed_size_kib: Option<u64>,
}

impl Control {
    /// The control file text (deb822, one paragraph, ending with a newline).
    pub fn render(&self) -> String {
        let mut fields = vec![
            ("Package", self.package.clone()),
            ("Source", self.source.clone()),
            ("Version", self.version.clone()),
            ("Architecture", self.architecture.clone()),
            ("Maintainer", self.maintainer.clone()),
        ];
        if let Some(size) = self.installed_size_kib {
            fields.push(("Installed-Size", size.to_string()));
        }
        if !self.depends.is_empty() {
            fields.push(("Depends", self.depends.join(", ")));
        }
        if !self.recommends.is_empty() {
            fields.push(("Recommends", self.recommends.join(", ")));
        }
        fields.push(("Section", self.section.clone()));
        fields.push(("Priority", "optional".to_owned()));
        fields.push(("Homepage", self.homepage.clone()));
        let mut text = String::new();
        for (name, value) in fields {
            text.push_str(&format!("{name}: {value}\n"));
        }
        text.push_str(&format!("Description: {}\n", self.synopsis));
        text.push_str(&extended_description(&self.description));
        text
    }

    /// `<package>_<version without epoch>_<arch>.deb`.
    pub fn file_name(&self) -> String {
        let version = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |(_, v)| v);
        format!("{}_{version}_{}.deb", self.package, self.architecture)
    }
}

/// Continuation lines of `Description`: paragraphs (separated by empty lines) re-wrapped to
/// [`DESCRIPTION_WIDTH`] columns, one leading space, ` .` between paragraphs.
fn extended_description(text: &str) -> String {
    let mut out = String::new();
    for (index, paragraph) in text.trim().split("\n\n").enumerate() {
        if index > 0 {
            out.push_str(" .\n");
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > DESCRIPTION_WIDTH {
                out.push_str(&format!(" {line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push_str(&format!(" {line}\n"));
        }
    }
    out
}

/// The upstream version of a Cargo version as Debian and RPM write it: a SemVer pre-release
/// sorts before the release, so `-rc.1` becomes `~rc.1` (both formats sort `~` first; RPM
/// allows no `-` in `Version` at all). Build metadata (`+build`) stays as it is.
pub fn upstream_version(cargo_version: &str) -> String {
    match cargo_version.split_once('-') {
        Some((release, pre)) => format!("{release}~{pre}"),
        None => cargo_version.to_owned(),
    }
}

/// The Debian version of an upstream version: `<upstream>-<revision>`.
pub fn debian_version(upstream: &str, revision: u32) -> String {
    format!("{upstream}-{revision}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control() -> Control {
        Control {
            package: "hsa-p2p-dkms".into(),
            source: "hsa-p2p".into(),
            version: "0.1.0-1".into(),
            architecture: "all".into(),
            maintainer: "A <a@example.org>".into(),
            section: "kernel".into(),
            depends: vec!["dkms (>= 3.0)".into()],
            recommends: vec![],
            homepage: "https://example.org/".into(),
            synopsis: "one line".into(),
            description: "First paragraph.\n\nSecond paragraph.\n".into(),
            installed_size_kib: Some(12),
        }
    }

    #[test]
    fn renders_a_control_paragraph() {
        assert_eq!(
            control().render(),
            "Package: hsa-p2p-dkms\nSource: hsa-p2p\nVersion: 0.1.0-1\nArchitecture: all\n\
             Maintainer: A <a@example.org>\nInstalled-Size: 12\nDepends: dkms (>= 3.0)\n\
             Section: kernel\nPriority: optional\nHomepage: https://example.org/\n\
             Description: one line\n First paragraph.\n .\n Second paragraph.\n"
        );
    }

    #[test]
    fn wraps_long_descriptions() {
        let words = "word ".repeat(40);
        let text = extended_description(&format!("{words}\n\nshort"));
        for line in text.lines() {
            assert!(line.len() <= DESCRIPTION_WIDTH + 1, "{line:?}");
            assert!(line.starts_with(' '));
        }
        assert!(text.ends_with(" .\n short\n"));
    }

    #[test]
    fn names_the_deb_file() {
        assert_eq!(control().file_name(), "hsa-p2p-dkms_0.1.0-1_all.deb");
        let with_epoch = Control {
            version: "1:0.1.0-1".into(),
            ..control()
        };
        assert_eq!(with_epoch.file_name(), "hsa-p2p-dkms_0.1.0-1_all.deb");
    }

    #[test]
    fn derives_debian_versions() {
        assert_eq!(debian_version(&upstream_version("0.1.0"), 1), "0.1.0-1");
        assert_eq!(
            debian_version(&upstream_version("1.2.0-rc.1"), 2),
            "1.2.0~rc.1-2"
        );
    }
}
