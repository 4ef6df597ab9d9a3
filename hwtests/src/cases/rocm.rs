//! The ROCm user space on a runner with AMD GPUs bound to amdgpu: `rocm_bandwidth_test`,
//! `TransferBench`, `rocm-smi` and `amd-smi`, run here or replayed from a recording, checked
//! per ordered GPU pair against amdkfd's peer links and the prediction from the PCI facts.
//!
//! Each case needs its tool (found, or in the recording), amdkfd's topology and two GPUs, and
//! says which one is missing when it skips.

use hsa_p2p_core::facts::PciAddress;

use super::kfd::pcie_p2p;
use crate::context::Context;
use crate::kfd_validation::{match_gpus, validate, TreeKind};
use crate::report::Outcome;
use crate::rocm::collect::{validation_purpose, TOPOLOGY, VERSION};
use crate::rocm::parse::{amd_smi, bandwidth_test, rocm_smi, transfer_bench, ParseError};
use crate::rocm::peers::{staged, BandwidthView, Machine, ToolView, Verdict};
use crate::rocm::tools::{Run, Tool};
use crate::rocm::RocmSource;
use crate::runner::{Test, TestOutput};

/// The `rocm` suite.
pub const TESTS: &[Test] = &[
    Test {
        suite: "rocm",
        name: "user_space_found",
        description: "the ROCm tools are found (PATH, /opt/rocm*/bin) and report their versions",
        run: user_space_found,
    },
    Test {
        suite: "rocm",
        name: "bandwidth_test_access_matches_topology",
        description: "rocm_bandwidth_test's access matrix and NUMA distances equal amdkfd's \
                      peer links and the prediction, pair by pair",
        run: bandwidth_test_access,
    },
    Test {
        suite: "rocm",
        name: "bandwidth_test_peer_bandwidth",
        description: "rocm_bandwidth_test: linked pairs reach the fraction of max_bandwidth and \
                      beat the staged path; unlinked pairs show no peer copy",
        run: bandwidth_test_bandwidth,
    },
    Test {
        suite: "rocm",
        name: "bandwidth_test_copies_validated",
        description: "rocm_bandwidth_test -v copies every linked pair and verifies the data",
        run: bandwidth_test_validated,
    },
    Test {
        suite: "rocm",
        name: "transfer_bench_peer_bandwidth",
        description: "TransferBench p2p (verified copies): linked pairs reach the fraction of \
                      max_bandwidth and beat the staged path; unlinked pairs show no peer copy",
        run: transfer_bench_bandwidth,
    },
    Test {
        suite: "rocm",
        name: "rocm_smi_links_match_topology",
        description: "rocm-smi --showtopo's link type, weight and hops equal amdkfd's peer links \
                      and the prediction",
        run: rocm_smi_topology,
    },
    Test {
        suite: "rocm",
        name: "amd_smi_links_match_topology",
        description: "amd-smi topology's access, link type, weight and hops equal amdkfd's peer \
                      links and the prediction",
        run: amd_smi_topology,
    },
];

const SEARCHED: &str = "PATH or /opt/rocm*/bin";

/// Why a tool's case cannot run: the tool is absent (or ROCm altogether).
fn tool_missing(context: &Context, tool: Tool) -> Option<TestOutput> {
    let found = match context.rocm_tools() {
        Ok(found) => found,
        Err(error) => return Some(Outcome::fail(format!("recording: {error}")).into()),
    };
    if found.iter().any(|found| found.tool == tool) {
        return None;
    }
    let reason = match (context.rocm_source(), found.is_empty()) {
        (RocmSource::Replay(dir), _) => {
            format!(
                "the recording {} has no {} output",
                dir.display(),
                tool.name()
            )
        }
        (RocmSource::Machine, true) => format!(
            "no ROCm user space: none of {} in {SEARCHED}",
            Tool::ALL.map(Tool::name).join(", ")
        ),
        (RocmSource::Machine, false) => format!(
            "{} not found in {SEARCHED} (package {})",
            tool.name(),
            tool.package()
        ),
    };
    Some(Outcome::skip(reason).into())
}

/// amdkfd's GPUs, at least two, with the prediction; or the output that ends the test.
fn machine(context: &Context) -> Result<Machine<'_>, TestOutput> {
    let tree = match context.kfd_tree() {
        None => {
            return Err(Outcome::skip(format!(
                "no KFD topology at {}: amdgpu is not loaded or there is no AMD GPU",
                context.kfd_topology_path().display()
            ))
            .into())
        }
        Some(Err(error)) => {
            return Err(Outcome::fail(format!("unreadable KFD topology: {error}")).into())
        }
        Some(Ok(tree)) => tree,
    };
    let count = tree.nodes.iter().filter(|node| node.is_gpu()).count();
    if count < 2 {
        return Err(Outcome::skip(format!(
            "{count} GPU in amdkfd's topology: a peer pair needs a second GPU"
        ))
        .into());
    }
    let inventory = context
        .inventory()
        .map_err(|error| TestOutput::from(Outcome::fail(format!("PCI facts: {error}"))))?;
    let gpus = match_gpus(inventory, tree, TreeKind::Kfd).map_err(Outcome::Fail)?;
    let (enabled, _) = pcie_p2p(context);
    let validation = validate(inventory, tree, TreeKind::Kfd, enabled).map_err(Outcome::Fail)?;
    Ok(Machine {
        tree,
        predicted: validation.predicted,
        gpus: gpus
            .iter()
            .map(|(node, device)| (*node, device.address))
            .collect(),
    })
}

/// The tool's run for `purpose`; a failed run or a missing one ends the test.
fn run_of<'a>(context: &'a Context, tool: Tool, purpose: &str) -> Result<&'a Run, TestOutput> {
    let runs = context
        .rocm_runs()
        .map_err(|error| TestOutput::from(Outcome::fail(format!("recording: {error}"))))?;
    let run = runs
        .iter()
        .find(|run| run.tool == tool && run.purpose == purpose)
        .ok_or_else(|| {
            TestOutput::from(Outcome::fail(format!(
                "no `{purpose}` run of {}",
                tool.name()
            )))
        })?;
    if run.succeeded() {
        Ok(run)
    } else {
        Err(Outcome::fail(run.failure()).into())
    }
}

/// Everything a tool's case needs, parsed with `parse`.
fn prepare<'a, T>(
    context: &'a Context,
    tool: Tool,
    parse: fn(&str) -> Result<T, ParseError>,
) -> Result<(Machine<'a>, T), TestOutput> {
    if let Some(output) = tool_missing(context, tool) {
        return Err(output);
    }
    let machine = machine(context)?;
    let run = run_of(context, tool, TOPOLOGY)?;
    let report = parse(&run.stdout).map_err(|error| {
        TestOutput::from(Outcome::fail(format!(
            "`{}` output: {error}",
            run.command.join(" ")
        )))
    })?;
    Ok((machine, report))
}

fn output(verdict: Verdict, mut notes: Vec<String>) -> TestOutput {
    notes.extend(verdict.notes);
    TestOutput::with_notes(Outcome::from_problems(verdict.problems), notes)
}

fn user_space_found(context: &Context) -> TestOutput {
    let found = match context.rocm_tools() {
        Ok(found) => found,
        Err(error) => return Outcome::fail(format!("recording: {error}")).into(),
    };
    if found.is_empty() {
        return tool_missing(context, Tool::BandwidthTest).unwrap_or_else(|| Outcome::Pass.into());
    }
    let runs = context.rocm_runs().unwrap_or_default();
    let notes = found
        .iter()
        .map(|found| {
            let version = runs
                .iter()
                .find(|run| run.tool == found.tool && run.purpose == VERSION)
                .map(|run| run.stdout.trim().to_string())
                .or_else(|| {
                    let topology = runs
                        .iter()
                        .find(|run| run.tool == found.tool && run.purpose == TOPOLOGY)?;
                    match found.tool {
                        Tool::BandwidthTest => bandwidth_test::parse(&topology.stdout)
                            .ok()
                            .map(|report| report.version),
                        Tool::TransferBench => transfer_bench::parse(&topology.stdout)
                            .ok()
                            .and_then(|report| report.version),
                        _ => None,
                    }
                })
                .filter(|version| !version.is_empty())
                .unwrap_or_else(|| "version not reported".into());
            format!(
                "{}: {} ({version})",
                found.tool.name(),
                found.path.display()
            )
        })
        .collect();
    TestOutput::with_notes(Outcome::Pass, notes)
}

/// rocm_bandwidth_test's index of each GPU node, by PCI bus, device and function.
fn bandwidth_test_indices(
    machine: &Machine<'_>,
    report: &bandwidth_test::BandwidthTestReport,
) -> impl Fn(u32) -> Option<usize> {
    let indices: Vec<(u32, usize)> = report
        .gpus()
        .filter_map(|device| {
            let location = device.location?;
            let (node, _) = machine.gpus.iter().find(|(_, address)| {
                (address.bus, address.device, address.function)
                    == (location.bus, location.device, location.function)
            })?;
            Some((*node, device.index))
        })
        .collect();
    move |node| {
        indices
            .iter()
            .find(|(id, _)| *id == node)
            .map(|(_, index)| *index)
    }
}

fn bandwidth_test_access(context: &Context) -> TestOutput {
    let (machine, report) = match prepare(context, Tool::BandwidthTest, bandwidth_test::parse) {
        Ok(prepared) => prepared,
        Err(output) => return output,
    };
    let index = bandwidth_test_indices(&machine, &report);
    let verdict = machine.compare("rocm_bandwidth_test", |from, to| {
        let (a, b) = (index(from)?, index(to)?);
        let p2p = report.access[a][b];
        Some(ToolView {
            p2p: Some(p2p),
            weight: report.numa_distance[a][b].filter(|_| p2p),
            ..ToolView::default()
        })
    });
    output(
        verdict,
        vec![format!("rocm_bandwidth_test {}", report.version)],
    )
}

fn bandwidth_test_bandwidth(context: &Context) -> TestOutput {
    let (machine, report) = match prepare(context, Tool::BandwidthTest, bandwidth_test::parse) {
        Ok(prepared) => prepared,
        Err(output) => return output,
    };
    let Some(unidirectional) = &report.unidirectional else {
        return Outcome::fail("rocm_bandwidth_test printed no unidirectional bandwidths").into();
    };
    let index = bandwidth_test_indices(&machine, &report);
    let cpus: Vec<usize> = report
        .devices
        .iter()
        .filter(|device| device.location.is_none())
        .map(|device| device.index)
        .collect();
    let verdict = machine.check_bandwidth(
        "rocm_bandwidth_test",
        context.bandwidth_fraction,
        |from, to| {
            let (a, b) = (index(from)?, index(to)?);
            Some(BandwidthView {
                unidirectional: unidirectional[a][b],
                bidirectional: report.bidirectional.as_ref().and_then(|bi| bi[a][b]),
                staged: best_staged(&cpus, |x, y| unidirectional[x][y], a, b),
            })
        },
    );
    output(
        verdict,
        vec![format!("rocm_bandwidth_test {}", report.version)],
    )
}

/// The fastest staged path from `a` to `b` through one of `cpus`.
fn best_staged(
    cpus: &[usize],
    bandwidth: impl Fn(usize, usize) -> Option<f64>,
    a: usize,
    b: usize,
) -> Option<f64> {
    cpus.iter()
        .filter_map(|&cpu| staged(bandwidth(a, cpu)?, bandwidth(cpu, b)?))
        .max_by(f64::total_cmp)
}

fn bandwidth_test_validated(context: &Context) -> TestOutput {
    let (machine, report) = match prepare(context, Tool::BandwidthTest, bandwidth_test::parse) {
        Ok(prepared) => prepared,
        Err(output) => return output,
    };
    let runs = context.rocm_runs().unwrap_or_default();
    let validations: Vec<&Run> = runs
        .iter()
        .filter(|run| run.tool == Tool::BandwidthTest && run.purpose.starts_with("validate "))
        .collect();
    if let RocmSource::Replay(dir) = context.rocm_source() {
        if validations.is_empty() {
            return Outcome::skip(format!(
                "the recording {} has no validated copies (rocm_bandwidth_test -v runs)",
                dir.display()
            ))
            .into();
        }
    }
    let index = bandwidth_test_indices(&machine, &report);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for (from, to) in machine.pairs() {
        if machine.kfd(from, to).is_none() {
            continue;
        }
        let pair = format!("{} -> {}", machine.label(from), machine.label(to));
        let (Some(a), Some(b)) = (index(from), index(to)) else {
            problems.push(format!(
                "{pair}: rocm_bandwidth_test does not list this pair"
            ));
            continue;
        };
        let purpose = validation_purpose(a, b);
        match validations.iter().find(|run| run.purpose == purpose) {
            None => problems.push(format!(
                "{pair}: no validated copy (rocm_bandwidth_test reports no access {a} -> {b})"
            )),
            Some(run) if !run.succeeded() => {
                problems.push(format!("{pair}: verification failed: {}", run.failure()))
            }
            Some(_) => notes.push(format!("{pair}: copy verified (`-s {a} -d {b} -v`)")),
        }
    }
    TestOutput::with_notes(Outcome::from_problems(problems), notes)
}

fn transfer_bench_bandwidth(context: &Context) -> TestOutput {
    let (machine, report) = match prepare(context, Tool::TransferBench, transfer_bench::parse) {
        Ok(prepared) => prepared,
        Err(output) => return output,
    };
    // HIP numbers the GPUs in amdkfd's node order.
    let column = |node: u32| {
        let position = machine.gpus.iter().position(|(id, _)| *id == node)?;
        report
            .devices
            .iter()
            .position(|device| *device == transfer_bench::Device::Gpu(position))
    };
    let cpus: Vec<usize> = (0..report.devices.len())
        .filter(|i| matches!(report.devices[*i], transfer_bench::Device::Cpu(_)))
        .collect();
    let uni = &report.unidirectional;
    let verdict = machine.check_bandwidth("TransferBench", context.bandwidth_fraction, |f, t| {
        let (a, b) = (column(f)?, column(t)?);
        Some(BandwidthView {
            unidirectional: uni[a][b],
            bidirectional: report.bidirectional.as_ref().and_then(|bi| bi[a][b]),
            staged: best_staged(&cpus, |x, y| uni[x][y], a, b),
        })
    });
    let version = report.version.as_deref().unwrap_or("version not printed");
    output(
        verdict,
        vec![format!(
            "TransferBench {version} (it verifies every transfer)"
        )],
    )
}

/// rocm-smi's GPU index of each node: by `--showbus` address, else in PCI address order (the
/// order rocm_smi_lib enumerates GPUs in).
fn rocm_smi_index(
    machine: &Machine<'_>,
    addresses: Option<&[PciAddress]>,
) -> impl Fn(u32) -> Option<usize> {
    let order: Vec<PciAddress> = match addresses {
        Some(addresses) => addresses.to_vec(),
        None => {
            let mut sorted: Vec<PciAddress> = machine.gpus.iter().map(|(_, a)| *a).collect();
            sorted.sort();
            sorted
        }
    };
    let gpus = machine.gpus.clone();
    move |node| {
        let (_, address) = gpus.iter().find(|(id, _)| *id == node)?;
        order.iter().position(|a| a == address)
    }
}

fn rocm_smi_topology(context: &Context) -> TestOutput {
    let (machine, report) = match prepare(context, Tool::RocmSmi, rocm_smi::parse) {
        Ok(prepared) => prepared,
        Err(output) => return output,
    };
    if report.gpus != machine.gpus.len() {
        return Outcome::fail(format!(
            "rocm-smi lists {} GPUs, amdkfd {}",
            report.gpus,
            machine.gpus.len()
        ))
        .into();
    }
    let index = rocm_smi_index(&machine, report.addresses.as_deref());
    let verdict = machine.compare("rocm-smi", |from, to| {
        let (a, b) = (index(from)?, index(to)?);
        Some(ToolView {
            p2p: None,
            link_type: report.link_type[a][b],
            weight: report.weight[a][b],
            hops: report.hops[a][b],
        })
    });
    let mapping = match report.addresses {
        Some(_) => "GPUs matched by --showbus address",
        None => "no --showbus addresses: GPUs matched in PCI address order",
    };
    output(verdict, vec![mapping.to_string()])
}

fn amd_smi_topology(context: &Context) -> TestOutput {
    let (machine, report) = match prepare(context, Tool::AmdSmi, amd_smi::parse) {
        Ok(prepared) => prepared,
        Err(output) => return output,
    };
    let index = |node: u32| {
        let (_, address) = machine.gpus.iter().find(|(id, _)| *id == node)?;
        report.gpus.iter().position(|gpu| gpu == address)
    };
    // Some amd-smi versions print 0 for every weight (seen on an MI355X hive): nothing to
    // compare then, and the note says so.
    let weights_reported = report
        .weight
        .iter()
        .enumerate()
        .any(|(a, row)| row.iter().enumerate().any(|(b, w)| a != b && *w != 0));
    let verdict = machine.compare("amd-smi", |from, to| {
        let (a, b) = (index(from)?, index(to)?);
        Some(ToolView {
            p2p: Some(report.access[a][b]),
            link_type: report.link_type[a][b],
            weight: weights_reported.then_some(report.weight[a][b]),
            hops: Some(report.hops[a][b]),
        })
    });
    let mut notes = Vec::new();
    if !weights_reported {
        notes.push("amd-smi reports weight 0 for every pair: weights not compared".into());
    }
    output(verdict, notes)
}
