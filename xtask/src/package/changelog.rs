//! `/usr/share/doc/<package>/changelog.Debian.gz`: one Debian changelog entry for the packaged
//! workspace version, dated by the commit it was built from (reproducible: the same commit gives
//! the same file), compressed like dh_compress does (`gzip -9n`, no name or time stamp).

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::capture;

/// What one changelog entry says.
pub struct ChangelogEntry<'a> {
    pub source: &'a str,
    pub version: &'a str,
    pub maintainer: &'a str,
    /// The change lines (each becomes a `  * ` bullet).
    pub changes: &'a [String],
    /// RFC 2822 date (`date -R`).
    pub date: &'a str,
}

impl ChangelogEntry<'_> {
    /// The entry in debian/changelog syntax.
    pub fn render(&self) -> String {
        let mut text = format!(
            "{} ({}) unstable; urgency=medium\n\n",
            self.source, self.version
        );
        for change in self.changes {
            text.push_str(&format!("  * {change}\n"));
        }
        text.push_str(&format!("\n -- {}  {}\n", self.maintainer, self.date));
        text
    }
}

/// `date -R` of a Unix time (UTC).
pub fn rfc2822(epoch: u64) -> Result<String> {
    let date = capture(
        Command::new("date")
            .env("LC_ALL", "C")
            .args(["-u", "-R", "-d"])
            .arg(format!("@{epoch}")),
    )?;
    Ok(date.trim().to_owned())
}

/// `gzip -9n` of `text`.
pub fn gzip(text: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .arg("-9n")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start gzip (install the gzip package)")?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = text.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    writer.join().expect("gzip writer thread")?;
    if !output.status.success() {
        bail!("gzip -9n failed ({})", output.status);
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_entry() {
        let entry = ChangelogEntry {
            source: "hsa-p2p",
            version: "0.1.0-1",
            maintainer: "A <a@example.org>",
            changes: &["First line.".to_owned()],
            date: "Thu, 01 Jan 1970 00:00:00 +0000",
        };
        assert_eq!(
            entry.render(),
            "hsa-p2p (0.1.0-1) unstable; urgency=medium\n\n  * First line.\n\n \
             -- A <a@example.org>  Thu, 01 Jan 1970 00:00:00 +0000\n"
        );
    }

    #[test]
    fn formats_dates_and_compresses_reproducibly() {
        assert_eq!(rfc2822(0).unwrap(), "Thu, 01 Jan 1970 00:00:00 +0000");
        let once = gzip(b"same text\n").unwrap();
        assert_eq!(once, gzip(b"same text\n").unwrap());
        assert_eq!(&once[..2], &[0x1f, 0x8b]);
    }
}
