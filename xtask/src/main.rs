//! `cargo xtask`: developer and CI automation for hsa-p2p.
//!
//! - `cargo xtask kernel`: toolchain + Rust-enabled 7.3 kernel, cached under `target/kernel`;
//! - `cargo xtask build [--kdir DIR]`: `hsa_p2p.ko` into `target/kmod/`;
//! - `cargo xtask test-hw`: hardware-in-the-loop tests on this machine (`hwtests/`);
//! - `cargo xtask vm [SPEC] [-- CMD]`: boots a spec's machine in QEMU, loads the module, shows
//!   and checks its topology (`--demo`: the built-in smoke machine).
//! - `cargo xtask package`: Debian and RPM packages (DKMS source, p2pctl) into `target/dist/`;
//! - `cargo xtask patches`: the module as a checked kernel patch series in `target/patches/`;
//! - `cargo xtask cross-check`: `cargo check` of the runtime for arm64 (Debian's std).

mod apt;
mod bench;
mod bring_up;
mod cross_check;
mod emulation;
mod flavour;
mod guest_tools;
mod kernel;
mod kmod;
mod package;
mod patches;
mod run_report;
mod stress;
mod test_hw;
mod util;
mod vm;
mod vm_test;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "hsa-p2p build, VM and packaging automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the toolchain and build a Rust-enabled 7.3 kernel (cached under target/kernel).
    Kernel(kernel::KernelArgs),
    /// Build hsa_p2p.ko (into target/kmod/hsa_p2p.ko).
    Build(kmod::BuildArgs),
    /// Boot a spec's machine (default: the 3-GPU mixed machine) in QEMU, load the module and
    /// compare its topology with the prediction; `-- CMD` runs CMD in the guest.
    Vm(vm::spec_boot::VmArgs),
    /// Boot every shipped spec QEMU can express and check the module's topology against the prediction.
    VmTest(vm_test::VmTestArgs),
    /// Hardware-in-the-loop tests on this machine: preflight, load the module, validate amdkfd's
    /// and the module's topologies and transfers; KTAP, JUnit and JSON into target/test-hw.
    TestHw(test_hw::TestHwArgs),
    /// Debian and/or RPM packages into target/dist: hsa-p2p-dkms (DKMS source, udev rule) and
    /// hsa-p2p-tools (p2pctl, man pages, completions).
    Package(package::PackageArgs),
    /// The module as a kernel patch series (samples/rust/hsa_p2p) into target/patches, checked patch by patch.
    Patches(patches::PatchesArgs),
    /// Direct vs staged peer-copy bandwidth, memcpy baseline and 4 KiB latency on the
    /// two-GPU same-switch machine (JSON into target/bench/).
    Bench(bench::BenchArgs),
    /// `cargo check` of the runtime for another architecture (default arm64) against Debian's
    /// standard library of that architecture.
    CrossCheck(cross_check::CrossCheckArgs),
    /// The stress campaign in an emulated machine: processes, threads, unbinds, topology
    /// readers and fault injection against /dev/hsa_p2p (summary in target/stress/).
    Stress(stress::StressArgs),
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Kernel(args) => kernel::kernel(&args).map(drop),
        Command::Build(args) => kmod::build(&args).map(drop),
        Command::Vm(args) => vm::spec_boot::boot(&args),
        Command::VmTest(args) => vm_test::vm_test(&args),
        Command::TestHw(args) => test_hw::test_hw(&args),
        Command::Package(args) => package::package(&args).map(drop),
        Command::Patches(args) => patches::patches(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Stress(args) => stress::stress(&args),
        Command::CrossCheck(args) => cross_check::cross_check(&args),
    }
}

fn main() -> ExitCode {
    // `test-hw` runs the hwtests device suites in this process; their probes run in a child.
    hsa_p2p_hwtests::device::probe::serve();
    util::start_clock();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
