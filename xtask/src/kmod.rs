//! `cargo xtask build`: builds `hsa_p2p.ko` out of tree against a Rust-enabled kernel.
//!
//! kbuild runs on a staged copy of the module's sources in `target/kmod/tree` (`Kbuild`,
//! `src/`, and `core/src/`, which the crate root mounts with `#[path = "../core/src/…"]`):
//! the source tree stays clean, and a developer's own in-tree `make M=kmod` leftovers cannot
//! confuse it (kbuild's `MO=` refuses to run next to them). Files are copied only when their
//! content changed, so kbuild's incremental build works; paths in the build output are
//! rewritten back to `kmod/`. The module is copied to `target/kmod/hsa_p2p.ko`.
//!
//! `--debug` builds it for the debug kernel flavour, in `target/kmod-debug/` (a separate
//! staging tree: objects built against one kernel must not be reused for the other).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::flavour::{Flavour, FlavourArgs};
use crate::kernel::{KernelEnv, Toolchain};
use crate::util::{self, note, phase, run_logged_mapped};

/// What is staged: kbuild files at the top, sources below these directories.
const STAGED_FILES: &[&str] = &["Kbuild", "Makefile"];
const STAGED_DIRS: &[&str] = &["src", "core/src"];
const SOURCE_EXTENSIONS: &[&str] = &["rs", "c", "h", "S", "lds"];

fn is_source(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    !hidden
        && path
            .extension()
            .is_some_and(|e| SOURCE_EXTENSIONS.contains(&e.to_string_lossy().as_ref()))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_source(&path) {
            files.push(path);
        }
    }
    Ok(())
}

/// The module's source files below `kmod` (kbuild files and the sources of `src/` and
/// `core/src/`), relative to it, sorted: what is built, staged and packaged.
pub fn module_sources(kmod: &Path) -> Result<Vec<PathBuf>> {
    if !kmod.join("Kbuild").is_file() {
        bail!("{} missing", kmod.join("Kbuild").display());
    }
    let mut files: Vec<PathBuf> = STAGED_FILES
        .iter()
        .map(|file| kmod.join(file))
        .filter(|path| path.is_file())
        .collect();
    for dir in STAGED_DIRS {
        walk(&kmod.join(dir), &mut files)?;
    }
    let mut relative = files
        .iter()
        .map(|file| Ok(file.strip_prefix(kmod)?.to_path_buf()))
        .collect::<Result<Vec<_>>>()?;
    relative.sort();
    Ok(relative)
}

/// Mirrors the module's sources from `source` into `tree`: copies changed files, removes
/// sources that no longer exist (build products stay, for incremental builds).
fn stage(source: &Path, tree: &Path) -> Result<()> {
    for file in STAGED_FILES {
        if !source.join(file).exists() {
            let _ = fs::remove_file(tree.join(file));
        }
    }
    let wanted: Vec<PathBuf> = module_sources(source)?
        .into_iter()
        .map(|relative| source.join(relative))
        .collect();
    let mut staged = Vec::new();
    for file in &wanted {
        let relative = file.strip_prefix(source)?;
        let target = tree.join(relative);
        let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        if fs::read(&target).ok().as_deref() != Some(bytes.as_slice()) {
            fs::create_dir_all(target.parent().expect("inside the tree"))?;
            fs::write(&target, &bytes)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        staged.push(target);
    }
    let mut present = Vec::new();
    for dir in STAGED_DIRS {
        walk(&tree.join(dir), &mut present)?;
    }
    for file in present.iter().filter(|f| !staged.contains(f)) {
        fs::remove_file(file).with_context(|| format!("cannot remove {}", file.display()))?;
    }
    Ok(())
}

/// Options of `cargo xtask build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Kernel build directory to build against (default: the one `cargo xtask kernel` made).
    #[arg(long, value_name = "DIR")]
    pub kdir: Option<PathBuf>,
    /// Show the kbuild output.
    #[arg(short, long)]
    pub verbose: bool,
    /// Also run clippy on the Rust code (kbuild's `CLIPPY=1`).
    #[arg(long)]
    pub clippy: bool,
    #[command(flatten)]
    pub flavour: FlavourArgs,
}

/// The module a command was given, or else the one `cargo xtask build` builds against the xtask
/// kernel of `flavour` (built now, incrementally).
pub fn given_or_built(given: Option<&Path>, flavour: FlavourArgs) -> Result<PathBuf> {
    match given {
        Some(module) => Ok(module.to_path_buf()),
        None => build(&BuildArgs {
            kdir: None,
            verbose: false,
            clippy: false,
            flavour,
        }),
    }
}

/// Path of the module built for `flavour`.
pub fn module_path(flavour: Flavour) -> PathBuf {
    flavour.target_subdir("kmod").join("hsa_p2p.ko")
}

/// Fails unless `kdir` is a configured and built kernel tree with Rust support.
fn check_kdir(kdir: &Path) -> Result<()> {
    let auto_conf = kdir.join("include/config/auto.conf");
    let config = fs::read_to_string(&auto_conf).with_context(|| {
        format!(
            "{} is not a configured kernel build directory ({} missing)",
            kdir.display(),
            auto_conf.display()
        )
    })?;
    if !config.lines().any(|l| l.trim() == "CONFIG_RUST=y") {
        bail!(
            "{} was configured without CONFIG_RUST=y: hsa_p2p is a Rust module",
            kdir.display()
        );
    }
    if !config.lines().any(|l| l.trim() == "CONFIG_MODULES=y") {
        bail!("{} was configured without CONFIG_MODULES=y", kdir.display());
    }
    for file in ["rust/libkernel.rmeta", "Module.symvers"] {
        if !kdir.join(file).exists() {
            bail!(
                "{} has no {file}: build the kernel first (`make all`), Rust metadata is needed \
                 for out-of-tree Rust modules",
                kdir.display()
            );
        }
    }
    Ok(())
}

/// `cargo xtask build`: returns the path of the built module.
pub fn build(args: &BuildArgs) -> Result<PathBuf> {
    let flavour = args.flavour.flavour();
    let (kdir, toolchain) = match &args.kdir {
        Some(kdir) => {
            let kdir = fs::canonicalize(kdir)
                .with_context(|| format!("KDIR {} does not exist", kdir.display()))?;
            // Same tools as our own kernel when there is one; Debian's rustc otherwise.
            let toolchain = KernelEnv::load_flavour(flavour)
                .map(|env| env.toolchain)
                .unwrap_or_else(|_| Toolchain::for_flavour(flavour));
            (kdir, toolchain)
        }
        None => {
            let env = KernelEnv::load_flavour(flavour)?;
            (env.kdir, env.toolchain)
        }
    };
    check_kdir(&kdir)?;
    toolchain.check()?;

    let source = util::workspace_root().join("kmod");
    let out = flavour.target_subdir("kmod");
    let tree = out.join("tree");
    phase(format!("build hsa_p2p.ko against {}", kdir.display()));
    let begun = Instant::now();
    stage(&source, &tree)?;
    let mut make = toolchain.make(&kdir);
    make.arg(format!("M={}", tree.display()))
        .arg(format!("-j{}", util::jobs()));
    if args.clippy {
        make.arg("CLIPPY=1");
    }
    make.arg("modules");
    let (staged, real) = (tree.display().to_string(), source.display().to_string());
    run_logged_mapped(&mut make, &out.join("build.log"), args.verbose, &|line| {
        line.replace(&staged, &real)
    })?;

    // Warnings do not fail the build, but must not go unnoticed in a quiet log.
    let log = fs::read_to_string(out.join("build.log")).unwrap_or_default();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("warning") || l.contains(": warning:"))
        .collect();
    if !warnings.is_empty() && !args.verbose {
        note(format!(
            "{} warning(s), see {}:",
            warnings.len(),
            out.join("build.log").display()
        ));
        for warning in warnings.iter().take(10) {
            note(format!("| {warning}"));
        }
    }

    let built = tree.join("hsa_p2p.ko");
    let module = module_path(flavour);
    fs::copy(&built, &module)
        .with_context(|| format!("kbuild did not produce {}", built.display()))?;
    note(format!(
        "{} ({} KiB) in {:.1} s",
        module.display(),
        fs::metadata(&module)?.len() / 1024,
        begun.elapsed().as_secs_f64()
    ));
    Ok(module)
}
