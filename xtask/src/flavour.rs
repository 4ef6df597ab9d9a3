//! Kernel flavours: the normal test kernel and the debug one that runs the kernel's checkers
//! (KASAN, lockdep, DMA-API debug, kobject-release debug, kmemleak, fault injection).
//!
//! Each flavour has its own cached kernel build and its own module build: a module must be
//! built against, and with the same compiler as, the kernel it is loaded into.

use std::path::PathBuf;
use std::time::Duration;

use crate::util;

/// `--debug`, shared by every command that builds or boots a kernel.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct FlavourArgs {
    /// Use the debug kernel flavour (KASAN, lockdep, DMA-API debug, kobject-release debug,
    /// kmemleak, fault injection; built with clang 19), cached under target/kernel/debug.
    #[arg(long)]
    pub debug: bool,
}

impl FlavourArgs {
    /// The flavour the flag selects.
    pub fn flavour(self) -> Flavour {
        if self.debug {
            Flavour::Debug
        } else {
            Flavour::Normal
        }
    }
}

/// A kernel configuration and the way it is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `tinyconfig` + `kmod/kernel.config`, built with gcc.
    Normal,
    /// The normal flavour + `kmod/kernel-debug.config`, built with clang 19.
    Debug,
}

impl Flavour {
    /// Name in messages and file names.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Normal => "normal",
            Flavour::Debug => "debug",
        }
    }

    /// Where the flavour's build, logs and `env.json` live (the source tree is shared, in
    /// `target/kernel/src`).
    pub fn kernel_dir(self) -> PathBuf {
        let shared = util::target_dir().join("kernel");
        match self {
            Flavour::Normal => shared,
            Flavour::Debug => shared.join("debug"),
        }
    }

    /// Configuration fragments, relative to the workspace root, merged in this order.
    pub fn fragments(self) -> &'static [&'static str] {
        match self {
            Flavour::Normal => &["kmod/kernel.config"],
            Flavour::Debug => &["kmod/kernel.config", "kmod/kernel-debug.config"],
        }
    }

    /// Variables on every `make` command line of this flavour's kernel and modules. 7.3's
    /// `config RUST` depends on `!KASAN || CC_IS_CLANG`: KASAN with Rust needs clang
    /// (`LLVM=-19` picks clang-19, ld.lld-19, llvm-ar-19 ...).
    pub fn make_vars(self) -> &'static [&'static str] {
        match self {
            Flavour::Normal => &[],
            Flavour::Debug => &["LLVM=-19"],
        }
    }

    /// bookworm packages this flavour needs on top of the common ones.
    pub fn host_packages(self) -> &'static [&'static str] {
        match self {
            Flavour::Normal => &[],
            Flavour::Debug => &["clang-19", "lld-19", "llvm-19"],
        }
    }

    /// The C compiler whose version keys the build cache.
    pub fn compiler(self) -> &'static str {
        match self {
            Flavour::Normal => "gcc",
            Flavour::Debug => "clang-19",
        }
    }

    /// `target/<name>` for the normal flavour, `target/<name>-debug` for the debug one: the
    /// outputs of a command that depend on the kernel (module builds, test results).
    pub fn target_subdir(self, name: &str) -> PathBuf {
        match self {
            Flavour::Normal => util::target_dir().join(name),
            Flavour::Debug => util::target_dir().join(format!("{name}-debug")),
        }
    }

    /// How much longer a guest runs on this flavour than on the normal one. Measured under
    /// TCG: inline KASAN, lockdep and debugobjects make the module's reload loop and the
    /// sysfs walks several times slower.
    pub fn slowdown(self) -> u32 {
        match self {
            Flavour::Normal => 1,
            Flavour::Debug => 4,
        }
    }

    /// A guest timeout given for the normal flavour, scaled for this one.
    pub fn timeout(self, normal: Duration) -> Duration {
        normal * self.slowdown()
    }
}
