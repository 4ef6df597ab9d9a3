//! Runs `rpmlint` (Debian's package) on the built RPMs and sorts what it says by severity, like
//! [`super::lintian`]: errors fail the packaging, warnings are listed (and explained in
//! docs/packaging.md or filtered with a reason in `packaging/rpmlint/hsa-p2p.toml`).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::finding::Finding;
use crate::util;

/// Parses rpmlint's output (lines like `hsa-p2p-tools.x86_64: W: no-documentation`; the
/// summary line and explanations are ignored).
pub fn parse(output: &str) -> Vec<Finding> {
    output
        .lines()
        .filter_map(|line| {
            let (package, rest) = line.split_once(": ")?;
            let (severity, rest) = rest.split_once(": ")?;
            let severity = match severity {
                "E" | "W" | "I" => severity.chars().next()?,
                _ => return None,
            };
            let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Finding {
                severity,
                package: package.trim().to_owned(),
                name: name.to_owned(),
                detail: detail.trim().to_owned(),
            })
        })
        .collect()
}

/// `rpmlint` with the project's configuration on `rpms`; never fails on findings itself (its
/// exit status is non-zero when there are errors, which the caller counts).
pub fn run(rpms: &[&Path]) -> Result<(Vec<Finding>, String)> {
    let config = util::workspace_root().join("packaging/rpmlint/hsa-p2p.toml");
    let output = Command::new("rpmlint")
        .arg("--config")
        .arg(&config)
        .args(rpms)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .context("cannot start rpmlint (install the rpmlint package)")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let findings = parse(&stdout);
    // rpmlint exits 64 (errors found) or 66 (badness over threshold) after a full run; anything
    // else without findings means it did not run.
    if !output.status.success() && findings.is_empty() {
        anyhow::bail!(
            "rpmlint failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok((findings, stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_findings() {
        let findings = parse(
            "============================ rpmlint session starts ============================\n\
             hsa-p2p-tools.x86_64: W: no-documentation\n\
             hsa-p2p-dkms.noarch: E: zero-length /usr/src/x/empty\n\
             2 packages and 0 specfiles checked; 1 errors, 1 warnings, 0 badness; has taken 0.1 s\n",
        );
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].severity, 'W');
        assert_eq!(findings[0].package, "hsa-p2p-tools.x86_64");
        assert_eq!(findings[1].name, "zero-length");
        assert_eq!(findings[1].detail, "/usr/src/x/empty");
        assert_eq!(
            findings[1].to_string(),
            "E: hsa-p2p-dkms.noarch: zero-length /usr/src/x/empty"
        );
    }
}
