//! The guest's `/init` for one vm-test run: load the module, print the topology, unbind and
//! rebind a GPU, reload the module ten times, print the kernel log; every result goes to the
//! serial console between markers that the host parses.

use super::hwtests_in_guest::hwtests_command;
use super::tree_dump::dump_command;
use super::why_check::why_command;
use crate::vm::console;

/// Where the module publishes its topology.
pub const TOPOLOGY_ROOT: &str = "/sys/kernel/hsa_p2p/topology";
/// How often the module is unloaded and loaded again.
pub const RELOADS: u32 = 10;

/// Tags of the trees the script prints.
pub const TREE_BOUND: &str = "bound";
/// After unbinding the first GPU.
pub const TREE_UNBOUND: &str = "unbound";
/// After binding it again.
pub const TREE_REBOUND: &str = "rebound";
/// After the reload loop.
pub const TREE_RELOADED: &str = "reloaded";

/// The test script (`/test.sh`, run by the initramfs' `/init` after mounting /proc, /sys and
/// /dev). `first_gpu` is the PCI address of the GPU to unbind and rebind. Exits with the
/// number of failed steps.
pub fn test_script(first_gpu: &str) -> String {
    let topology = TOPOLOGY_ROOT;
    let driver = "/sys/bus/pci/drivers/hsa_p2p";
    [
        "failures=0".to_string(),
        "fail() { echo \"@@FAIL $*\"; failures=$((failures+1)); }".into(),
        "insmod /hsa_p2p.ko || fail insmod".into(),
        dump_command(topology, TREE_BOUND),
        why_command(topology),
        hwtests_command(),
        format!("echo {first_gpu} > {driver}/unbind || fail unbind"),
        dump_command(topology, TREE_UNBOUND),
        format!("echo {first_gpu} > {driver}/bind || fail bind"),
        dump_command(topology, TREE_REBOUND),
        // The kernel's one-time "loading out-of-tree module taints kernel" notice is a warning
        // about every out-of-tree module, not about this one: the log is checked from here on.
        "dmesg -c > /dev/null".into(),
        // The driver core drops the driver's kobject with kobject_put alone: under
        // CONFIG_DEBUG_KOBJECT_RELEASE its sysfs directory lingers for the release delay (1-4 s),
        // and an insmod before then clashes with it. Wait for it (instant on other kernels).
        format!(
            "i=0; while [ $i -lt {RELOADS} ]; do i=$((i+1)); rmmod hsa_p2p || fail rmmod $i; [ -e /sys/kernel/hsa_p2p ] && fail leftover sysfs after rmmod $i; n=0; while [ -e {driver} ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done; insmod /hsa_p2p.ko || fail insmod $i; done"
        ),
        dump_command(topology, TREE_RELOADED),
        "rmmod hsa_p2p || fail final rmmod".into(),
        "[ -e /sys/kernel/hsa_p2p ] && fail leftover sysfs after the final rmmod".into(),
        "echo '@@DMESG'; dmesg -r; echo '@@DMESG_END'".into(),
        "exit $failures".into(),
    ]
    .join("\n")
        + "\n"
}

/// Tag of the tree printed by [`refusal_script`].
pub const TREE_REFUSED: &str = "refused";

/// The test script for a machine with a GPU whose descriptor is corrupt: load, print the
/// topology and the kernel log, unload.
pub fn refusal_script() -> String {
    [
        "failures=0".to_string(),
        "fail() { echo \"@@FAIL $*\"; failures=$((failures+1)); }".into(),
        "insmod /hsa_p2p.ko || fail insmod".into(),
        dump_command(TOPOLOGY_ROOT, TREE_REFUSED),
        "echo '@@DMESG'; dmesg -r; echo '@@DMESG_END'".into(),
        "rmmod hsa_p2p || fail rmmod".into(),
        "exit $failures".into(),
    ]
    .join("\n")
        + "\n"
}

/// Where the static guest checker is installed (see `crate::vm::initramfs::guest_tools`).
pub const GUEST_CHECKER: &str = "/bin/hsa-p2p-guest";

/// The test script of the transfer machine: load the module, show the device node's mode, run
/// the bad-input checks and two CLI copies, then (last, so that nothing overwrites what the host
/// verifies in the backing files) the transfers of `size` bytes between every ordered GPU pair;
/// unload and print the kernel log. `linked` and `unlinked` are GPU pairs (`gpuN` names) with
/// and without a p2p link, for the CLI checks.
pub fn transfer_script(
    size: u64,
    linked: Option<(usize, usize)>,
    unlinked: Option<(usize, usize)>,
) -> String {
    let mut cli = Vec::new();
    if let Some((a, b)) = linked {
        cli.push(format!(
            "p2pctl copy --from gpu{a} --to gpu{b} --size 4M --direct || fail p2pctl direct copy gpu{a} gpu{b}"
        ));
    }
    if let Some((a, b)) = unlinked {
        cli.push(format!(
            "p2pctl copy --from gpu{a} --to gpu{b} --size 4M || fail p2pctl staged copy gpu{a} gpu{b}"
        ));
        cli.push(format!(
            "p2pctl copy --from gpu{a} --to gpu{b} --size 4M --direct && fail p2pctl direct copy without a link succeeded"
        ));
    }
    [
        "failures=0".to_string(),
        "fail() { echo \"@@FAIL $*\"; failures=$((failures+1)); }".into(),
        "insmod /hsa_p2p.ko || fail insmod".into(),
        // The out-of-tree taint notice is about every such module; the log is checked from here.
        "dmesg -c > /dev/null".into(),
        "echo \"@@DEVNODE $(stat -c '%F %a %u:%g' /dev/hsa_p2p)\"".into(),
        format!("{GUEST_CHECKER} guest bad-input || fail bad-input"),
        cli.join("\n"),
        format!("{GUEST_CHECKER} guest republish-readers || fail republish-readers"),
        format!("{GUEST_CHECKER} guest transfers --size {size} || fail transfers"),
        "rmmod hsa_p2p || fail rmmod".into(),
        "echo '@@DMESG'; dmesg -r; echo '@@DMESG_END'".into(),
        "exit $failures".into(),
    ]
    .join("\n")
        + "\n"
}

/// Kernel log lines printed between `@@DMESG` and `@@DMESG_END` with a priority of warning or
/// worse (`<0>`..`<4>` in `dmesg -r` format, facility bits included).
pub fn warnings(console: &str) -> Vec<String> {
    let Some(log) = console::section(console, "@@DMESG", "@@DMESG_END") else {
        return vec!["the kernel log was not printed".into()];
    };
    log.lines
        .into_iter()
        .filter(|line| {
            line.strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
                .and_then(|(priority, _)| priority.parse::<u32>().ok())
                .is_some_and(|priority| priority & 7 <= 4)
        })
        .map(str::to_string)
        .collect()
}

/// The kernel log printed between `@@DMESG` and `@@DMESG_END`.
pub fn kernel_log(console: &str) -> Vec<String> {
    console::section(console, "@@DMESG", "@@DMESG_END")
        .map(|log| log.lines.into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// `@@FAIL` lines the script printed.
pub fn script_failures(console: &str) -> Vec<String> {
    console::lines(console)
        .filter_map(|l| l.strip_prefix("@@FAIL "))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_priority_4_or_worse() {
        let console = "<6>[1.0] noise before\n@@DMESG\r\n<6>[1.1] hsa_p2p: fine\r\n<4>[1.2] WARNING: bad\r\n<12>[1.3] user warning\r\n<3>[1.4] error\r\n@@DMESG_END\r\n<3> after";
        assert_eq!(
            warnings(console),
            vec![
                "<4>[1.2] WARNING: bad",
                "<12>[1.3] user warning",
                "<3>[1.4] error"
            ]
        );
        assert_eq!(warnings("no log"), vec!["the kernel log was not printed"]);
    }

    #[test]
    fn script_names_every_step() {
        let script = test_script("0000:03:00.0");
        assert!(script.contains("echo 0000:03:00.0 > /sys/bus/pci/drivers/hsa_p2p/unbind"));
        for tag in [TREE_BOUND, TREE_UNBOUND, TREE_REBOUND, TREE_RELOADED] {
            assert!(script.contains(&format!("@@TREE {tag}")));
        }
        assert_eq!(script_failures("x\n@@FAIL rmmod 3\r\n"), vec!["rmmod 3"]);
    }
}
