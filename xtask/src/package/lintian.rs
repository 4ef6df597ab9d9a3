//! Runs `lintian` on the built packages and sorts what it says by severity. Errors fail the
//! packaging; warnings and informational tags are listed (the accepted ones are explained in
//! docs/packaging.md or overridden in the package with a reason).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::finding::Finding;

/// Parses lintian's output (lines that are not tags, like `N:` notes, are ignored).
pub fn parse(output: &str) -> Vec<Finding> {
    output
        .lines()
        .filter_map(|line| {
            let (severity, rest) = line.split_once(": ")?;
            let severity = match severity {
                "E" | "W" | "I" | "P" | "X" | "O" | "C" => severity.chars().next()?,
                _ => return None,
            };
            let (package, rest) = rest.split_once(": ")?;
            let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Finding {
                severity,
                package: package.split_whitespace().next()?.to_owned(),
                name: name.to_owned(),
                detail: detail.to_owned(),
            })
        })
        .collect()
}

/// `lintian --info --display-experimental --pedantic` on `debs`; never fails on tags itself.
pub fn run(debs: &[&Path]) -> Result<(Vec<Finding>, String)> {
    let output = Command::new("lintian")
        .args([
            "--fail-on",
            "none",
            "--info",
            "--pedantic",
            "--no-tag-display-limit",
        ])
        .args(debs)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .context("cannot start lintian (install the lintian package)")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        anyhow::bail!(
            "lintian failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok((parse(&stdout), stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags() {
        let tags = parse(
            "E: hsa-p2p-tools: unstripped-binary-or-object [usr/bin/p2pctl]\n\
             W: hsa-p2p-dkms: initial-upload-closes-no-bugs [usr/share/doc/x]\n\
             I: hsa-p2p-tools: hardening-no-fortify-functions\n\
             N: a note\n",
        );
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0].severity, 'E');
        assert_eq!(tags[0].name, "unstripped-binary-or-object");
        assert_eq!(tags[0].detail, "[usr/bin/p2pctl]");
        assert_eq!(tags[2].detail, "");
        assert_eq!(
            tags[1].to_string(),
            "W: hsa-p2p-dkms: initial-upload-closes-no-bugs [usr/share/doc/x]"
        );
    }
}
