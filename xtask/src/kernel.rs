//! `cargo xtask kernel`: everything needed to build and boot a Rust-enabled Linux 7.3, from a
//! brand-new Debian bookworm machine, cached under `target/`.
//!
//! Phases (each skipped when its cache is valid):
//! 1. host packages (bookworm), QEMU 10 (bookworm-backports), bindgen-cli (cargo install);
//! 2. the kernel source: Debian `linux-source-7.3` from trixie-backports, downloaded through a
//!    private apt configuration, extracted into `target/kernel/src` (keyed by the .deb version);
//! 3. configuration: `tinyconfig` + `kmod/kernel.config` (merge_config.sh -m) + `olddefconfig`,
//!    then a check that every option of the fragment survived;
//! 4. `make all` into `target/kernel/build`;
//! 5. `target/kernel/env.json`, read by the other commands.
//!
//! Phases 3 and 4 are keyed by a hash of the fragment, the source version and the tool
//! versions: a second run with nothing changed takes seconds.
//!
//! `--debug` builds the debug flavour ([`Flavour::Debug`]) the same way, with its own cache in
//! `target/kernel/debug` next to the normal one; the source tree is shared.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::apt::{self, PrivateApt};
use crate::flavour::{Flavour, FlavourArgs};
use crate::util::{self, capture, note, phase, read_stamp, run, run_logged, write_stamp};

/// Debian package holding the kernel source.
const SOURCE_PACKAGE: &str = "linux-source-7.3";
/// Tarball inside the package.
const SOURCE_TARBALL: &str = "usr/src/linux-source-7.3.tar.xz";

/// bindgen-cli version installed into `target/tools` (the kernel needs >= 0.71.1).
const BINDGEN_VERSION: &str = "0.73.2";
const BINDGEN_MIN: (u32, u32, u32) = (0, 71, 1);
/// rustc the kernel needs (7.3: >= 1.85) and the Debian package giving it.
const RUSTC: &str = "/usr/bin/rustc";
const RUSTDOC: &str = "/usr/bin/rustdoc";
/// Debian's clippy for rustc-web (rust-web-clippy): `make CLIPPY=1` must use the same rustc.
const CLIPPY_DRIVER: &str = "/usr/bin/clippy-driver";
const RUSTC_MIN: (u32, u32, u32) = (1, 85, 0);
/// Where bookworm's libclang 19 lives (the kernel needs LLVM >= 17).
const LIBCLANG_DIR: &str = "/usr/lib/llvm-19/lib";
/// The Rust standard library source the kernel builds `core` from (rust-web-src).
const RUST_LIB_SRC: &str = "/usr/lib/rustlib/src/rust/library";

/// bookworm packages the kernel build, the module build and the VM need.
const HOST_PACKAGES: &[&str] = &[
    "rustc-web",
    "rust-web-src",
    "rust-web-clippy",
    "libclang1-19",
    "libclang-common-19-dev",
    "gcc",
    "make",
    "libc6-dev",
    "bc",
    "flex",
    "bison",
    "libelf-dev",
    "libssl-dev",
    "xz-utils",
    "binutils",
    "cpio",
    "gzip",
    "busybox-static",
];

/// Where the shared tool cache lives (`cargo install --root`).
pub fn tools_dir() -> PathBuf {
    util::target_dir().join("tools")
}

/// The source tree and its downloads, shared by the flavours.
fn kernel_dir() -> PathBuf {
    Flavour::Normal.kernel_dir()
}

/// Path of the machine-readable description of a flavour's built kernel.
pub fn env_path(flavour: Flavour) -> PathBuf {
    flavour.kernel_dir().join("env.json")
}

/// The tools a Rust-enabled kernel (and its out-of-tree modules) must be built with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Toolchain {
    /// `RUSTC` and `HOSTRUSTC`.
    pub rustc: PathBuf,
    /// `RUSTDOC`.
    pub rustdoc: PathBuf,
    /// `CLIPPY_DRIVER` (used by `make CLIPPY=1`).
    #[serde(default = "default_clippy_driver")]
    pub clippy_driver: PathBuf,
    /// `BINDGEN`.
    pub bindgen: PathBuf,
    /// `LIBCLANG_PATH` (environment of bindgen).
    pub libclang_path: PathBuf,
    /// Further variables on every `make` command line (the flavour's compiler, `LLVM=-19`).
    #[serde(default)]
    pub make_vars: Vec<String>,
}

fn default_clippy_driver() -> PathBuf {
    CLIPPY_DRIVER.into()
}

impl Toolchain {
    /// Debian's rustc, the cached bindgen and a flavour's `make` variables.
    pub fn for_flavour(flavour: Flavour) -> Self {
        Self {
            rustc: RUSTC.into(),
            rustdoc: RUSTDOC.into(),
            clippy_driver: CLIPPY_DRIVER.into(),
            bindgen: tools_dir().join("bin/bindgen"),
            libclang_path: LIBCLANG_DIR.into(),
            make_vars: flavour.make_vars().iter().map(|v| v.to_string()).collect(),
        }
    }

    /// A `make -C dir` command with the tool variables on the command line (the kernel
    /// Makefile assigns them with `=`: the environment would be ignored).
    pub fn make(&self, dir: &Path) -> Command {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(dir)
            .arg(format!("RUSTC={}", self.rustc.display()))
            .arg(format!("HOSTRUSTC={}", self.rustc.display()))
            .arg(format!("RUSTDOC={}", self.rustdoc.display()))
            .arg(format!("CLIPPY_DRIVER={}", self.clippy_driver.display()))
            .arg(format!("BINDGEN={}", self.bindgen.display()))
            .args(&self.make_vars)
            .env("LIBCLANG_PATH", &self.libclang_path);
        cmd
    }

    /// Version strings of the tools (C compiler: `compiler`), for cache keys and messages.
    pub fn versions(&self, compiler: &str) -> Result<String> {
        let rustc = capture(Command::new(&self.rustc).arg("--version"))?;
        let bindgen = capture(Command::new(&self.bindgen).arg("--version"))?;
        let cc = capture(Command::new(compiler).arg("--version"))?;
        Ok(format!(
            "{} / {} / {} / libclang {}",
            rustc.trim(),
            bindgen.trim(),
            cc.lines().next().unwrap_or_default(),
            self.libclang_path.display()
        ))
    }

    /// Checks every tool is there in a usable version, naming what to install otherwise.
    pub fn check(&self) -> Result<()> {
        let rustc = capture(Command::new(&self.rustc).arg("--version")).with_context(|| {
            format!(
                "{} not found: install the bookworm package rustc-web",
                self.rustc.display()
            )
        })?;
        let version =
            parse_version(&rustc).with_context(|| format!("cannot parse `{}`", rustc.trim()))?;
        if version < RUSTC_MIN {
            bail!(
                "{} is {}, the kernel needs >= {}.{}.{}: install rustc-web",
                self.rustc.display(),
                rustc.trim(),
                RUSTC_MIN.0,
                RUSTC_MIN.1,
                RUSTC_MIN.2
            );
        }
        if !Path::new(RUST_LIB_SRC).join("core/src/lib.rs").exists() {
            bail!("Rust library source not found at {RUST_LIB_SRC}: install rust-web-src");
        }
        let bindgen = capture(Command::new(&self.bindgen).arg("--version")).with_context(|| {
            format!(
                "bindgen not found at {}: run `cargo xtask kernel`",
                self.bindgen.display()
            )
        })?;
        if parse_version(&bindgen).is_none_or(|v| v < BINDGEN_MIN) {
            bail!(
                "{} is `{}`, the kernel needs bindgen >= 0.71.1",
                self.bindgen.display(),
                bindgen.trim()
            );
        }
        let has_libclang = fs::read_dir(&self.libclang_path).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libclang"))
        });
        if !has_libclang {
            bail!(
                "libclang >= 17 not found at {}: install libclang1-19 and libclang-common-19-dev",
                self.libclang_path.display()
            );
        }
        Ok(())
    }
}

/// The first `x.y.z` in a version line.
fn parse_version(line: &str) -> Option<(u32, u32, u32)> {
    line.split_whitespace().find_map(|word| {
        let mut parts = word.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        Some((major, minor, patch))
    })
}

/// What `cargo xtask kernel` built, for the other commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KernelEnv {
    /// The kernel build directory (`make O=`), usable as `KDIR` for modules.
    pub kdir: PathBuf,
    /// The kernel source tree.
    pub source_dir: PathBuf,
    /// The bootable image.
    pub bzimage: PathBuf,
    /// `uname -r` of the built kernel.
    pub kernel_release: String,
    /// Debian version of the source package.
    pub source_version: String,
    /// Tools the kernel was built with (modules must use the same rustc).
    pub toolchain: Toolchain,
    /// The cache key of the configuration and build.
    pub cache_key: String,
}

impl KernelEnv {
    /// Reads `target/kernel/env.json` (the normal flavour's).
    pub fn load() -> Result<Self> {
        Self::load_flavour(Flavour::Normal)
    }

    /// Reads the `env.json` of a flavour's kernel.
    pub fn load_flavour(flavour: Flavour) -> Result<Self> {
        let path = env_path(flavour);
        let flag = if flavour == Flavour::Debug {
            " --debug"
        } else {
            ""
        };
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "{} not found: run `cargo xtask kernel{flag}` first",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
    }
}

/// Options of `cargo xtask kernel`.
#[derive(clap::Args, Debug)]
pub struct KernelArgs {
    /// Stream the kernel build output instead of a heartbeat every 30 s.
    #[arg(short, long)]
    pub verbose: bool,
    /// Refresh the private apt lists (picks up a newer linux-source-7.3).
    #[arg(long)]
    pub refresh: bool,
    /// Run `make` even if the build stamp says the kernel is up to date.
    #[arg(long)]
    pub force: bool,
    /// Do not install anything (fail naming what is missing instead).
    #[arg(long)]
    pub no_install: bool,
    #[command(flatten)]
    pub flavour: FlavourArgs,
}

/// `cargo xtask kernel`.
pub fn kernel(args: &KernelArgs) -> Result<KernelEnv> {
    let flavour = args.flavour.flavour();
    phase("host packages");
    let packages: Vec<&str> = HOST_PACKAGES
        .iter()
        .chain(flavour.host_packages())
        .copied()
        .collect();
    if args.no_install {
        let missing: Vec<_> = packages.iter().filter(|p| !apt::is_installed(p)).collect();
        if !missing.is_empty() {
            bail!("missing host packages: {missing:?} (apt-get install them)");
        }
    } else {
        apt::ensure_host_packages(&packages)?;
    }

    phase("QEMU (qemu-system-x86 from bookworm-backports)");
    ensure_qemu(args.no_install)?;

    phase("bindgen-cli");
    let toolchain = Toolchain::for_flavour(flavour);
    ensure_bindgen(&toolchain.bindgen, args.no_install)?;
    toolchain.check()?;
    let versions = toolchain.versions(flavour.compiler())?;
    note(&versions);

    phase(format!("kernel source ({SOURCE_PACKAGE})"));
    let (source_dir, source_version) = ensure_source(args.refresh)?;

    let fragment_paths: Vec<PathBuf> = flavour
        .fragments()
        .iter()
        .map(|f| util::workspace_root().join(f))
        .collect();
    let fragment = fragment_paths
        .iter()
        .map(|path| {
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        })
        .collect::<Result<String>>()?;
    // The normal flavour's key has no make variables, as before flavours existed: its cache
    // (shared by CI) stays valid.
    let mut key_parts = vec![
        fragment.as_bytes(),
        source_version.as_bytes(),
        versions.as_bytes(),
    ];
    key_parts.extend(toolchain.make_vars.iter().map(|v| v.as_bytes()));
    let key = util::stable_hash(&key_parts);
    let flavour_dir = flavour.kernel_dir();
    let build_dir = flavour_dir.join("build");
    fs::create_dir_all(&build_dir)?;

    phase(format!(
        "configure the {} flavour (tinyconfig + {} + olddefconfig)",
        flavour.name(),
        flavour.fragments().join(" + ")
    ));
    let config_stamp = build_dir.join(".hsa-p2p-config-key");
    if read_stamp(&config_stamp).as_deref() == Some(key.as_str())
        && build_dir.join(".config").exists()
    {
        note(format!("up to date (key {key})"));
    } else {
        // From here on the .config no longer matches any recorded key.
        let _ = fs::remove_file(&config_stamp);
        let _ = fs::remove_file(build_dir.join(".hsa-p2p-build-key"));
        configure(&toolchain, &source_dir, &build_dir, &fragment_paths)?;
        verify_config(&fragment, &build_dir.join(".config"))?;
        write_stamp(&config_stamp, &key)?;
        note("every fragment option survived olddefconfig");
    }

    phase(format!("build (make -j{} all)", util::jobs()));
    let build_stamp = build_dir.join(".hsa-p2p-build-key");
    let bzimage = build_dir.join("arch/x86/boot/bzImage");
    if !args.force && read_stamp(&build_stamp).as_deref() == Some(key.as_str()) && bzimage.exists()
    {
        note(format!("up to date ({})", bzimage.display()));
    } else {
        let _ = fs::remove_file(&build_stamp);
        let begun = Instant::now();
        let log = flavour_dir.join("logs/build.log");
        note(format!("log: {}", log.display()));
        run_logged(
            toolchain
                .make(&source_dir)
                .arg(format!("O={}", build_dir.display()))
                .arg(format!("-j{}", util::jobs()))
                .arg("all"),
            &log,
            args.verbose,
        )?;
        if !build_dir.join("rust/libkernel.rmeta").exists() {
            bail!(
                "the kernel built but without Rust support ({} missing): check CONFIG_RUST",
                build_dir.join("rust/libkernel.rmeta").display()
            );
        }
        write_stamp(&build_stamp, &key)?;
        note(format!("built in {:.0} s", begun.elapsed().as_secs_f64()));
    }

    let kernel_release = fs::read_to_string(build_dir.join("include/config/kernel.release"))
        .context("kernel.release missing from the build directory")?
        .trim()
        .to_owned();
    let env = KernelEnv {
        kdir: build_dir,
        source_dir,
        bzimage,
        kernel_release,
        source_version,
        toolchain,
        cache_key: key,
    };
    let env_file = env_path(flavour);
    fs::write(&env_file, serde_json::to_string_pretty(&env)? + "\n")
        .with_context(|| format!("cannot write {}", env_file.display()))?;
    phase(format!(
        "{} kernel {} ready: {} (KDIR {}, recorded in {})",
        flavour.name(),
        env.kernel_release,
        env.bzimage.display(),
        env.kdir.display(),
        env_file.display()
    ));
    Ok(env)
}

/// QEMU's system emulator, from bookworm-backports: bookworm's 7.2 conflicts with the
/// preinstalled qemu-utils 10.0.
fn ensure_qemu(no_install: bool) -> Result<()> {
    if let Some(version) = apt::installed_version("qemu-system-x86") {
        note(format!("qemu-system-x86 {version} present"));
        return Ok(());
    }
    if no_install {
        bail!("qemu-system-x86 not installed (install it from bookworm-backports)");
    }
    let apt = PrivateApt::bookworm_backports()?;
    apt.ensure_lists(false)?;
    if apt
        .install("bookworm-backports", &["qemu-system-x86"])
        .is_err()
    {
        note("retrying with fresh package lists");
        apt.update()?;
        apt.install("bookworm-backports", &["qemu-system-x86"])?;
    }
    note(format!(
        "installed qemu-system-x86 {}",
        apt::installed_version("qemu-system-x86").unwrap_or_default()
    ));
    Ok(())
}

/// `cargo install bindgen-cli` into `target/tools`, unless that version is there.
fn ensure_bindgen(bindgen: &Path, no_install: bool) -> Result<()> {
    if let Ok(version) = capture(Command::new(bindgen).arg("--version")) {
        if version.split_whitespace().nth(1) == Some(BINDGEN_VERSION) {
            note(format!("{} present", version.trim()));
            return Ok(());
        }
    }
    if no_install {
        bail!(
            "bindgen {BINDGEN_VERSION} not found at {} (run without --no-install)",
            bindgen.display()
        );
    }
    note(format!(
        "cargo install bindgen-cli {BINDGEN_VERSION} (about a minute)"
    ));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .args(["install", "--locked", "--quiet", "bindgen-cli", "--version"])
        .arg(format!("={BINDGEN_VERSION}"))
        .arg("--root")
        .arg(tools_dir()))
    .context("cannot install bindgen-cli")
}

/// Downloads and extracts the kernel source unless the extracted tree is that version.
fn ensure_source(refresh: bool) -> Result<(PathBuf, String)> {
    let src = kernel_dir().join("src");
    let stamp = kernel_dir().join("src.version");
    let apt = PrivateApt::trixie_backports()?;
    apt.ensure_lists(refresh)?;
    let version = apt.candidate(SOURCE_PACKAGE)?;
    if read_stamp(&stamp).as_deref() == Some(version.as_str()) && src.join("Makefile").exists() {
        note(format!("{SOURCE_PACKAGE} {version} already extracted"));
        return Ok((src, version));
    }
    let downloads = kernel_dir().join("downloads");
    let deb = match fs::read_dir(&downloads).ok().and_then(|entries| {
        entries.flatten().map(|e| e.path()).find(|p| {
            p.file_name().is_some_and(|f| {
                f.to_string_lossy()
                    .starts_with(&format!("{SOURCE_PACKAGE}_{version}_"))
            })
        })
    }) {
        Some(deb) => deb,
        None => {
            note(format!("downloading {SOURCE_PACKAGE} {version} (~170 MB)"));
            let _ = fs::remove_dir_all(&downloads);
            apt.download(SOURCE_PACKAGE, &version, &downloads)?
        }
    };
    note(format!("extracting {}", deb.display()));
    let unpack = kernel_dir().join("unpack");
    let _ = fs::remove_dir_all(&unpack);
    fs::create_dir_all(&unpack)?;
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpack))?;
    let partial = kernel_dir().join("src.partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(unpack.join(SOURCE_TARBALL))
        .arg("-C")
        .arg(&partial)
        .arg("--strip-components=1"))?;
    fs::remove_dir_all(&unpack)?;
    let _ = fs::remove_file(&stamp);
    let _ = fs::remove_dir_all(&src);
    fs::rename(&partial, &src)?;
    // A build directory made from another source version must not be reused.
    let _ = fs::remove_dir_all(kernel_dir().join("build"));
    write_stamp(&stamp, &version)?;
    Ok((src, version))
}

fn configure(
    toolchain: &Toolchain,
    source: &Path,
    build: &Path,
    fragments: &[PathBuf],
) -> Result<()> {
    let logs = build.parent().expect("a flavour's build dir").join("logs");
    let log = logs.join("configure.log");
    let o = format!("O={}", build.display());
    run_logged(
        toolchain.make(source).arg(&o).arg("tinyconfig"),
        &log,
        false,
    )?;
    run_logged(
        Command::new(source.join("scripts/kconfig/merge_config.sh"))
            .current_dir(source)
            .arg("-m")
            .arg("-O")
            .arg(build)
            .arg(build.join(".config"))
            .args(fragments),
        &logs.join("merge_config.log"),
        false,
    )?;
    run_logged(
        toolchain.make(source).arg(&o).arg("olddefconfig"),
        &logs.join("olddefconfig.log"),
        false,
    )
}

/// One `CONFIG_X=v` or `# CONFIG_X is not set` line of a fragment.
fn parse_config_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# ") {
        return rest
            .strip_suffix(" is not set")
            .filter(|name| name.starts_with("CONFIG_"))
            .map(|name| (name, "n"));
    }
    if line.starts_with("CONFIG_") {
        return line.split_once('=');
    }
    None
}

/// The fragment's options whose value in `config` differs, as `CONFIG_X=want (got v)`.
fn dropped_options(fragment: &str, config: &str) -> Vec<String> {
    let actual: std::collections::HashMap<&str, &str> =
        config.lines().filter_map(parse_config_line).collect();
    fragment
        .lines()
        .filter_map(parse_config_line)
        .filter_map(|(name, want)| {
            let got = actual.get(name).copied().unwrap_or("n");
            (got != want).then(|| format!("{name}={want} (got {got})"))
        })
        .collect()
}

/// Fails naming every fragment option that `olddefconfig` dropped or changed.
fn verify_config(fragment: &str, config: &Path) -> Result<()> {
    let text =
        fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let dropped = dropped_options(fragment, &text);
    if !dropped.is_empty() {
        bail!(
            "olddefconfig dropped options of the fragments (unmet dependencies?): {}",
            dropped.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_lines() {
        assert_eq!(
            parse_config_line("CONFIG_RUST=y"),
            Some(("CONFIG_RUST", "y"))
        );
        assert_eq!(
            parse_config_line("# CONFIG_LD_DEAD_CODE_DATA_ELIMINATION is not set"),
            Some(("CONFIG_LD_DEAD_CODE_DATA_ELIMINATION", "n"))
        );
        assert_eq!(parse_config_line("# a comment"), None);
        assert_eq!(parse_config_line(""), None);
    }

    #[test]
    fn names_dropped_options() {
        let fragment = "CONFIG_RUST=y\nCONFIG_PCI_P2PDMA=y\n# CONFIG_LD_DEAD_CODE_DATA_ELIMINATION is not set\nCONFIG_NR_CPUS=4\n";
        let config = "CONFIG_RUST=y\n# CONFIG_PCI_P2PDMA is not set\nCONFIG_NR_CPUS=8\n";
        assert_eq!(
            dropped_options(fragment, config),
            ["CONFIG_PCI_P2PDMA=y (got n)", "CONFIG_NR_CPUS=4 (got 8)"]
        );
        assert!(dropped_options(
            fragment,
            "CONFIG_RUST=y\nCONFIG_PCI_P2PDMA=y\nCONFIG_NR_CPUS=4\n"
        )
        .is_empty());
    }

    #[test]
    fn the_debug_fragment_only_adds_to_the_normal_one() {
        // merge_config.sh lets the later fragment win: an option both set differently would be
        // changed in the debug kernel without anyone asking.
        let read = |fragment: &str| fs::read_to_string(util::workspace_root().join(fragment));
        let [normal, debug] = Flavour::Debug.fragments() else {
            panic!("the debug flavour layers one fragment on the normal one");
        };
        assert_eq!(Flavour::Normal.fragments(), [*normal]);
        let (normal, debug) = (read(normal).unwrap(), read(debug).unwrap());
        let normal: std::collections::HashMap<&str, &str> =
            normal.lines().filter_map(parse_config_line).collect();
        let debug: Vec<(&str, &str)> = debug.lines().filter_map(parse_config_line).collect();
        assert!(debug.iter().any(|(name, _)| *name == "CONFIG_KASAN"));
        let conflicts: Vec<String> = debug
            .iter()
            .filter_map(|(name, value)| {
                let normal_value = normal.get(name).filter(|v| *v != value)?;
                Some(format!(
                    "{name}: {normal_value} in the normal one, {value} in the debug one"
                ))
            })
            .collect();
        assert!(conflicts.is_empty(), "{conflicts:?}");
    }

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_version("rustc 1.96.0 (abc 2026-01-01)"),
            Some((1, 96, 0))
        );
        assert_eq!(parse_version("bindgen 0.73.2"), Some((0, 73, 2)));
    }
}
