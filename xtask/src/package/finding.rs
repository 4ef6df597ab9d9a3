//! One finding of a package checker (lintian or rpmlint), and the verdict both lead to: every
//! finding is printed, the full output kept, and any error fails the packaging.

use std::fmt;
use std::fs;
use std::path::Path;

use anyhow::{bail, Result};

use crate::util::note;

/// `E: hsa-p2p-tools: tag-name detail` (lintian) or `hsa-p2p-tools.x86_64: W: name detail`
/// (rpmlint), in one shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `E`rror, `W`arning, `I`nfo, `P`edantic, …
    pub severity: char,
    pub package: String,
    pub name: String,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.package, self.name)?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        Ok(())
    }
}

/// Prints `findings` of `tool`, writes its full `output` to `log`, and fails on any error.
pub fn verdict(tool: &str, findings: &[Finding], output: &str, log: &Path) -> Result<()> {
    fs::write(log, output)?;
    for finding in findings {
        note(finding.to_string());
    }
    let count = |severity| findings.iter().filter(|f| f.severity == severity).count();
    let (errors, warnings) = (count('E'), count('W'));
    note(format!(
        "{errors} error(s), {warnings} warning(s), {} other finding(s) (full output: {})",
        findings.len() - errors - warnings,
        log.display()
    ));
    if errors > 0 {
        bail!("{tool} reports {errors} error(s) (see above)");
    }
    Ok(())
}
