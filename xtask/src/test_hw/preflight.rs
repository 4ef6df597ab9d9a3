//! Can the `hsa_p2p` module be loaded into the running kernel, and what does the machine look
//! like? Every check says what it found; the blocking ones say why the module cannot be loaded
//! and what to do about it.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hsa_p2p_hwtests::machine_facts::Inventory;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// The module cannot be loaded because of this.
    Blocked,
    /// For the record (IOMMU mode, ACS, BARs…).
    Info,
}

/// One preflight check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Short name (`rust_kernel`, `root`, `vermagic`…).
    pub name: &'static str,
    /// Result.
    pub status: Status,
    /// What was found (a blocking check's detail is the skip reason of the module's tests).
    pub detail: String,
    /// What to do about a blocking check.
    pub remedy: Option<String>,
}

impl Check {
    /// A check without remedy.
    pub fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Check {
            name,
            status,
            detail: detail.into(),
            remedy: None,
        }
    }

    fn with_remedy(self, remedy: impl Into<String>) -> Self {
        Check {
            remedy: Some(remedy.into()),
            ..self
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Status::Ok => "ok",
            Status::Blocked => "BLOCKED",
            Status::Info => "info",
        };
        write!(f, "{:<14} {:<8} {}", self.name, status, self.detail)?;
        if let Some(remedy) = &self.remedy {
            write!(f, "\n{:<23} -> {remedy}", "")?;
        }
        Ok(())
    }
}

/// The running kernel's configuration, and where it came from.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    /// `/proc/config.gz` or `/boot/config-<release>`.
    pub source: PathBuf,
    /// Its text.
    pub text: String,
}

impl KernelConfig {
    /// Reads `/proc/config.gz` (through `gzip -dc`), else `/boot/config-<release>`.
    pub fn read(release: &str) -> Option<KernelConfig> {
        let proc_config = Path::new("/proc/config.gz");
        if proc_config.exists() {
            let output = Command::new("gzip")
                .arg("-dc")
                .arg(proc_config)
                .output()
                .ok()?;
            if output.status.success() {
                return Some(KernelConfig {
                    source: proc_config.to_path_buf(),
                    text: String::from_utf8_lossy(&output.stdout).into_owned(),
                });
            }
        }
        let boot = PathBuf::from(format!("/boot/config-{release}"));
        let text = fs::read_to_string(&boot).ok()?;
        Some(KernelConfig { source: boot, text })
    }

    /// The value of `CONFIG_<name>` (`y`, `m`, a string…), None when unset.
    pub fn value(&self, name: &str) -> Option<&str> {
        let key = format!("CONFIG_{name}=");
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(key.as_str()))
            .map(|value| value.trim_matches('"'))
    }

    /// Whether `CONFIG_<name>` is `y`.
    pub fn enabled(&self, name: &str) -> bool {
        self.value(name) == Some("y")
    }
}

/// The effective user id, from `/proc/self/status` (`Uid: real effective saved fs`).
pub fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A `key=value` string of a module's `.modinfo` section (the section is a list of
/// NUL-terminated strings, so a scan of the file finds them).
pub fn modinfo<'a>(module: &'a [u8], key: &str) -> Option<&'a str> {
    let needle = format!("{key}=");
    module
        .split(|byte| *byte == 0)
        .find_map(|field| field.strip_prefix(needle.as_bytes()))
        .and_then(|value| std::str::from_utf8(value).ok())
}

/// The rustc that compiled a Rust object: its `.comment` section holds `rustc version X.Y.Z…`.
pub fn rustc_of_module(module: &[u8]) -> Option<String> {
    let needle = b"rustc version ";
    let at = module.windows(needle.len()).position(|w| w == needle)?;
    let rest = &module[at + needle.len()..];
    let end = rest
        .iter()
        .position(|b| *b == 0 || *b == b' ')
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
}

/// `X.Y.Z` of the rustc that built the kernel (`CONFIG_RUSTC_VERSION_TEXT="rustc 1.96.0 (…)"`).
pub fn rustc_of_kernel(config: &KernelConfig) -> Option<String> {
    let text = config.value("RUSTC_VERSION_TEXT")?;
    text.split_whitespace().nth(1).map(str::to_string)
}

/// The kernel-side checks: release, Rust support, modules, root.
pub fn kernel_checks(release: &str, config: Option<&KernelConfig>, uid: Option<u32>) -> Vec<Check> {
    let mut checks = vec![Check::new(
        "kernel",
        Status::Info,
        format!("running {release}"),
    )];
    match config {
        None => checks.push(Check::new(
            "rust_kernel",
            Status::Blocked,
            format!(
                "cannot tell whether {release} has CONFIG_RUST: neither /proc/config.gz nor \
                 /boot/config-{release} is readable"
            ),
        )),
        Some(config) => {
            let source = config.source.display();
            if config.enabled("RUST") {
                let rustc = rustc_of_kernel(config).unwrap_or_else(|| "unknown".into());
                checks.push(Check::new(
                    "rust_kernel",
                    Status::Ok,
                    format!("CONFIG_RUST=y (kernel built with rustc {rustc}; {source})"),
                ));
            } else {
                checks.push(
                    Check::new(
                        "rust_kernel",
                        Status::Blocked,
                        format!(
                            "the running kernel {release} was built without CONFIG_RUST=y \
                         ({source}): hsa_p2p is a Rust module"
                        ),
                    )
                    .with_remedy(
                        "boot a Rust-enabled kernel (`cargo xtask kernel` builds one; \
                     `cargo xtask vm-test` runs the module's tests inside it)",
                    ),
                );
            }
            if !config.enabled("MODULES") {
                checks.push(Check::new(
                    "modules",
                    Status::Blocked,
                    format!(
                        "{release} was built without CONFIG_MODULES=y: no module can be loaded"
                    ),
                ));
            }
            let p2pdma = if config.enabled("PCI_P2PDMA") {
                "CONFIG_PCI_P2PDMA=y".to_string()
            } else {
                "CONFIG_PCI_P2PDMA is off: the PCI core refuses every P2P pair".to_string()
            };
            let amd_p2p = match config.value("HSA_AMD_P2P") {
                Some("y") => "CONFIG_HSA_AMD_P2P=y",
                _ => "CONFIG_HSA_AMD_P2P off (amdkfd builds no peer links)",
            };
            checks.push(Check::new(
                "p2p_config",
                Status::Info,
                format!("{p2pdma}; {amd_p2p}"),
            ));
        }
    }
    if fs::read_to_string("/proc/sys/kernel/modules_disabled")
        .is_ok_and(|value| value.trim() == "1")
    {
        checks.push(Check::new(
            "modules",
            Status::Blocked,
            "module loading is disabled (kernel.modules_disabled=1)",
        ));
    }
    checks.push(match uid {
        Some(0) => Check::new("root", Status::Ok, "running as root"),
        Some(uid) => Check::new(
            "root",
            Status::Blocked,
            format!("running as uid {uid}: insmod/rmmod need root"),
        )
        .with_remedy("run it as root, e.g. `sudo -E cargo xtask test-hw`"),
        None => Check::new("root", Status::Blocked, "cannot read the effective uid"),
    });
    checks
}

/// The module-side checks: the `.ko` was built for this kernel release by the kernel's rustc.
pub fn module_checks(
    module: &Path,
    bytes: &[u8],
    release: &str,
    config: Option<&KernelConfig>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let vermagic = modinfo(bytes, "vermagic").unwrap_or("");
    let built_for = vermagic.split_whitespace().next().unwrap_or("");
    checks.push(if built_for == release {
        Check::new("vermagic", Status::Ok, format!("{}: {vermagic}", module.display()))
    } else {
        Check::new(
            "vermagic",
            Status::Blocked,
            format!(
                "{} was built for kernel {:?}, the running kernel is {release}",
                module.display(),
                if built_for.is_empty() { "unknown" } else { built_for }
            ),
        )
        .with_remedy(format!(
            "rebuild it with --kdir /lib/modules/{release}/build (or the tree that built this kernel)"
        ))
    });
    let module_rustc = rustc_of_module(bytes);
    let kernel_rustc = config.and_then(rustc_of_kernel);
    if let (Some(module_rustc), Some(kernel_rustc)) = (&module_rustc, &kernel_rustc) {
        checks.push(if module_rustc == kernel_rustc {
            Check::new(
                "rustc",
                Status::Ok,
                format!("module and kernel built with rustc {kernel_rustc}"),
            )
        } else {
            Check::new(
                "rustc",
                Status::Blocked,
                format!(
                    "{} was built by rustc {module_rustc}, the kernel by rustc {kernel_rustc}: \
                     Rust modules must be built by the kernel's own rustc",
                    module.display()
                ),
            )
            .with_remedy(format!(
                "rebuild with RUSTC=<rustc {kernel_rustc}> on the make command line \
                 (`cargo xtask build --kdir` passes the kernel's toolchain)"
            ))
        });
    }
    checks
}

/// Machine facts for the record: IOMMU mode, ACS state, GPU BARs, `pcie_p2p`.
pub fn machine_checks(inventory: &Inventory) -> Vec<Check> {
    inventory
        .describe()
        .into_iter()
        .map(|(key, value)| {
            let name = match key.as_str() {
                "iommu" => "iommu",
                "acs_redirect" => "acs",
                "pcie_p2p" => "pcie_p2p",
                _ => "bars",
            };
            Check::new(name, Status::Info, value)
        })
        .collect()
}

/// The first blocking check's detail.
pub fn blocker(checks: &[Check]) -> Option<String> {
    checks
        .iter()
        .find(|check| check.status == Status::Blocked)
        .map(|check| format!("preflight: {}", check.detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> KernelConfig {
        KernelConfig {
            source: "/proc/config.gz".into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_kernel_without_rust_blocks_with_the_reason() {
        let checks = kernel_checks(
            "6.1.0",
            Some(&config("CONFIG_MODULES=y\n# CONFIG_RUST is not set\n")),
            Some(0),
        );
        let reason = blocker(&checks).unwrap();
        assert!(
            reason
                .starts_with("preflight: the running kernel 6.1.0 was built without CONFIG_RUST=y"),
            "{reason}"
        );
    }

    #[test]
    fn a_rust_kernel_as_root_passes() {
        let text = "CONFIG_RUST=y\nCONFIG_MODULES=y\nCONFIG_PCI_P2PDMA=y\nCONFIG_RUSTC_VERSION_TEXT=\"rustc 1.96.0 (abc 2026-05-01)\"\n";
        let checks = kernel_checks("7.3.4", Some(&config(text)), Some(0));
        assert_eq!(blocker(&checks), None, "{checks:?}");
        assert_eq!(rustc_of_kernel(&config(text)).as_deref(), Some("1.96.0"));
        let as_user = kernel_checks("7.3.4", Some(&config(text)), Some(1000));
        assert!(blocker(&as_user).unwrap().contains("need root"));
    }

    #[test]
    fn module_checks_catch_another_kernel_and_another_rustc() {
        let kernel = config("CONFIG_RUSTC_VERSION_TEXT=\"rustc 1.96.0 (x)\"\n");
        let ko = b"\x7fELF...\0license=GPL\0vermagic=7.3.4 SMP mod_unload \0name=hsa_p2p\0....rustc version 1.95.0 (59807616e 2026-04-14)\0";
        assert_eq!(modinfo(ko, "vermagic"), Some("7.3.4 SMP mod_unload "));
        assert_eq!(rustc_of_module(ko).as_deref(), Some("1.95.0"));
        let checks = module_checks(Path::new("hsa_p2p.ko"), ko, "7.3.4", Some(&kernel));
        assert_eq!(checks[0].status, Status::Ok);
        assert_eq!(checks[1].status, Status::Blocked);
        assert!(checks[1]
            .detail
            .contains("built by rustc 1.95.0, the kernel by rustc 1.96.0"));
        let other = module_checks(Path::new("hsa_p2p.ko"), ko, "6.18.0", Some(&kernel));
        assert!(blocker(&other)
            .unwrap()
            .contains("was built for kernel \"7.3.4\", the running kernel is 6.18.0"));
    }

    #[test]
    fn the_effective_uid_is_the_second_field() {
        assert_eq!(effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }
}
