//! The DKMS pre-build check (`packaging/dkms/hsa-p2p-kbuild check KDIR`) against fake kernel
//! build directories: it must accept a Rust-capable kernel and say in words why any other
//! kernel cannot build the module. `make` is also run with a fake `make` that records its
//! arguments, to prove the kernel's rustc ends up on kbuild's command line.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// Not the version of any real rustc on the machine: /usr/bin/rustc, the wrapper's fallback, must
// not match by accident.
const KERNEL_RUSTC: &str = "rustc 1.97.1 (0123456789 2027-01-01) (fake kernel compiler)";
const KERNEL_RUSTC_NUMBER: &str = "109701";
const OTHER_RUSTC: &str = "rustc 1.95.0 (59807616e 2026-04-14)";

fn wrapper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/dkms/hsa-p2p-kbuild")
}

/// A scratch directory for one test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dkms-kbuild-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_executable(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake `rustc` printing `version` for `--version`.
fn fake_rustc(dir: &Path, name: &str, version: &str) -> PathBuf {
    let path = dir.join(name);
    write_executable(&path, &format!("#!/bin/sh\necho '{version}'\n"));
    path
}

/// What a fake kernel build directory has.
struct FakeKernel {
    config: Option<String>,
    rust_artefacts: bool,
}

impl FakeKernel {
    fn rust_capable() -> Self {
        Self {
            config: Some(format!(
                "CONFIG_MODULES=y\nCONFIG_RUST=y\nCONFIG_RUSTC_VERSION={KERNEL_RUSTC_NUMBER}\n\
                 CONFIG_RUSTC_VERSION_TEXT=\"{KERNEL_RUSTC}\"\n"
            )),
            rust_artefacts: true,
        }
    }

    fn create(&self, dir: &Path) -> PathBuf {
        let kdir = dir.join("kernel");
        fs::create_dir_all(kdir.join("include/config")).unwrap();
        if let Some(config) = &self.config {
            fs::write(kdir.join(".config"), config).unwrap();
            fs::write(kdir.join("include/config/auto.conf"), config).unwrap();
        }
        if self.rust_artefacts {
            fs::create_dir_all(kdir.join("rust")).unwrap();
            for file in ["libcore.rmeta", "libkernel.rmeta", "libmacros.so"] {
                fs::write(kdir.join("rust").join(file), "").unwrap();
            }
        }
        kdir
    }
}

/// Runs the wrapper with a PATH of only `bin` (+ the system's sh tools) and `HSA_P2P_RUSTC`.
fn run(args: &[&Path], bin: &Path, rustc_override: Option<&Path>) -> Output {
    let mut cmd = Command::new(wrapper());
    cmd.args(args)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    if let Some(rustc) = rustc_override {
        cmd.env("HSA_P2P_RUSTC", rustc);
    }
    cmd.output().expect("the wrapper runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The explanation of a `check` that refused the kernel (exit status 1).
fn refusal(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    stderr(output)
}

/// `check KDIR` with the kernel's rustc on PATH.
fn check_with_kernel_rustc(dir: &Path, kdir: &Path) -> Output {
    run(
        &[Path::new("check"), kdir],
        &bin_with_kernel_rustc(dir),
        None,
    )
}

/// A `bin` directory whose `rustc` is the kernel's.
fn bin_with_kernel_rustc(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    fake_rustc(&bin_dir(&bin), "rustc", KERNEL_RUSTC);
    bin
}

fn bin_dir(bin: &Path) -> PathBuf {
    fs::create_dir_all(bin).unwrap();
    bin.to_path_buf()
}

#[test]
fn accepts_a_rust_capable_kernel() {
    let dir = scratch("ok");
    let kdir = FakeKernel::rust_capable().create(&dir);
    let bin = bin_with_kernel_rustc(&dir);
    let output = run(&[Path::new("check"), &kdir], &bin, None);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("can build Rust modules with"), "{stdout}");
    assert!(stdout.contains(&bin.join("rustc").display().to_string()));
}

#[test]
fn explains_a_missing_build_directory() {
    let dir = scratch("missing");
    let bin = bin_with_kernel_rustc(&dir);
    let output = run(&[Path::new("check"), &dir.join("nowhere")], &bin, None);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the directory does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn explains_an_unconfigured_kernel() {
    let dir = scratch("unconfigured");
    let kdir = FakeKernel {
        config: None,
        rust_artefacts: false,
    }
    .create(&dir);
    let output = check_with_kernel_rustc(&dir, &kdir);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not a")
            && stderr(&output).contains("configured kernel build directory"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn explains_a_kernel_without_config_rust() {
    let dir = scratch("no-rust");
    let kdir = FakeKernel {
        config: Some("CONFIG_MODULES=y\n# CONFIG_RUST is not set\n".into()),
        rust_artefacts: false,
    }
    .create(&dir);
    let text = refusal(&check_with_kernel_rustc(&dir, &kdir));
    assert!(text.contains("built without Rust support"), "{text}");
    assert!(text.contains("CONFIG_RUST=y"), "{text}");
    // One explanation, not a compiler's wall of errors.
    assert!(text.lines().count() <= 6, "{text}");
}

#[test]
fn explains_missing_rust_metadata() {
    let dir = scratch("no-rmeta");
    let kdir = FakeKernel {
        rust_artefacts: false,
        ..FakeKernel::rust_capable()
    }
    .create(&dir);
    let text = refusal(&check_with_kernel_rustc(&dir, &kdir));
    assert!(text.contains("Rust metadata is missing"), "{text}");
    assert!(text.contains("rust/libkernel.rmeta"), "{text}");
}

#[test]
fn explains_a_rustc_version_mismatch() {
    let dir = scratch("mismatch");
    let kdir = FakeKernel::rust_capable().create(&dir);
    let bin = bin_dir(&dir.join("bin"));
    fake_rustc(&bin, "rustc", OTHER_RUSTC);
    let text = refusal(&run(&[Path::new("check"), &kdir], &bin, None));
    assert!(text.contains(KERNEL_RUSTC), "{text}");
    assert!(text.contains(OTHER_RUSTC), "{text}");
    assert!(text.contains("E0514"), "{text}");
    assert!(text.contains("HSA_P2P_RUSTC"), "{text}");
}

#[test]
fn finds_the_kernel_rustc_given_by_hsa_p2p_rustc() {
    let dir = scratch("override");
    let kdir = FakeKernel::rust_capable().create(&dir);
    let bin = bin_dir(&dir.join("bin"));
    fake_rustc(&bin, "rustc", OTHER_RUSTC);
    let kernel_rustc = fake_rustc(&dir.join("toolchain"), "rustc", KERNEL_RUSTC);
    let output = run(&[Path::new("check"), &kdir], &bin, Some(&kernel_rustc));
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn compares_the_version_number_when_no_text_is_recorded() {
    let dir = scratch("number");
    let kdir = FakeKernel {
        config: Some(format!(
            "CONFIG_MODULES=y\nCONFIG_RUST=y\nCONFIG_RUSTC_VERSION={KERNEL_RUSTC_NUMBER}\n"
        )),
        rust_artefacts: true,
    }
    .create(&dir);
    let output = check_with_kernel_rustc(&dir, &kdir);
    assert!(output.status.success(), "{}", stderr(&output));

    let bin = bin_dir(&dir.join("other-bin"));
    fake_rustc(&bin, "rustc", OTHER_RUSTC);
    let text = refusal(&run(&[Path::new("check"), &kdir], &bin, None));
    assert!(text.contains(KERNEL_RUSTC_NUMBER), "{text}");
}

#[test]
fn make_passes_the_kernel_rustc_to_kbuild_and_stops_before_it_otherwise() {
    let dir = scratch("make");
    let kdir = FakeKernel::rust_capable().create(&dir);
    let bin = bin_with_kernel_rustc(&dir);
    let recorded = dir.join("make-args");
    write_executable(
        &bin.join("make"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            recorded.display()
        ),
    );
    let moddir = dir.join("module");
    let output = run(
        &[
            Path::new("make"),
            &kdir,
            &moddir,
            Path::new("KERNELRELEASE=7.3.4"),
        ],
        &bin,
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let args = fs::read_to_string(&recorded).unwrap();
    let rustc = bin.join("rustc").display().to_string();
    for expected in [
        format!("-C\n{}\n", kdir.display()),
        format!("M={}\n", moddir.display()),
        format!("RUSTC={rustc}\n"),
        format!("HOSTRUSTC={rustc}\n"),
        "KERNELRELEASE=7.3.4\n".to_owned(),
    ] {
        assert!(args.contains(&expected), "{expected:?} not in {args:?}");
    }
    assert!(args.ends_with("modules\n"), "{args}");

    // A kernel without Rust: the explanation, and kbuild never runs.
    fs::remove_file(&recorded).unwrap();
    let no_rust = FakeKernel {
        config: Some("CONFIG_MODULES=y\n".into()),
        rust_artefacts: false,
    }
    .create(&scratch("make-no-rust"));
    let output = run(&[Path::new("make"), &no_rust, &moddir], &bin, None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("built without Rust support"));
    assert!(!recorded.exists(), "make ran although the check failed");
}
