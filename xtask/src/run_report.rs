//! The end of a test run on the host (`test-hw`, `vm-test`): KTAP on stdout, KTAP, JUnit and
//! JSON into a directory, and the counts.

use std::path::Path;

use anyhow::{Context, Result};
use hsa_p2p_hwtests::report::{ktap, write_reports, Run, Summary};

use crate::util::note;

/// Prints `run` as KTAP, writes its reports into `dir` and prints `<name>: <counts>`.
pub fn publish(run: &Run, dir: &Path) -> Result<Summary> {
    let files = write_reports(run, dir)
        .with_context(|| format!("cannot write the reports to {}", dir.display()))?;
    println!("{}", ktap(&run.cases));
    note(format!(
        "reports: {}, {}, {}",
        files.ktap.display(),
        files.junit.display(),
        files.json.display()
    ));
    let summary = run.summary();
    println!("{}: {summary}", run.name);
    Ok(summary)
}
