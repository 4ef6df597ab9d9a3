//! `cargo xtask vm-test`: boots every shipped spec that QEMU can express and checks, by test,
//! that the module publishes what the shared rules predict.
//!
//! Per spec: the topology after binding all GPUs equals `p2pctl predict` of the emulated spec;
//! unbinding the first GPU removes its node and links, renumbers and bumps `generation_id`;
//! binding it again restores it (as the last node, like amdkfd); ten `rmmod` + `insmod` leave
//! the same topology, no sysfs leftovers and no kernel warning. Specs QEMU cannot express are
//! reported as skipped with the reason.

pub mod guest_checks;
mod guest_script;
mod hwtests_in_guest;
mod report;
mod republish_readers;
mod transfers;
pub mod tree_dump;
mod why_check;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hsa_p2p_runtime::predict::predict_in_bind_order;
use hsa_p2p_runtime::spec::{PcieElementKind, Spec};

use crate::emulation::{emulate, EmulatedMachine};
use crate::flavour::{Flavour, FlavourArgs};
use crate::kernel::KernelEnv;
use crate::util::{self, note, phase};
use crate::vm::{self, GuestFile, Initramfs, VmConfig};
use guest_script::{
    kernel_log, refusal_script, script_failures, test_script, warnings, RELOADS, TREE_BOUND,
    TREE_REBOUND, TREE_REFUSED, TREE_RELOADED, TREE_UNBOUND,
};
use report::{Case, Outcome};
use tree_dump::{differences, parse_dump, tree_of, Tree};

/// Options of `cargo xtask vm-test`.
#[derive(clap::Args, Debug)]
pub struct VmTestArgs {
    /// Specs to run (default: every `topologies/*.toml`).
    #[arg(value_name = "SPEC.toml")]
    pub specs: Vec<PathBuf>,
    /// Module to load (default: build it with `cargo xtask build`).
    #[arg(long, value_name = "KO")]
    pub module: Option<PathBuf>,
    /// Per-VM timeout in seconds (multiplied by the flavour's slowdown, 4 for `--debug`).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Echo the guest console.
    #[arg(long)]
    pub verbose: bool,
    /// Run only the peer-transfer and bad-input machine.
    #[arg(long)]
    pub transfers_only: bool,
    /// Leave out shipped specs (file names without `.toml`, comma-separated or repeated),
    /// e.g. machines that add little on the debug flavour but minutes of CI time.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub flavour: FlavourArgs,
}

/// What every guest gets: the module under test and the static `p2pctl`.
struct GuestPayload {
    module: PathBuf,
    p2pctl: PathBuf,
    hwtests: PathBuf,
}

fn shipped_specs() -> Result<Vec<PathBuf>> {
    let dir = util::workspace_root().join("topologies");
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
    let env = KernelEnv::load_flavour(args.flavour.flavour())?;
    let module = crate::kmod::given_or_built(args.module.as_deref(), args.flavour)?;
    let payload = GuestPayload {
        module,
        p2pctl: crate::guest_tools::static_p2pctl()?,
        hwtests: crate::guest_tools::static_binary("hsa-p2p-hwtests", "hwtests")?,
    };
    let mut cases = Vec::new();
    if args.transfers_only {
        cases.extend(transfers::run_transfers(&env, &payload, args)?);
        return finish(cases, args.flavour.flavour());
    }
    for path in &specs {
        let spec = Spec::load(path)?;
        let shm_prefix = format!("hsa-p2p-vmtest-{}-{}", std::process::id(), spec.name);
        match emulate(&spec, &shm_prefix) {
            Err(reason) => {
                note(format!("{}: skipped: {reason:#}", spec.name));
                cases.push(Case {
                    suite: spec.name.clone(),
                    name: "emulated".into(),
                    outcome: Outcome::Skip(format!("{reason:#}")),
                    seconds: 0.0,
                });
            }
            Ok(machine) => {
                phase(format!("{}: boot {} GPUs", spec.name, machine.gpus.len()));
                for adaptation in &machine.adaptations {
                    note(format!("{}: {adaptation}", spec.name));
                }
                cases.extend(run_spec(&spec.name, &machine, &env, &payload, args)?);
            }
        }
    }
    if args.specs.is_empty() {
        cases.extend(run_refusal(&env, &payload, args)?);
        cases.extend(transfers::run_transfers(&env, &payload, args)?);
    }
    finish(cases, args.flavour.flavour())
}

/// Prints KTAP, writes JUnit (`target/vm-test[-debug]/junit.xml`); fails if a case failed.
fn finish(cases: Vec<Case>, flavour: Flavour) -> Result<()> {
    let ktap = report::ktap(&cases);
    println!("{ktap}");
    let junit = flavour.target_subdir("vm-test").join("junit.xml");
    report::write_junit(&cases, &junit)?;
    std::fs::write(junit.with_file_name("results.ktap"), &ktap)?;
    note(format!("JUnit: {}", junit.display()));
    let summary = report::summary(&cases);
    println!("vm-test: {summary}");
    if cases.iter().any(|c| matches!(c.outcome, Outcome::Fail(_))) {
        bail!("vm-test failed: {summary}");
    }
    Ok(())
}

/// The spec the refusal check corrupts one GPU of.
const REFUSAL_SPEC: &str = "mixed-three-gpus.toml";

/// A GPU whose descriptor page is corrupt must be refused with a clear log line and left out of
/// the topology; the others must bind as usual.
fn run_refusal(env: &KernelEnv, payload: &GuestPayload, args: &VmTestArgs) -> Result<Vec<Case>> {
    let spec = Spec::load(&util::workspace_root().join("topologies").join(REFUSAL_SPEC))?;
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
    let run = vm::run(&vm_config(
        "refusal",
        &machine,
        env,
        payload,
        refusal_script(),
        args,
    ))?;
    let console = &run.console_log;
    let mut problems = script_failures(console);
    if !run.success() {
        problems.push(format!("{:#}", run.check().unwrap_err()));
    }
    let bound: Vec<usize> = (0..corrupt).collect();
    problems.extend(compare(
        &predicted_tree(&machine.spec, &bound)?,
        parse_dump(console, TREE_REFUSED).as_ref(),
    ));
    let expected_line = "not an hsa-p2p GPU: descriptor checksum mismatch";
    if !kernel_log(console)
        .iter()
        .any(|line| line.contains(expected_line))
    {
        problems.push(format!("the kernel log lacks `{expected_line}`"));
    }
    Ok(vec![Case {
        suite: "bad-descriptor".into(),
        name: "corrupt_descriptor_is_refused_with_a_reason".into(),
        outcome: outcome(problems),
        seconds: started.elapsed().as_secs_f64(),
    }])
}

fn vm_config(
    name: &str,
    machine: &EmulatedMachine,
    env: &KernelEnv,
    payload: &GuestPayload,
    script: String,
    args: &VmTestArgs,
) -> VmConfig {
    let mut config = machine.vm_config(format!("vm-test-{name}"), &env.bzimage);
    config.timeout = args.flavour.flavour().timeout(args.timeout);
    config.echo = args.verbose;
    config.initramfs = Initramfs {
        script,
        files: vec![
            GuestFile::host("/hsa_p2p.ko", &payload.module),
            GuestFile::host("/bin/p2pctl", &payload.p2pctl),
            GuestFile::host("/bin/hwtests", &payload.hwtests),
        ],
    };
    config
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

fn outcome(problems: Vec<String>) -> Outcome {
    if problems.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(problems)
    }
}

fn run_spec(
    name: &str,
    machine: &EmulatedMachine,
    env: &KernelEnv,
    payload: &GuestPayload,
    args: &VmTestArgs,
) -> Result<Vec<Case>> {
    let started = Instant::now();
    let script = test_script(&first_gpu_address(machine));
    let run = vm::run(&vm_config(name, machine, env, payload, script, args))?;
    let console = &run.console_log;
    let seconds = started.elapsed().as_secs_f64();
    let case = |test: &str, outcome: Outcome, seconds: f64| Case {
        suite: name.to_string(),
        name: test.to_string(),
        outcome,
        seconds,
    };

    let mut boot_problems = script_failures(console);
    if !run.success() {
        boot_problems.push(format!("{:#}", run.check().unwrap_err()));
    }
    let gpus = machine.gpus.len();
    let all: Vec<usize> = (0..gpus).collect();
    let without_first: Vec<usize> = (1..gpus).collect();
    let first_last: Vec<usize> = (1..gpus).chain([0]).collect();
    let bound = parse_dump(console, TREE_BOUND);
    let unbound = parse_dump(console, TREE_UNBOUND);
    let rebound = parse_dump(console, TREE_REBOUND);
    let reloaded = parse_dump(console, TREE_RELOADED);

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

    let mut reload = compare(&expected, reloaded.as_ref());
    reload.extend(
        warnings(console)
            .into_iter()
            .map(|line| format!("kernel warning: {line}")),
    );

    let mut cases = vec![
        case("boot_and_load", outcome(boot_problems), seconds),
        case("topology_matches_prediction", outcome(matches), 0.0),
        case("p2pctl_why_in_guest_matches_prediction", outcome(why), 0.0),
    ];
    cases.extend(hwtests_in_guest::hwtests_cases(console, name));
    cases.extend([
        case("unbind_removes_and_renumbers", outcome(unbind), 0.0),
        case("rebind_restores", outcome(rebind), 0.0),
        case(
            &format!("reload_{RELOADS}x_leaves_no_trace_or_warning"),
            outcome(reload),
            0.0,
        ),
    ]);
    Ok(cases)
}
