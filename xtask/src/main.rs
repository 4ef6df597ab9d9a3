//! `cargo xtask`: developer and CI automation for hsa-p2p.
//!
//! - `cargo xtask kernel`: toolchain + Rust-enabled 7.3 kernel, cached under `target/kernel`;
//! - `cargo xtask build [--kdir DIR]`: `hsa_p2p.ko` into `target/kmod/`;
//! - `cargo xtask vm --demo`: boots a 3-GPU machine in QEMU and loads the module.

mod apt;
mod emulation;
mod kernel;
mod kmod;
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
    /// Boot the kernel in QEMU with emulated GPUs and load the module.
    Vm(vm::demo::VmArgs),
    /// Boot every shipped spec QEMU can express and check the module's topology against the prediction.
    VmTest(vm_test::VmTestArgs),
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Kernel(args) => kernel::kernel(&args).map(drop),
        Command::Build(args) => kmod::build(&args).map(drop),
        Command::Vm(args) => vm::demo::demo(&args).map(drop),
        Command::VmTest(args) => vm_test::vm_test(&args),
    }
}

fn main() -> ExitCode {
    util::start_clock();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
