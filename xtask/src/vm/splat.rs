//! Reports of the kernel's checkers ("splats") on a guest's console: KASAN, KFENCE, UBSAN,
//! lockdep, `WARN`, `BUG`, Oops, DMA-API debug, debugobjects, list and refcount checks, sysfs
//! name clashes, and kmemleak's list after an explicit scan.
//!
//! A splat starts at its marker line (or at the `[ cut here ]` line in front of a `WARN`) and
//! ends where that kind of report ends: the `=====` ruler of KASAN, KFENCE and UBSAN reports,
//! `---[ end trace … ]---` of a `WARN`/`BUG`/Oops, the `</TASK>` closing a bare stack dump
//! (lockdep, might_sleep, sysfs), or the last indented line of a kmemleak entry. The markers,
//! how each kind ends and the printk prefixes are hwtests' `guest::kernel_report`, the guest's
//! own check of its kernel log shares them.

use std::fmt;

use hsa_p2p_hwtests::guest::kernel_report::{marker, message, Marker, ReportEnd, GENERIC_WARNING};

/// Longest splat kept; a report that long is cut (its start is what matters).
const MAX_LINES: usize = 200;
/// How far after a `</TASK>` a `WARN`'s `---[ end trace` may come (lockdep's irq event
/// stamp lines sit in between).
const END_TRACE_LOOKAHEAD: usize = 8;

/// One checker report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splat {
    /// Which checker: `KASAN`, `lockdep`, `WARNING` ...
    pub kind: &'static str,
    /// The report's lines as printed, from the marker to the end of the trace.
    pub lines: Vec<String>,
}

impl Splat {
    /// The line that names the problem (the marker, or the first recognised line after a
    /// `[ cut here ]`).
    pub fn headline(&self) -> &str {
        self.lines
            .iter()
            .map(|line| message(line))
            .find(|line| classify(line).is_some_and(|kind| kind != GENERIC_WARNING))
            .unwrap_or_else(|| message(&self.lines[0]))
    }
}

impl Splat {
    /// Why this is a known report of the kernel's own code, not about the module; `None` for
    /// every other report.
    pub fn known_kernel_report(&self) -> Option<&'static str> {
        if self.lines.iter().any(|line| line.contains("hsa_p2p")) {
            return None;
        }
        KNOWN_KERNEL_REPORTS
            .iter()
            .find(|(_, texts)| {
                texts
                    .iter()
                    .all(|text| self.lines.iter().any(|line| line.contains(text)))
            })
            .map(|(why, _)| *why)
    }
}

impl fmt::Display for Splat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} splat: {}", self.kind, self.headline())?;
        for line in &self.lines {
            writeln!(f, "  | {line}")?;
        }
        Ok(())
    }
}

/// Reports of the kernel's own code that our tests provoke but that are not about the module:
/// (why, texts every line of which the report must contain). A report that names the module
/// (`hsa_p2p`) is never one of them.
const KNOWN_KERNEL_REPORTS: &[(&str, &[&str])] = &[(
    // 7.3's pciehp drops and retakes its reset_lock (read) around each device's removal while
    // holding pci_rescan_remove_lock (pciehp_unconfigure_device), after taking them in the
    // other order: lockdep reports it at the first PCIe hot-unplug, whatever the driver.
    "pciehp's reset_lock around pci_rescan_remove_lock (Linux 7.3, any PCIe hot-unplug)",
    &[
        "WARNING: possible circular locking dependency detected",
        "(&ctrl->reset_lock)",
        "(pci_rescan_remove_lock)",
        "pciehp_unconfigure_device+",
    ],
)];

fn classify(message: &str) -> Option<&'static str> {
    marker(message).map(|marker| marker.kind)
}

fn is_ruler(message: &str) -> bool {
    let trimmed = message.trim();
    trimmed.len() >= 20 && trimmed.bytes().all(|b| b == b'=')
}

fn is_end_trace(message: &str) -> bool {
    message.contains("---[ end trace")
}

/// Index of the last line of the splat starting at `lines[start]`.
fn splat_end(lines: &[&str], start: usize, end: ReportEnd) -> usize {
    let last = (start + MAX_LINES - 1).min(lines.len() - 1);
    if end == ReportEnd::Line {
        return start;
    }
    for index in start + 1..=last {
        let line = message(lines[index]);
        match end {
            ReportEnd::Ruler if is_ruler(line) => return index,
            ReportEnd::Trace if is_end_trace(line) => return index,
            ReportEnd::Trace if line.trim() == "</TASK>" => {
                let ahead = (index + END_TRACE_LOOKAHEAD).min(lines.len() - 1);
                return (index + 1..=ahead)
                    .find(|&i| is_end_trace(message(lines[i])))
                    .unwrap_or(index);
            }
            ReportEnd::Dedent if !line.starts_with(char::is_whitespace) => return index - 1,
            _ => {}
        }
    }
    last
}

/// Every splat on `console`, in order; a report printed twice (live on the console and again
/// by `dmesg`) is kept once.
pub fn find(console: &str) -> Vec<Splat> {
    let lines: Vec<&str> = console.lines().collect();
    let mut splats: Vec<Splat> = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let Some(&Marker { mut kind, end, .. }) = marker(message(lines[index])) else {
            index += 1;
            continue;
        };
        let last = splat_end(&lines, index, end);
        let body = &lines[index..=last];
        if kind == GENERIC_WARNING {
            // A WARN's message line (after `[ cut here ]`, or after the `WARNING:` line in
            // older kernels) names the checker that raised it.
            kind = body[1..]
                .iter()
                .find_map(|line| classify(message(line)).filter(|&k| k != GENERIC_WARNING))
                .unwrap_or(GENERIC_WARNING);
        }
        let splat = Splat {
            kind,
            lines: body.iter().map(|line| line.to_string()).collect(),
        };
        let text = |s: &Splat| {
            s.lines
                .iter()
                .map(|l| message(l).to_owned())
                .collect::<Vec<_>>()
        };
        if !splats.iter().any(|seen| text(seen) == text(&splat)) {
            splats.push(splat);
        }
        index = last + 1;
    }
    splats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_known_pciehp_report_is_known() {
        let pciehp = find(include_str!("splat_fixtures/lockdep_pciehp_reset_lock.txt"));
        assert_eq!(pciehp.len(), 1);
        assert_eq!(pciehp[0].kind, "lockdep");
        assert!(pciehp[0].known_kernel_report().is_some());
        let other = find(include_str!("splat_fixtures/lockdep_circular.txt"));
        assert!(other[0].known_kernel_report().is_none());
        let mut naming_the_module = pciehp[0].clone();
        naming_the_module
            .lines
            .push("[   97.3] hsa_p2p_unbind+0x1/0x2 [hsa_p2p]".into());
        assert!(naming_the_module.known_kernel_report().is_none());
    }

    /// (fixture, kinds of the splats found, first line, last line of the first splat). The
    /// fixtures are real reports: KASAN, KFENCE, UBSAN, DMA-API and kmemleak as the kernel's
    /// own documentation shows them (Documentation/dev-tools/*.rst,
    /// Documentation/core-api/dma-api.rst); lockdep, refcount, list, debugobjects,
    /// might_sleep and Oops reports in the shape the 7.3 kernel prints them (syzbot-style
    /// reports, addresses and module names adapted); the sysfs clash is what today's module
    /// printed on the debug kernel.
    const CASES: &[(&str, &[&str], &str, &str)] = &[
        (
            include_str!("splat_fixtures/kasan.txt"),
            &["KASAN"],
            "BUG: KASAN: slab-out-of-bounds in kmalloc_oob_right+0xa8/0xbc [kasan_test]",
            "==================================================================",
        ),
        (
            include_str!("splat_fixtures/kfence.txt"),
            &["KFENCE"],
            "BUG: KFENCE: out-of-bounds read in test_out_of_bounds_read+0xa6/0x234",
            "==================================================================",
        ),
        (
            include_str!("splat_fixtures/ubsan.txt"),
            &["UBSAN"],
            "UBSAN: Undefined behaviour in ../include/linux/bitops.h:110:33",
            "================================================================================",
        ),
        (
            include_str!("splat_fixtures/dma_api.txt"),
            &["DMA-API"],
            "WARNING: at /data2/repos/linux-2.6-iommu/lib/dma-debug.c:448",
            "<EOI> <4>---[ end trace f6435a98e2a38c0e ]---",
        ),
        (
            include_str!("splat_fixtures/kmemleak.txt"),
            &["kmemleak"],
            "unreferenced object 0xffff89862ca702e8 (size 32):",
            "    [<000000007c873fa6>] entry_SYSCALL_64_after_hwframe+0x44/0xa9",
        ),
        (
            include_str!("splat_fixtures/lockdep_circular.txt"),
            &["lockdep"],
            "[   41.305922] WARNING: possible circular locking dependency detected",
            "[   41.334649]  </TASK>",
        ),
        (
            include_str!("splat_fixtures/refcount_underflow.txt"),
            &["refcount"],
            "[  118.403188] ------------[ cut here ]------------",
            "[  118.417101] ---[ end trace 0000000000000000 ]---",
        ),
        (
            include_str!("splat_fixtures/list_del_corruption.txt"),
            &["list corruption"],
            "[   77.120401] ------------[ cut here ]------------",
            "[   77.125976] ---[ end trace 0000000000000000 ]---",
        ),
        (
            include_str!("splat_fixtures/odebug.txt"),
            &["debugobjects"],
            "[   90.511002] ------------[ cut here ]------------",
            "[   90.514950] ---[ end trace 0000000000000000 ]---",
        ),
        (
            include_str!("splat_fixtures/sleeping_in_atomic.txt"),
            &["BUG"],
            "[   64.300112] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580",
            // might_sleep prints no `---[ end trace`: the next kernel line is not part of it.
            "[   64.305843]  </TASK>",
        ),
        (
            include_str!("splat_fixtures/general_protection_fault.txt"),
            &["Oops", "panic"],
            "[   55.002118] Oops: general protection fault, probably for non-canonical address 0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN NOPTI",
            "[   55.007687] ---[ end trace 0000000000000000 ]---",
        ),
        (
            include_str!("splat_fixtures/sysfs_duplicate.txt"),
            &["kobject", "kobject"],
            "<4>[   13.488481] sysfs: cannot create duplicate filename '/kernel/hsa_p2p'",
            "<4>[   13.492281]  </TASK>",
        ),
        (include_str!("splat_fixtures/clean_debug_boot.txt"), &[], "", ""),
    ];

    #[test]
    fn finds_each_real_report_from_marker_to_end_of_trace() {
        for (console, kinds, first, last) in CASES {
            let splats = find(console);
            let found: Vec<&str> = splats.iter().map(|s| s.kind).collect();
            assert_eq!(&found, kinds, "in fixture starting {:?}", &console[..60]);
            if let Some(splat) = splats.first() {
                assert_eq!(splat.lines.first().unwrap(), first);
                assert_eq!(splat.lines.last().unwrap(), last);
            }
        }
    }

    #[test]
    fn headline_names_the_checker_after_cut_here() {
        let splats = find(include_str!("splat_fixtures/refcount_underflow.txt"));
        assert_eq!(
            splats[0].headline(),
            "refcount_t: underflow; use-after-free."
        );
        let shown = splats[0].to_string();
        assert!(shown.starts_with("refcount splat: refcount_t: underflow"));
        assert!(shown.contains("  | [  118.410331]  kobject_put+0x3d9/0x550"));
    }

    #[test]
    fn a_report_printed_again_by_dmesg_counts_once() {
        let live = include_str!("splat_fixtures/refcount_underflow.txt");
        let dmesg: String = live.lines().map(|l| format!("<4>{l}\n")).collect();
        let console = format!("{live}{dmesg}");
        assert_eq!(find(&console).len(), 1);
    }
}
