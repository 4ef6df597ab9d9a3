//! `/usr/share/doc/<package>/copyright` in the machine-readable format (DEP-5).

/// What the copyright file says about the package.
pub struct Copyright<'a> {
    pub upstream_name: &'a str,
    pub contact: &'a str,
    pub source: &'a str,
    /// `Copyright:` of the upstream files.
    pub holders: &'a str,
    /// Extra text for the header's `Comment:` (e.g. statically linked crates); may be empty.
    pub comment: &'a str,
}

/// The GPL-2 license paragraph body, as Debian writes it for GPL-2.0-only code.
const GPL_2: &str = "\
This program is free software; you can redistribute it and/or modify it under
the terms of the GNU General Public License version 2 as published by the Free
Software Foundation.

This program is distributed in the hope that it will be useful, but WITHOUT ANY
WARRANTY; without even the implied warranty of MERCHANTABILITY or FITNESS FOR A
PARTICULAR PURPOSE. See the GNU General Public License for more details.

On Debian systems, the complete text of the GNU General Public License version 2
can be found in `/usr/share/common-licenses/GPL-2'.";

impl Copyright<'_> {
    /// The whole file (the workspace is GPL-2.0-only, `License: GPL-2` in Debian's names).
    pub fn render(&self) -> String {
        let mut text = format!(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
             Upstream-Name: {}\nUpstream-Contact: {}\nSource: {}\n",
            self.upstream_name, self.contact, self.source
        );
        if !self.comment.trim().is_empty() {
            text.push_str("Comment:");
            text.push_str(&continuation(self.comment));
        }
        text.push_str(&format!(
            "\nFiles: *\nCopyright: {}\nLicense: GPL-2\n",
            self.holders
        ));
        text.push_str(continuation(GPL_2).trim_start_matches('\n'));
        text
    }
}

/// deb822 continuation lines: a leading space, ` .` for empty lines.
fn continuation(text: &str) -> String {
    let mut out = String::from("\n");
    for line in text.trim().lines() {
        if line.trim().is_empty() {
            out.push_str(" .\n");
        } else {
            out.push(' ');
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dep5() {
        let text = Copyright {
            upstream_name: "hsa-p2p",
            contact: "A <a@example.org>",
            source: "https://example.org/hsa-p2p",
            holders: "2026 hsa-p2p developers",
            comment: "line one\n\nline two",
        }
        .render();
        assert!(text.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
             Upstream-Name: hsa-p2p\n"
        ));
        assert!(text.contains("Comment:\n line one\n .\n line two\n\nFiles: *\n"));
        assert!(text.contains("License: GPL-2\n This program is free software;"));
        assert!(text.ends_with("`/usr/share/common-licenses/GPL-2'.\n"));
        // Every non-empty line of a paragraph is a field or a continuation.
        for line in text.lines().filter(|l| !l.is_empty()) {
            assert!(line.starts_with(' ') || line.contains(':'), "{line:?}");
        }
    }
}
