//! The guests' scripts (`/test.sh`, run by the initramfs' `/init` after mounting /proc, /sys
//! and /dev), made of [`protocol`] steps.

use hsa_p2p_runtime::sysfs::HSA_P2P_TOPOLOGY;

use super::hwtests_in_guest;
use super::why_check::why_step;
use crate::vm::host_channel::GUEST_DEVICE;
use crate::vm::options::{load_module_step, GUEST_MODULE};
use crate::vm::protocol::{self, print_kernel_log, print_tree};

/// How often the module is unloaded and loaded again.
pub const RELOADS: u32 = 10;

/// Tags of the trees [`test_script`] prints: all GPUs bound, the first unbound, bound again,
/// after the reload loop.
pub const TREES: [&str; 4] = ["bound", "unbound", "rebound", "reloaded"];

/// The module's PCI driver directory in the guest.
const DRIVER: &str = "/sys/bus/pci/drivers/hsa_p2p";

/// The hwtests suites a spec machine runs (amdkfd's is left out: the guest has no amdgpu, so
/// it could only skip). `isolation` and `hotplug` put the GPUs back in their bind order, which
/// the trees printed after them rely on.
const SPEC_SUITES: &[&str] = &[
    "hsa_p2p.*",
    "transfer.*",
    "async_copy.*",
    "platform.*",
    "isolation.*",
    "hotplug.*",
];

/// Load the module, print the topology, `p2pctl why` every pair, run hwtests (given the host
/// channel when the machine has `hotplug` GPUs), unbind and rebind `first_gpu` (its PCI
/// address), reload the module ten times, print the kernel log.
pub fn test_script(first_gpu: &str, hotplug: bool) -> String {
    let [bound, unbound, rebound, reloaded] = TREES;
    let host_channel = if hotplug {
        format!("--host-channel {GUEST_DEVICE}")
    } else {
        String::new()
    };
    protocol::script([
        load_module_step(),
        print_tree(HSA_P2P_TOPOLOGY, bound),
        why_step(HSA_P2P_TOPOLOGY),
        hwtests_in_guest::step(SPEC_SUITES, &host_channel),
        format!("echo {first_gpu} > {DRIVER}/unbind || fail unbind"),
        print_tree(HSA_P2P_TOPOLOGY, unbound),
        format!("echo {first_gpu} > {DRIVER}/bind || fail bind"),
        print_tree(HSA_P2P_TOPOLOGY, rebound),
        // The kernel's one-time "loading out-of-tree module taints kernel" notice is a warning
        // about every out-of-tree module, not about this one: the log is checked from here on.
        "dmesg -c > /dev/null".into(),
        // The driver core drops the driver's kobject with kobject_put alone: under
        // CONFIG_DEBUG_KOBJECT_RELEASE its sysfs directory lingers for the release delay (1-4 s),
        // and an insmod before then clashes with it. Wait for it (instant on other kernels).
        format!(
            "i=0; while [ $i -lt {RELOADS} ]; do i=$((i+1)); rmmod hsa_p2p || fail rmmod $i; [ -e /sys/kernel/hsa_p2p ] && fail leftover sysfs after rmmod $i; n=0; while [ -e {DRIVER} ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done; insmod {GUEST_MODULE} || fail insmod $i; done"
        ),
        print_tree(HSA_P2P_TOPOLOGY, reloaded),
        "rmmod hsa_p2p || fail final rmmod".into(),
        "[ -e /sys/kernel/hsa_p2p ] && fail leftover sysfs after the final rmmod".into(),
        print_kernel_log(),
    ])
}

/// Tag of the tree printed by [`refusal_script`].
pub const TREE_REFUSED: &str = "refused";

/// Tag of the same tree printed again while the kernel floods the console
/// ([`under_console_noise`]).
pub const TREE_UNDER_NOISE: &str = "refused-under-kernel-noise";

/// What each kernel message of that flood says.
pub const NOISE: &str = "hsa-p2p vm-test console noise";

/// Most noise messages written (the flood stops when the section is printed).
const MAX_NOISE: u32 = 20_000;

/// For a machine with a GPU whose descriptor is corrupt: load, print the topology and the
/// kernel log, print the topology again under a flood of kernel messages, unload.
pub fn refusal_script() -> String {
    protocol::script([
        load_module_step(),
        print_tree(HSA_P2P_TOPOLOGY, TREE_REFUSED),
        print_kernel_log(),
        under_console_noise(&print_tree(HSA_P2P_TOPOLOGY, TREE_UNDER_NOISE)),
        "rmmod hsa_p2p || fail rmmod".into(),
    ])
}

/// `step`, run while the console shows every kernel message (as after a checker report, whose
/// `console_verbose()` raises the level) and a background loop writes [`NOISE`] messages to
/// `/dev/kmsg` until `step` is done. `step` starts a moment after the first message was written,
/// so that the console thread (8250 is an nbcon console: it prints from a kthread) printed
/// some of them.
fn under_console_noise(step: &str) -> String {
    format!(
        "rm -f /tmp/noise-started /tmp/noise-done; dmesg -n 8; \
         (n=0; while [ ! -e /tmp/noise-done ] && [ $n -lt {MAX_NOISE} ]; do echo \"<6>{NOISE} $n\" > /dev/kmsg; n=$((n+1)); [ $n -eq 1 ] && touch /tmp/noise-started; done) & noise=$!; \
         while [ ! -e /tmp/noise-started ]; do sleep 0.01; done; \
         {step}; touch /tmp/noise-done; wait $noise"
    )
}

/// The hwtests suites a transfer machine runs.
const TRANSFER_SUITES: &[&str] = &["abi.*", "async_copy.*", "device.*"];

/// The transfer machine: load the module, two CLI copies, then hwtests' `abi` and `device`
/// suites, whose last case copies `size` bytes between every ordered GPU pair and leaves them
/// in VRAM for the host; unload and print the kernel log. `linked` and `unlinked` are GPU pairs
/// (`gpuN` names) with and without a p2p link, for the CLI checks.
pub fn transfer_script(
    size: u64,
    linked: Option<(usize, usize)>,
    unlinked: Option<(usize, usize)>,
) -> String {
    let mut steps = vec![
        load_module_step(),
        // The out-of-tree taint notice is about every such module; the log is checked from here.
        "dmesg -c > /dev/null".into(),
    ];
    if let Some((a, b)) = linked {
        steps.push(format!(
            "p2pctl copy --from gpu{a} --to gpu{b} --size 4M --direct || fail p2pctl direct copy gpu{a} gpu{b}"
        ));
    }
    if let Some((a, b)) = unlinked {
        steps.push(format!(
            "p2pctl copy --from gpu{a} --to gpu{b} --size 4M || fail p2pctl staged copy gpu{a} gpu{b}"
        ));
        steps.push(format!(
            "p2pctl copy --from gpu{a} --to gpu{b} --size 4M --direct && fail p2pctl direct copy without a link succeeded"
        ));
    }
    steps.extend([
        hwtests_in_guest::step(TRANSFER_SUITES, &format!("--pair-copy-bytes {size}")),
        "rmmod hsa_p2p || fail rmmod".into(),
        print_kernel_log(),
    ]);
    protocol::script(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_script_names_every_step() {
        let script = test_script("0000:03:00.0", false);
        assert!(!script.contains("--host-channel"));
        assert!(test_script("0000:03:00.0", true).contains("--host-channel /dev/ttyS1"));
        assert!(script.contains("echo 0000:03:00.0 > /sys/bus/pci/drivers/hsa_p2p/unbind"));
        for tag in TREES {
            assert!(script.contains(&print_tree(HSA_P2P_TOPOLOGY, tag)), "{tag}");
        }
        assert!(script.contains(
            "hwtests --module-loaded --only 'hsa_p2p.*' --only 'transfer.*' \
             --only 'async_copy.*' --only 'platform.*' --only 'isolation.*' --only 'hotplug.*'"
        ));
    }

    #[test]
    fn the_transfer_script_runs_the_device_suites_last() {
        let script = transfer_script(1 << 20, Some((0, 1)), None);
        let hwtests = script.find("hwtests --module-loaded").unwrap();
        assert!(script[hwtests..].contains("--pair-copy-bytes 1048576"));
        assert!(script.find("p2pctl copy").unwrap() < hwtests);
    }
}
