//! The scratch kernel tree the series is applied to, and its build directory.
//!
//! The tree is a hard-linked copy of the base (`cp -al`: 1.6 GB in under 2 s) that is kept
//! between runs, like its build directory, so that kbuild stays incremental (paths inside the
//! build directory's command files do not change). Each run resets only the files the series
//! touches: they are replaced by *copies* of the base's files (new inodes), so applying a patch
//! can never write through a hard link into the base tree.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::layout::SAMPLE_DIR;
use crate::kernel::Toolchain;
use crate::util::{self, capture, note, read_stamp, run, run_logged, write_stamp};

/// Config options the build directory adds to the base configuration.
pub const SAMPLE_CONFIG: &[&str] = &[
    "CONFIG_SAMPLES=y",
    "CONFIG_SAMPLES_RUST=y",
    "CONFIG_SAMPLE_RUST_HSA_P2P=m",
];

/// A scratch copy of the base tree plus a build directory (`make O=`).
pub struct ScratchTree {
    pub base: PathBuf,
    pub tree: PathBuf,
    pub build: PathBuf,
    base_config: PathBuf,
    toolchain: Toolchain,
}

impl ScratchTree {
    /// Prepares `<dir>/tree` from `base` (re-copied when the base changed) and `<dir>/build`.
    pub fn prepare(
        base: &Path,
        base_config: &Path,
        dir: &Path,
        toolchain: Toolchain,
        touched: &[String],
    ) -> Result<Self> {
        let base = fs::canonicalize(base)
            .with_context(|| format!("base tree {} does not exist", base.display()))?;
        if !base.join("scripts/checkpatch.pl").is_file() || !base.join("Makefile").is_file() {
            bail!("{} is not a kernel source tree", base.display());
        }
        let tree = dir.join("tree");
        let build = dir.join("build");
        let stamp = dir.join("tree.base");
        let identity = format!(
            "{} {:?}",
            base.display(),
            fs::metadata(base.join("Makefile"))?.modified()?
        );
        if read_stamp(&stamp).as_deref() != Some(identity.as_str()) || !tree.is_dir() {
            note(format!("hard-linked copy of {} (cp -al)", base.display()));
            let _ = fs::remove_file(&stamp);
            for stale in [&tree, &build] {
                if stale.exists() {
                    fs::remove_dir_all(stale)
                        .with_context(|| format!("cannot remove {}", stale.display()))?;
                }
            }
            fs::create_dir_all(dir)?;
            if let Err(error) = run(Command::new("cp").arg("-al").arg(&base).arg(&tree)) {
                // Hard links cannot cross file systems (a --base elsewhere): a real copy works,
                // slowly (about a minute for 1.6 GB).
                note(format!(
                    "cp -al failed ({error:#}); copying instead (cp -a)"
                ));
                let _ = fs::remove_dir_all(&tree);
                run(Command::new("cp").arg("-a").arg(&base).arg(&tree))
                    .context("cannot copy the base tree")?;
            }
            write_stamp(&stamp, &identity)?;
        }
        let scratch = Self {
            base,
            tree,
            build,
            base_config: base_config.to_path_buf(),
            toolchain,
        };
        scratch.reset(touched)?;
        Ok(scratch)
    }

    /// Puts the base's versions of `touched` back (as copies) and removes the sample.
    fn reset(&self, touched: &[String]) -> Result<()> {
        let sample = self.tree.join(SAMPLE_DIR);
        if sample.exists() {
            fs::remove_dir_all(&sample)?;
        }
        for path in touched {
            let target = self.tree.join(path);
            if target.exists() {
                fs::remove_file(&target)
                    .with_context(|| format!("cannot remove {}", target.display()))?;
            }
            let original = self.base.join(path);
            if original.is_file() {
                fs::copy(&original, &target)
                    .with_context(|| format!("cannot restore {}", target.display()))?;
            }
        }
        Ok(())
    }

    fn git_apply(&self, patch: &Path, check_only: bool) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.tree)
            // The tree lies inside the workspace's git checkout: stop git from finding it, so
            // that `git apply` works as a plain patch tool relative to the tree.
            .env(
                "GIT_CEILING_DIRECTORIES",
                self.tree.parent().expect("tree has a parent"),
            )
            .arg("apply");
        if check_only {
            cmd.arg("--check");
        }
        cmd.arg(patch);
        cmd
    }

    /// `git apply --check`, then `git apply`; the error says why it does not apply.
    pub fn apply(&self, patch: &Path) -> Result<()> {
        capture(&mut self.git_apply(patch, true))
            .with_context(|| format!("{} does not apply", patch.display()))?;
        capture(&mut self.git_apply(patch, false)).map(drop)
    }

    fn make(&self) -> Command {
        let mut cmd = self.toolchain.make(&self.tree);
        cmd.arg(format!("O={}", self.build.display()));
        cmd
    }

    /// The base configuration plus [`SAMPLE_CONFIG`], through `olddefconfig`; returns whether
    /// the sample's symbol ended up enabled (it exists only once the Kconfig entry is there).
    pub fn configure(&self, log: &Path) -> Result<bool> {
        fs::create_dir_all(&self.build)?;
        let mut config = fs::read_to_string(&self.base_config)
            .with_context(|| format!("cannot read {}", self.base_config.display()))?;
        for option in SAMPLE_CONFIG {
            config.push_str(option);
            config.push('\n');
        }
        let path = self.build.join(".config");
        if fs::read_to_string(&path).ok().as_deref() != Some(config.as_str()) {
            fs::write(&path, config)?;
        }
        run_logged(self.make().arg("olddefconfig"), log, false)?;
        let result = fs::read_to_string(&path)?;
        Ok(result
            .lines()
            .any(|l| l.trim() == "CONFIG_SAMPLE_RUST_HSA_P2P=m"))
    }

    /// `make CLIPPY=1 -jN <dir>/`; the log goes to `log`.
    pub fn build_dir(&self, dir: &str, log: &Path, verbose: bool) -> Result<()> {
        run_logged(
            self.make()
                .arg("CLIPPY=1")
                .arg(format!("-j{}", util::jobs()))
                .arg(format!("{}/", dir.trim_end_matches('/'))),
            log,
            verbose,
        )
    }

    /// `make rustfmtcheck`: returns (passed, output).
    pub fn rustfmtcheck(&self) -> Result<(bool, String)> {
        let output = self
            .make()
            .arg("rustfmtcheck")
            .output()
            .context("cannot run make rustfmtcheck")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status.success(), text))
    }

    /// `scripts/checkpatch.pl --strict --no-tree` of the tree on `patch`.
    pub fn checkpatch(&self, patch: &Path) -> Result<String> {
        let output = Command::new("perl")
            .arg(self.tree.join("scripts/checkpatch.pl"))
            .args(["--strict", "--no-tree", "--no-color", "--show-types"])
            .arg(patch)
            .output()
            .context("cannot run scripts/checkpatch.pl (is perl installed?)")?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
