//! Running the tools found on the machine under test: each tool's topology run (and version
//! run), then one validated `rocm_bandwidth_test` copy per pair its access matrix allows.

use std::time::Duration;

use super::parse::bandwidth_test;
use super::tools::{run, Found, Run, Tool};

/// Longest a single tool run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// `purpose` of the run whose output the suite parses.
pub const TOPOLOGY: &str = "topology";
/// `purpose` of a version run.
pub const VERSION: &str = "version";

/// `purpose` of the validated copy from device `src` to `dst` (the tool's indices).
pub fn validation_purpose(src: usize, dst: usize) -> String {
    format!("validate {src} {dst}")
}

/// Runs every found tool.
pub fn collect(found: &[Found]) -> Vec<Run> {
    let mut runs = Vec::new();
    for found in found {
        let tool = found.tool;
        if let Some(args) = tool.version_args() {
            let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
            runs.push(run(tool, VERSION, &found.path, &args, RUN_TIMEOUT));
        }
        let args: Vec<String> = tool.topology_args().iter().map(|a| a.to_string()).collect();
        let topology = run(tool, TOPOLOGY, &found.path, &args, RUN_TIMEOUT);
        let validations = match (tool, topology.succeeded()) {
            (Tool::BandwidthTest, true) => validations(found, &topology.stdout),
            _ => Vec::new(),
        };
        runs.push(topology);
        runs.extend(validations);
    }
    runs
}

/// `rocm_bandwidth_test -s SRC -d DST -v` for every GPU pair the access matrix allows: the
/// tool copies and compares the destination with the source (validation is supported for
/// unidirectional copies only).
fn validations(found: &Found, topology: &str) -> Vec<Run> {
    let Ok(report) = bandwidth_test::parse(topology) else {
        // The topology case reports the parse error.
        return Vec::new();
    };
    let gpus: Vec<usize> = report.gpus().map(|device| device.index).collect();
    let mut runs = Vec::new();
    for &src in &gpus {
        for &dst in &gpus {
            if src != dst && report.access[src][dst] {
                let args = ["-s", &src.to_string(), "-d", &dst.to_string(), "-v"]
                    .map(String::from)
                    .to_vec();
                runs.push(run(
                    Tool::BandwidthTest,
                    &validation_purpose(src, dst),
                    &found.path,
                    &args,
                    RUN_TIMEOUT,
                ));
            }
        }
    }
    runs
}
