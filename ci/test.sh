#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (`.ci/run` calls this script).
# Installs what it needs itself, so it also works on a brand-new machine.
set -euo pipefail
cd "$(dirname "$0")/.."

export INSTA_UPDATE=no CARGO_TERM_COLOR=never
started=$SECONDS
step() { printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$*"; }

step "tools"
# A full run writes about 8 GiB under target/ (two kernels, test binaries, machines); when the
# disk fills, rustc and make fail with a bare ENOSPC far into the run, so say it at the start.
free_gib=$(( $(df -Pk . | awk 'NR == 2 { print $4 }') / 1024 / 1024 ))
echo "disk: ${free_gib} GiB free under $PWD (a full run needs about 8 GiB under target/)"
if (( free_gib < 10 )); then
    echo "warning: less than 10 GiB free under $PWD: this run may fail with 'No space left on device'"
fi
if ! command -v cargo-nextest >/dev/null; then
    cargo install cargo-nextest --locked
fi

step "format check (workspace, and the module's files that cargo does not see)"
cargo fmt --all --check
rustfmt --edition 2021 --check kmod/src/*.rs

step "no inline assembly in the runtime (system calls go through libc, on every architecture)"
if grep -rn 'asm!' runtime/src; then
    echo "runtime/src must not use asm!: call libc instead"
    exit 1
fi

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "doc tests"
cargo test --doc --workspace --locked

step "host tests, tidy checks of docs/architecture.md's invariants included (nextest, JUnit in target/nextest/ci/junit.xml)"
cargo nextest run --workspace --profile ci --locked

step "hardware-in-the-loop tests on this machine (without GPUs or a Rust kernel: every test skipped with its reason; KTAP, JUnit, JSON in target/test-hw)"
cargo xtask test-hw

step "kernel toolchain and Rust-enabled 7.3 kernel (cached under target/kernel)"
cargo xtask kernel

step "runtime for arm64: cargo check --target aarch64-unknown-linux-gnu against Debian's arm64 standard library of the rustc-web that cargo xtask kernel installed (libstd-rust-web-dev:arm64, downloaded, not installed)"
cargo xtask cross-check --target aarch64-unknown-linux-gnu

step "hsa_p2p.ko with the kernel's clippy lints"
cargo xtask build --clippy

step "Debian and RPM packages (hsa-p2p-dkms, hsa-p2p-tools): scratch-root install checks, lintian, rpmlint, dkms build against the kernel"
cargo xtask package --deb --rpm --dkms-build

step "kernel patch series (samples/rust/hsa_p2p): every patch applies, builds with CLIPPY=1, checkpatch --strict has no error"
cargo xtask patches --check

step "module in QEMU: every shipped spec QEMU can express (KTAP; JUnit in target/vm-test/junit.xml)"
cargo xtask vm-test

step "debug kernel flavour: KASAN, lockdep, DMA-API debug, kobject-release debug, kmemleak, failslab (clang 19; cached under target/kernel/debug)"
nice cargo xtask kernel --debug

# On the debug flavour each spec machine takes ~2 min under TCG (KASAN, lockdep, and a reload
# loop whose rmmod waits for the delayed kobject release): all of them would add ~18 min. CI runs
# the machines that take the module's risky paths (bind/unbind/rebind/reload, a refused GPU, and
# the two transfer machines: ioctls, mmap, bus-address and DMA-mapped peers, unbind with a live
# mapping, readers racing republish, and on mixed-three-gpus the hotplug suite: a GPU removed
# with QMP device_del idle and under work, pulled by surprise and added back), ~5 min, and the
# vIOMMU machines (epyc-iommu: bus-address and IOVA peer mappings under DMA-API debug;
# dma-mask-limit-remap); the other specs differ only in topology, which the host tests and the
# normal vm-test above cover.
step "module in QEMU on the debug kernel: any checker report fails the run (JUnit in target/vm-test-debug/junit.xml)"
cargo xtask vm-test --debug \
    --exclude same-switch,separate-root-ports,small-bar,two-socket,xgmi-hive-4,mi250-8gcd,sixteen-gpus,dma-mask-limit

# The stress campaign at its default size (10,000 operations over 3 processes x 2 threads, at
# least 50 unbind/rebind cycles, slab fault injection on 3% of the calls, asynchronous copies
# in the mix) on the debug kernel, seed 1: 1.3-1.4 min in CI with nothing else running, ~2.5 min
# on a busy machine. Fewer operations do not make it shorter:
# the 50 unbind/rebind cycles set its length (5,000 operations took 151 s, 10,000 took 155 s).
# Any oracle failure, checker report or leak fails it.
step "stress campaign on the debug kernel (summary in target/stress/summary.json)"
cargo xtask stress --debug --seed 1

step "done in $((SECONDS - started)) s"
