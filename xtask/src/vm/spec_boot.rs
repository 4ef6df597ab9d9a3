//! `cargo xtask vm [SPEC.toml] [-- CMD…]`: boot the machine a topology spec describes, load the
//! module, and show the topology it publishes next to what the shared rules predict.
//!
//! Without a spec the default machine is `topologies/mixed-three-gpus.toml` (two GPUs behind one
//! switch, one on its own root port). The kernel and the module are built first when needed, so
//! this is the one command that runs the whole main job on a fresh machine. With `-- CMD…` the
//! command runs in the guest (busybox sh) after the module is loaded, and its exit status is
//! `cargo xtask vm`'s.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hsa_p2p_runtime::peers::gpu_nodes;
use hsa_p2p_runtime::predict::predict;
use hsa_p2p_runtime::report::{self, Labels};
use hsa_p2p_runtime::spec::Spec;
use hsa_p2p_runtime::sysfs::{read_topology, write_tree, HSA_P2P_TOPOLOGY};
use hsa_p2p_runtime::views::{Placement, TableKind, ViewInput};

use super::guests::{Boot, GuestTool, Guests};
use super::options::{GuestOptions, GUEST_MODULE};
use super::protocol::{self, print_tree, read_tree, COMMAND_BANNER, COMMAND_STATUS};
use super::published_tree::{differences, tree_of, Tree};
use crate::emulation::emulate;
use crate::util::{self, note, phase};

/// The machine booted when no spec is given.
pub const DEFAULT_SPEC: &str = "topologies/mixed-three-gpus.toml";
const TREE_TAG: &str = "published";
/// Timeout when none is given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// Options of `cargo xtask vm`.
#[derive(clap::Args, Debug)]
pub struct VmArgs {
    /// Machine description to boot [default: topologies/mixed-three-gpus.toml].
    #[arg(value_name = "SPEC.toml", conflicts_with = "demo")]
    pub spec: Option<PathBuf>,
    /// Boot the built-in 3-GPU smoke machine instead (no spec; checks binding only).
    #[arg(long)]
    pub demo: bool,
    /// Keep the /dev/shm VRAM files after the run.
    #[arg(long)]
    pub keep_shm: bool,
    #[command(flatten)]
    pub guest: GuestOptions,
    /// Command to run in the guest after loading the module (busybox sh -c).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Boots the spec; fails when the guest failed or the published topology differs from the
/// prediction.
pub fn boot(args: &VmArgs) -> Result<()> {
    let spec_path = args
        .spec
        .clone()
        .unwrap_or_else(|| util::workspace_root().join(DEFAULT_SPEC));
    let spec = Spec::load(&spec_path)?;
    let env = crate::kernel::kernel(&crate::kernel::KernelArgs {
        verbose: false,
        refresh: false,
        force: false,
        no_install: false,
        flavour: args.guest.flavour,
    })?;
    let settings = args.guest.settings(DEFAULT_TIMEOUT)?;
    if args.demo {
        return super::demo::demo(&settings, args.keep_shm).map(drop);
    }
    let shm_prefix = format!("hsa-p2p-vm-{}-{}", std::process::id(), spec.name);
    let machine = emulate(&spec, &shm_prefix)
        .with_context(|| format!("QEMU cannot express {}", spec_path.display()))?;
    for adaptation in &machine.adaptations {
        note(adaptation);
    }

    let guests = Guests::new(
        env.bzimage,
        settings,
        &[GuestTool::P2pctl, GuestTool::Hwtests],
    )?;
    phase(format!(
        "boot {} ({} GPUs, QEMU TCG)",
        spec.name,
        machine.gpus.len()
    ));
    let outcome = guests.boot(Boot {
        name: format!("vm-{}", spec.name),
        machine: &machine,
        script: guest_script(&args.command),
        keep_shm_files: args.keep_shm,
    })?;
    note(outcome.summary());
    let published = read_tree(&outcome.console_log, TREE_TAG);
    if !args.command.is_empty() && !guests.settings.echo {
        print!("{}", command_output(&outcome.console_log));
    }
    // The guest's exit status is the command's (10/11: the module failed to load/unload);
    // QEMU is gone and the VRAM files are removed by now, so exiting with it loses nothing.
    match outcome.exit_code {
        Some(code) if code != 0 && !args.command.is_empty() => {
            eprintln!(
                "error: the guest exited with status {code} (console log: {})",
                outcome.log_path.display()
            );
            std::process::exit(code);
        }
        _ => outcome.check()?,
    }
    let Some(published) = published else {
        bail!("the guest did not print the module's topology (see the console log)");
    };
    show_and_compare(&machine.spec, &published)
}

/// Load, print the tree, run the user's command (if any), unload; exit with the first failure.
fn guest_script(command: &[String]) -> String {
    let mut lines = vec![
        format!("insmod {GUEST_MODULE} || exit 10"),
        print_tree(HSA_P2P_TOPOLOGY, TREE_TAG),
        "status=0".into(),
    ];
    if !command.is_empty() {
        let quoted = shell_quote(&command.join(" "));
        lines.push(format!(
            "echo '{COMMAND_BANNER}{}'",
            command.join(" ").replace('\'', "")
        ));
        lines.push(format!("sh -c {quoted}; status=$?"));
        lines.push(format!("echo \"{COMMAND_STATUS}$status\""));
    }
    lines.push("rmmod hsa_p2p || exit 11".into());
    lines.push("exit $status".into());
    lines.join("\n") + "\n"
}

/// The console lines from the guest command's banner to its exit status line.
fn command_output(console: &str) -> String {
    protocol::lines(console)
        .skip_while(|line| !line.starts_with(COMMAND_BANNER))
        .take_while(|line| !line.starts_with(COMMAND_STATUS))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Prints the published topology as `p2pctl topo`/`matrix` would and fails on any difference
/// from the prediction for the emulated spec.
fn show_and_compare(spec: &Spec, published: &Tree) -> Result<()> {
    let scratch = util::target_dir()
        .join("vm")
        .join(&spec.name)
        .join("topology");
    // A fresh copy: files of an earlier run's larger machine must not linger.
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("removing {}", scratch.display()))?;
    }
    write_tree(&scratch, published)?;
    let topology = read_topology(&scratch)
        .with_context(|| format!("the module's topology (copied to {})", scratch.display()))?;
    let prediction = predict(spec)?;
    // GPUs bind in spec order, so node ids coincide with the prediction's and so can its labels.
    let labels = Labels::from_prediction(&prediction);
    println!(
        "\n--- topology published by hsa_p2p in the guest (copy: {})",
        scratch.display()
    );
    print!("{}", report::table::render_topology(&topology, &labels));
    println!();
    // The spec's PCIe layout places the published GPUs as it placed the predicted ones.
    let placement = Placement::from_prediction(spec, &prediction);
    let input = ViewInput {
        topology: &topology,
        labels: &labels,
        placement: &placement,
        gpus: gpu_nodes(&topology).iter().map(|node| node.id).collect(),
    };
    print!(
        "{}",
        report::matrix::render_matrices(&input, &TableKind::ALL)
    );
    let problems = differences(&tree_of(prediction.topology.render_sysfs()), published);
    if problems.is_empty() {
        note(format!(
            "the published topology equals `p2pctl predict` of the emulated spec {}",
            spec.name
        ));
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("  {problem}");
        }
        bail!(
            "the published topology differs from the prediction in {} places",
            problems.len()
        )
    }
}
