#!/usr/bin/env bash
# Kernel-side test, as CI runs it: installs the toolchain and builds the Rust-enabled 7.3 kernel
# (cached under target/kernel: ~5 min cold on 2 cores, <1 s warm), builds hsa_p2p.ko with the
# kernel's clippy lints, and boots the 3-GPU demo machine in QEMU (TCG, a few seconds), which
# fails unless the module binds all three GPUs and links exactly the same-switch pair.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
cargo xtask kernel
cargo xtask build --clippy
cargo xtask vm --demo
