//! `cargo xtask vm-test`: boots every shipped spec that QEMU can express, compares what the
//! module publishes with what the shared rules predict, and verifies from the host what only
//! the host can see. Every check of the module's behaviour inside the machine is an `hwtests`
//! case, run in the guest; its typed report comes back over the console.
//!
//! Per spec: the topology after binding all GPUs equals `p2pctl predict` of the emulated spec,
//! and so do `p2pctl why`'s verdicts; the guest's `hwtests` runs its topology, transfer and
//! isolation suites; unbinding the first GPU removes its node and links, renumbers and bumps
//! `generation_id`; binding it again restores it (as the last node, like amdkfd); ten `rmmod` +
//! `insmod` leave the same topology (with a GPU the `hotplug` suite added back bound last: the
//! kernel lists it last), no sysfs leftovers and no kernel warning. A machine with a
//! corrupt descriptor is refused that GPU; the transfer machines run the `abi` and `device`
//! suites ([`transfers`]). Specs QEMU cannot express are reported as skipped with the reason.

mod guest_script;
mod hwtests_in_guest;
mod transfers;
mod why_check;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hsa_p2p_hwtests::report::{Case, Outcome, Run};
use hsa_p2p_runtime::predict::predict_in_bind_order;
use hsa_p2p_runtime::spec::{PcieElementKind, Spec};

use crate::emulation::{emulate, EmulatedMachine};
use crate::flavour::Flavour;
use crate::util::{note, phase};
use crate::vm;
use crate::vm::guests::{shipped_spec, topologies_dir, Boot, GuestTool, Guests};
use crate::vm::options::GuestOptions;
use crate::vm::protocol::{self, read_tree};
use crate::vm::published_tree::{differences, tree_of, Tree};
use guest_script::{refusal_script, test_script, RELOADS};

/// Options of `cargo xtask vm-test`.
#[derive(clap::Args, Debug)]
pub struct VmTestArgs {
    /// Specs to run (default: every `topologies/*.toml`).
    #[arg(value_name = "SPEC.toml")]
    pub specs: Vec<PathBuf>,
    #[command(flatten)]
    pub guest: GuestOptions,
    /// Run only the peer-transfer and bad-input machines.
    #[arg(long)]
    pub transfers_only: bool,
    /// Leave out shipped specs (file names without `.toml`, comma-separated or repeated),
    /// e.g. machines that add little on the debug flavour but minutes of CI time.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub exclude: Vec<String>,
}

/// Timeout per machine when none is given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

fn shipped_specs() -> Result<Vec<PathBuf>> {
    let dir = topologies_dir();
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    specs.retain(|path| path.extension().is_some_and(|e| e == "toml"));
    specs.sort();
    Ok(specs)
}

/// Runs the checks; fails if any case failed.
pub fn vm_test(args: &VmTestArgs) -> Result<()> {
    let specs = if args.specs.is_empty() {
        let mut specs = shipped_specs()?;
        specs.retain(|path| {
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            let excluded = args.exclude.iter().any(|e| *e == name);
            if excluded {
                note(format!("{name}: left out (--exclude)"));
            }
            !excluded
        });
        specs
    } else {
        args.specs.clone()
    };
    // What every guest gets: the module under test, the static `p2pctl` and `hwtests`.
    let guests = Guests::prepare(
        &args.guest,
        DEFAULT_TIMEOUT,
        &[GuestTool::P2pctl, GuestTool::Hwtests],
    )?;
    let flavour = guests.settings.flavour;
    let mut cases = Vec::new();
    if args.transfers_only {
        cases.extend(transfers::run_transfers(&guests)?);
        return finish(cases, flavour);
    }
    for path in &specs {
        let spec = Spec::load(path)?;
        let shm_prefix = format!("hsa-p2p-vmtest-{}-{}", std::process::id(), spec.name);
        match emulate(&spec, &shm_prefix) {
            Err(reason) => {
                note(format!("{}: skipped: {reason:#}", spec.name));
                cases.push(Case::new(
                    spec.name.clone(),
                    "emulated",
                    Outcome::Skip(format!("{reason:#}")),
                    Duration::ZERO,
                ));
            }
            Ok(machine) => {
                phase(format!("{}: boot {} GPUs", spec.name, machine.gpus.len()));
                for adaptation in &machine.adaptations {
                    note(format!("{}: {adaptation}", spec.name));
                }
                cases.extend(run_spec(&spec.name, &machine, &guests)?);
            }
        }
    }
    if args.specs.is_empty() {
        cases.extend(run_refusal(&guests)?);
        cases.extend(transfers::run_transfers(&guests)?);
    }
    finish(cases, flavour)
}

/// Prints KTAP and writes the reports into `target/vm-test/` (`target/vm-test-debug/` for the
/// debug flavour); fails if a case failed.
fn finish(cases: Vec<Case>, flavour: Flavour) -> Result<()> {
    let run = Run {
        name: "vm-test".into(),
        cases,
        ..Run::default()
    };
    let summary = crate::run_report::publish(&run, &flavour.target_subdir("vm-test"))?;
    if run.failed() {
        bail!("vm-test failed: {summary}");
    }
    Ok(())
}

/// The spec the refusal check corrupts one GPU of.
const REFUSAL_SPEC: &str = "mixed-three-gpus.toml";

/// A GPU whose descriptor page is corrupt must be refused with a clear log line and left out of
/// the topology; the others must bind as usual.
fn run_refusal(guests: &Guests) -> Result<Vec<Case>> {
    let spec = shipped_spec(REFUSAL_SPEC)?;
    let shm_prefix = format!("hsa-p2p-vmtest-{}-refusal", std::process::id());
    let mut machine = emulate(&spec, &shm_prefix)?;
    let corrupt = machine.gpus.len() - 1;
    // One flipped bit in the VRAM size: only the checksum can tell.
    machine.gpus[corrupt].descriptor[0x10] ^= 0x01;
    phase(format!(
        "{}: boot with a corrupt descriptor on {}",
        spec.name, machine.gpus[corrupt].label
    ));
    let started = Instant::now();
    let run = guests.boot(boot("refusal", &machine, refusal_script()))?;
    let console = &run.console_log;
    let mut problems = boot_problems(&run);
    let bound: Vec<usize> = (0..corrupt).collect();
    let refused = read_tree(console, guest_script::TREE_REFUSED);
    problems.extend(compare(
        &predicted_tree(&machine.spec, &bound)?,
        refused.as_ref(),
    ));
    let expected_line = "not an hsa-p2p GPU: descriptor checksum mismatch";
    if !protocol::kernel_log(console)
        .unwrap_or_default()
        .iter()
        .any(|line| line.contains(expected_line))
    {
        problems.push(format!("the kernel log lacks `{expected_line}`"));
    }
    Ok(vec![
        Case::new(
            "bad-descriptor",
            "corrupt_descriptor_is_refused_with_a_reason",
            Outcome::from_problems(problems),
            started.elapsed(),
        ),
        Case::new(
            "bad-descriptor",
            "sections_survive_a_verbose_console",
            Outcome::from_problems(noisy_section_problems(console, refused.as_ref())),
            Duration::ZERO,
        ),
    ])
}

/// The protocol's own check: the tree printed while the kernel flooded a verbose console is
/// `quiet`, the tree printed before, and the flood did reach the console (or the check proves
/// nothing).
fn noisy_section_problems(console: &str, quiet: Option<&Tree>) -> Vec<String> {
    let mut problems = Vec::new();
    if !protocol::outside_sections(console).any(|line| line.contains(guest_script::NOISE)) {
        problems.push(format!(
            "no `{}` message reached the console: the guest did not flood it",
            guest_script::NOISE
        ));
    }
    match quiet {
        Some(quiet) => problems.extend(compare(
            quiet,
            read_tree(console, guest_script::TREE_UNDER_NOISE).as_ref(),
        )),
        None => problems.push("the guest did not print the tree before the flood".into()),
    }
    problems
}

/// The steps that failed in the guest, and how the run ended when it did not succeed.
fn boot_problems(run: &vm::VmOutcome) -> Vec<String> {
    let mut problems = protocol::failures(&run.console_log);
    if let Err(error) = run.check() {
        problems.push(format!("{error:#}"));
    }
    problems
}

/// The boot of vm-test's machine `name`.
fn boot<'a>(name: &str, machine: &'a EmulatedMachine, script: String) -> Boot<'a> {
    Boot {
        name: format!("vm-test-{name}"),
        machine,
        script,
        keep_shm_files: false,
    }
}

fn first_gpu_address(machine: &EmulatedMachine) -> String {
    let layout = machine.spec.layout();
    layout
        .elements
        .iter()
        .find(|e| e.kind == PcieElementKind::Gpu(0))
        .map(|e| e.address.to_string())
        .unwrap_or_default()
}

fn predicted_tree(spec: &Spec, order: &[usize]) -> Result<Tree> {
    Ok(tree_of(
        predict_in_bind_order(spec, order)?.topology.render_sysfs(),
    ))
}

fn generation(tree: &Tree) -> Option<u64> {
    tree.get("generation_id")?.trim().parse().ok()
}

fn compare(expected: &Tree, actual: Option<&Tree>) -> Vec<String> {
    match actual {
        Some(actual) => differences(expected, actual),
        None => vec!["the guest did not print this topology".into()],
    }
}

/// The order a fresh `insmod` binds the GPUs in after the guest's hwtests: PCI order, except
/// that a GPU the `hotplug` suite added back is the last PCI device the kernel knows of, so
/// the driver core binds it last.
fn reload_order(machine: &EmulatedMachine) -> Vec<usize> {
    let (hot, cold): (Vec<usize>, Vec<usize>) =
        (0..machine.gpus.len()).partition(|&gpu| machine.spec.gpus[gpu].hotplug);
    cold.into_iter().chain(hot).collect()
}

fn run_spec(name: &str, machine: &EmulatedMachine, guests: &Guests) -> Result<Vec<Case>> {
    let started = Instant::now();
    let script = test_script(&first_gpu_address(machine), !machine.hotplug.is_empty());
    let run = guests.boot(boot(name, machine, script))?;
    let console = &run.console_log;
    let elapsed = started.elapsed();
    let case = |test: &str, problems: Vec<String>, duration: Duration| {
        Case::new(name, test, Outcome::from_problems(problems), duration)
    };

    let gpus = machine.gpus.len();
    let all: Vec<usize> = (0..gpus).collect();
    let without_first: Vec<usize> = (1..gpus).collect();
    let first_last: Vec<usize> = (1..gpus).chain([0]).collect();
    let [bound, unbound, rebound, reloaded] =
        guest_script::TREES.map(|tag| read_tree(console, tag));

    let predicted = predict_in_bind_order(&machine.spec, &all)?.topology;
    let expected = tree_of(predicted.render_sysfs());
    let matches = compare(&expected, bound.as_ref());
    let (why, denied_pairs) = why_check::check_why(console, &predicted);
    for line in &denied_pairs {
        note(format!("{name}: p2pctl why in the guest: {line}"));
    }

    let mut unbind = compare(
        &predicted_tree(&machine.spec, &without_first)?,
        unbound.as_ref(),
    );
    let mut rebind = compare(
        &predicted_tree(&machine.spec, &first_last)?,
        rebound.as_ref(),
    );
    let generations = [&bound, &unbound, &rebound].map(|t| t.as_ref().and_then(generation));
    if let [Some(before), Some(after), _] = generations {
        if after <= before {
            unbind.push(format!("generation_id went from {before} to {after}"));
        }
    }
    if let [_, Some(before), Some(after)] = generations {
        if after <= before {
            rebind.push(format!("generation_id went from {before} to {after}"));
        }
    }

    let mut reload = compare(
        &predicted_tree(&machine.spec, &reload_order(machine))?,
        reloaded.as_ref(),
    );
    reload.extend(
        protocol::warnings(console)
            .into_iter()
            .map(|line| format!("kernel warning: {line}")),
    );

    let mut cases = vec![
        case("boot_and_load", boot_problems(&run), elapsed),
        case("topology_matches_prediction", matches, Duration::ZERO),
        case(
            "p2pctl_why_in_guest_matches_prediction",
            why,
            Duration::ZERO,
        ),
    ];
    cases.extend(hwtests_in_guest::cases(console, name));
    cases.extend([
        case("unbind_removes_and_renumbers", unbind, Duration::ZERO),
        case("rebind_restores", rebind, Duration::ZERO),
        case(
            &format!("reload_{RELOADS}x_leaves_no_trace_or_warning"),
            reload,
            Duration::ZERO,
        ),
    ]);
    Ok(cases)
}
