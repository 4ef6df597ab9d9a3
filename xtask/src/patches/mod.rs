//! `cargo xtask patches`: the module as a `git format-patch` series (with a cover letter) that
//! adds it to a kernel tree as `samples/rust/hsa_p2p/` (why there: docs/upstreaming.md), then
//! checks every patch in order on a scratch copy of the tree: applies, builds with the kernel's
//! clippy lints, `checkpatch.pl --strict`, `make rustfmtcheck`.
//!
//! Output in `target/patches/v<N>/`: the patches, `report.md` (the per-patch table) and
//! `checks/` (checkpatch output and build logs of every patch).

mod check;
mod kconfig;
mod layout;
mod report;
mod series;
mod tree;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::kernel::KernelEnv;
use crate::util::{self, capture, note, phase};
use series::{Identity, WriteOptions};

/// Placeholder identity for From, Signed-off-by and MAINTAINERS: whoever sends the series
/// regenerates it with `--author`.
const PLACEHOLDER_AUTHOR: &str = "Your Name <your.name@example.org>";

/// Options of `cargo xtask patches`.
#[derive(clap::Args, Debug)]
pub struct PatchesArgs {
    /// Kernel source tree the series is made against (default: the `cargo xtask kernel` source).
    #[arg(long, value_name = "DIR")]
    pub base: Option<PathBuf>,
    /// Reroll count: `[PATCH vN …]` subjects and output in target/patches/vN.
    #[arg(short = 'v', long = "reroll-count", value_name = "N")]
    pub reroll_count: Option<u32>,
    /// From, Signed-off-by and MAINTAINERS identity ("Name <email>").
    #[arg(long, default_value = PLACEHOLDER_AUTHOR)]
    pub author: String,
    /// Fail unless every patch applies, builds at its step and has no checkpatch error.
    #[arg(long)]
    pub check: bool,
    /// Only write the series; do not apply, build or check it.
    #[arg(long, conflicts_with = "check")]
    pub no_verify: bool,
    /// Stream the kernel build output.
    #[arg(long)]
    pub verbose: bool,
}

fn cover_blurb(env_version: &str, author_is_placeholder: bool) -> String {
    let mut blurb = format!(
        "This series adds hsa_p2p, a Rust sample PCI driver for PCIe peer-to-peer\n\
         between GPUs, as samples/rust/hsa_p2p/. It binds emulated GPUs (QEMU\n\
         ivshmem-plain devices with a descriptor page at the start of BAR2),\n\
         registers large BARs as P2PDMA memory, asks pci_p2pdma_distance() for\n\
         every ordered pair and publishes the outcome as a KFD-style topology\n\
         with p2p_links under /sys/kernel/hsa_p2p/topology, including why a\n\
         pair was refused.\n\
         \n\
         Why a sample and not drivers/gpu/drm/amd/amdkfd: amdkfd is C and has no\n\
         Rust infrastructure; this driver does not drive AMD hardware, it binds\n\
         ivshmem devices and re-derives amdgpu's peer-access rules in Rust. As a\n\
         sample it shows the Rust PCI abstractions together with P2PDMA, and\n\
         which small C shims are still needed (sysfs kobjects, NUMA/IOMMU\n\
         queries, pci_p2pdma_*), without claiming a user-space ABI.\n\
         \n\
         Patch 1 adds the shared rules (host-tested as a no_std crate and\n\
         mounted with path attributes), patch 2 the driver, its C shims,\n\
         Kconfig and Makefile, patch 3 a MAINTAINERS entry. Every step builds.\n\
         \n\
         Tested on Linux {env_version}: every patch applies in order and builds\n\
         with `make CLIPPY=1 samples/rust/`. The same code, built out of tree,\n\
         is tested under QEMU with emulated GPUs behind PCIe switches and root\n\
         ports, against the topology its rules predict.\n"
    );
    if author_is_placeholder {
        blurb.push_str(
            "\n\
             [Placeholder identity: regenerate with `cargo xtask patches --author\n\
             \"Name <email>\"` before sending.]\n",
        );
    }
    blurb
}

/// `cargo xtask patches`.
pub fn patches(args: &PatchesArgs) -> Result<()> {
    let author = Identity::parse(&args.author)?;
    let env = KernelEnv::load();
    let base = match (&args.base, &env) {
        (Some(base), _) => base.clone(),
        (None, Ok(env)) => env.source_dir.clone(),
        (None, Err(error)) => {
            bail!("no --base given and no kernel from `cargo xtask kernel`: {error:#}")
        }
    };
    let base = fs::canonicalize(&base)
        .with_context(|| format!("base tree {} does not exist", base.display()))?;
    let version = capture(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(&base)
            .arg("kernelversion"),
    )
    .map(|v| v.trim().to_owned())
    .unwrap_or_else(|_| "(unknown version)".to_owned());

    let dir = util::target_dir().join("patches");
    let out = dir.join(format!("v{}", args.reroll_count.unwrap_or(1)));
    phase(format!(
        "series against {} (Linux {version}) into {}",
        base.display(),
        out.display()
    ));
    let kmod = util::workspace_root().join("kmod");
    let series = series::plan(&base, &kmod, &author)?;
    let date = capture(
        Command::new("git")
            .current_dir(util::workspace_root())
            .args(["log", "-1", "--format=%ct"]),
    )
    .ok()
    .and_then(|t| t.trim().parse().ok())
    .unwrap_or(0);
    let written = series::write(
        &series,
        &WriteOptions {
            base: &base,
            work: &dir.join("work"),
            out: &out,
            author: &author,
            date,
            reroll_count: args.reroll_count,
            cover_subject: "samples: rust: hsa_p2p: PCIe peer-to-peer between GPUs with a \
                            KFD-style topology",
            cover_blurb: &cover_blurb(&version, args.author == PLACEHOLDER_AUTHOR),
        },
    )?;
    note(written.cover_letter.display().to_string());
    for patch in &written.patches {
        note(patch.display().to_string());
    }
    if args.no_verify {
        return Ok(());
    }

    phase("scratch tree");
    let env = env.context("checking the series needs the kernel of `cargo xtask kernel`")?;
    let scratch = tree::ScratchTree::prepare(
        &base,
        &env.kdir.join(".config"),
        &dir,
        env.toolchain.clone(),
        &series::touched_paths(&series),
    )?;
    note(format!(
        "{} (build directory {})",
        scratch.tree.display(),
        scratch.build.display()
    ));

    phase("every patch in order: checkpatch, apply, build, rustfmtcheck");
    let results = check::check_series(
        &scratch,
        &written.patches,
        &out.join("checks"),
        args.verbose,
    )?;
    let table = report::render(&results);
    fs::write(out.join("report.md"), &table)?;
    phase(format!("report ({})", out.join("report.md").display()));
    println!("{table}");
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.name.as_str())
        .collect();
    let unformatted = results.iter().filter(|r| !r.formatted()).count();
    if unformatted > 0 {
        note(format!(
            "rustfmt: after {unformatted} patch(es) `make rustfmtcheck` would reformat sample \
             files (listed above; kmod/src is not a cargo package, so `cargo fmt` skips it)"
        ));
    }
    if failed.is_empty() {
        note("every patch applies, builds and has no checkpatch error");
    } else if args.check {
        bail!(
            "patches that do not apply, build or pass checkpatch: {}",
            failed.join(", ")
        );
    } else {
        note(format!(
            "patches that do not apply, build or pass checkpatch: {}",
            failed.join(", ")
        ));
    }
    Ok(())
}
