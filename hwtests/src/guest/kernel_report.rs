//! How each kind of kernel report ("splat": KASAN, KFENCE, UBSAN, lockdep, `WARN`, `BUG`, Oops,
//! DMA-API debug, debugobjects, list and refcount checks, sysfs name clashes, kmemleak) starts
//! and ends, written once for both readers of a kernel log: the guest's check that a test
//! caused no report ([`super::kernel_log`]) and the host's finder of the reports on a machine's
//! console (xtask's `vm/splat.rs`, which imports this module: xtask depends on hwtests).
//!
//! Kernel lines are matched after their printk prefixes (`<4>` of `dmesg -r` and of the
//! `syslog(2)` read, the `[   1.234567]` time), so user space printing "BUG:" in the middle of
//! a line is not a report.

/// How a kind of report ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportEnd {
    /// A line of `=` (KASAN, KFENCE, UBSAN).
    Ruler,
    /// `---[ end trace`, or a `</TASK>` not followed by one.
    Trace,
    /// The first line that is not indented (kmemleak's list).
    Dedent,
    /// The marker line alone (an error printed without a trace).
    Line,
}

/// The first line of a kind of report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// What the message starts with (after leading blanks).
    pub starts_with: &'static str,
    /// What the message also contains.
    pub contains: &'static str,
    /// Which checker: `KASAN`, `lockdep`, `WARNING` ...
    pub kind: &'static str,
    /// How the report ends.
    pub end: ReportEnd,
}

impl Marker {
    const fn new(starts_with: &'static str, contains: &'static str, kind: &'static str) -> Self {
        Self {
            starts_with,
            contains,
            kind,
            end: ReportEnd::Trace,
        }
    }

    const fn ending(self, end: ReportEnd) -> Self {
        Self { end, ..self }
    }
}

/// The kind of a `WARN` until its message names the checker that raised it.
pub const GENERIC_WARNING: &str = "WARNING";

/// Every kind of report, by its first line; the first matching row wins. A report ends at
/// `---[ end trace` (or a bare stack dump's `</TASK>`) unless its row says otherwise.
pub const MARKERS: &[Marker] = &[
    Marker::new("BUG: KASAN:", "", "KASAN").ending(ReportEnd::Ruler),
    Marker::new("BUG: KFENCE:", "", "KFENCE").ending(ReportEnd::Ruler),
    Marker::new("UBSAN:", "", "UBSAN").ending(ReportEnd::Ruler),
    Marker::new("WARNING: possible ", "lock", "lockdep"),
    Marker::new("WARNING: inconsistent lock state", "", "lockdep"),
    Marker::new("WARNING: bad unlock balance", "", "lockdep"),
    Marker::new("WARNING: held lock", "", "lockdep"),
    Marker::new("WARNING: lock held", "", "lockdep"),
    Marker::new("WARNING: suspicious RCU usage", "", "lockdep"),
    Marker::new("------------[ cut here ]------------", "", GENERIC_WARNING),
    Marker::new("", "DMA-API: ", DMA_API),
    Marker::new("ODEBUG: ", "object type:", "debugobjects"),
    Marker::new("list_add corruption", "", "list corruption"),
    Marker::new("list_del corruption", "", "list corruption"),
    Marker::new("refcount_t: ", "", "refcount"),
    Marker::new("sysfs: cannot create duplicate filename", "", "kobject"),
    Marker::new("kobject: kobject_add_internal failed", "", "kobject").ending(ReportEnd::Line),
    Marker::new("kernel BUG at", "", "BUG"),
    Marker::new("BUG: ", "", "BUG"),
    Marker::new("Oops", "", "Oops"),
    Marker::new("", "general protection fault", "Oops"),
    Marker::new("WARNING: ", "", GENERIC_WARNING),
    Marker::new("Kernel panic", "", "panic"),
    Marker::new("unreferenced object 0x", "", "kmemleak").ending(ReportEnd::Dedent),
];

/// The kind of DMA-API debug reports.
const DMA_API: &str = "DMA-API";

/// What a DMA-API line that is a report says (its start-up notices say none of it).
const DMA_API_REPORT_WORDS: &[&str] = &["device driver", "exceeded", "out of memory"];

/// A kernel log line without its printk prefixes: `<N>` (dmesg -r) and `[  time]`.
pub fn message(line: &str) -> &str {
    let mut rest = line.trim_end_matches('\r');
    if let Some(after) = rest.strip_prefix('<') {
        if let Some((level, tail)) = after.split_once('>') {
            if !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit()) {
                rest = tail;
            }
        }
    }
    if let Some(after) = rest.strip_prefix('[') {
        if let Some((time, tail)) = after.split_once(']') {
            if time.trim().bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                rest = tail.strip_prefix(' ').unwrap_or(tail);
            }
        }
    }
    rest
}

/// The marker `message` (a line without its printk prefixes, [`message`]) starts a report
/// with, `None` when it starts none.
pub fn marker(message: &str) -> Option<&'static Marker> {
    let trimmed = message.trim_start();
    MARKERS.iter().find(|marker| {
        trimmed.starts_with(marker.starts_with)
            && message.contains(marker.contains)
            && (marker.kind != DMA_API || DMA_API_REPORT_WORDS.iter().any(|w| message.contains(w)))
    })
}

/// Whether a kernel log line (printk prefixes and all) is the first line of a report.
pub fn starts_report(line: &str) -> bool {
    marker(message(line)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_printk_prefixes_only() {
        assert_eq!(message("<4>[   1.000000] WARNING: x"), "WARNING: x");
        assert_eq!(message("[   1.000000] BUG: y"), "BUG: y");
        assert_eq!(message("[not a time] BUG: z"), "[not a time] BUG: z");
        assert_eq!(message("<x>BUG: z"), "<x>BUG: z");
        assert_eq!(message("<4>plain\r"), "plain");
    }

    #[test]
    fn lines_are_classified_by_their_first_matching_marker() {
        // (kernel log line, kind of the report it starts)
        let cases: &[(&str, Option<&str>)] = &[
            (
                "<3>[ 1.0] BUG: KASAN: slab-out-of-bounds in f+0x1/0x2",
                Some("KASAN"),
            ),
            (
                "[ 1.0] BUG: sleeping function called from invalid context",
                Some("BUG"),
            ),
            (
                "[ 1.0] WARNING: possible circular locking dependency detected",
                Some("lockdep"),
            ),
            (
                "[ 1.0] WARNING: CPU: 0 PID: 1 at drivers/pci/p2pdma.c:1 f",
                Some("WARNING"),
            ),
            (
                "[ 1.0] ------------[ cut here ]------------",
                Some("WARNING"),
            ),
            (
                "[ 1.0] refcount_t: underflow; use-after-free.",
                Some("refcount"),
            ),
            (
                "[ 1.0] Oops: general protection fault, probably for 0x3",
                Some("Oops"),
            ),
            (
                "[ 1.0] kobject: kobject_add_internal failed for x",
                Some("kobject"),
            ),
            (
                "unreferenced object 0xffff89862ca702e8 (size 32):",
                Some("kmemleak"),
            ),
            (
                "[ 1.0] pci 0000:00:01.0: DMA-API: device driver frees DMA memory",
                Some("DMA-API"),
            ),
            // Not reports: DMA-API's start-up notice, user space printing a marker mid-line.
            ("[ 0.5] DMA-API: preallocated 65536 debug entries", None),
            ("[ 2.0] hwtests: expected no BUG: here", None),
            ("[ 2.0] hsa_p2p: bound", None),
        ];
        for (line, kind) in cases {
            assert_eq!(marker(message(line)).map(|m| m.kind), *kind, "{line}");
            assert_eq!(starts_report(line), kind.is_some(), "{line}");
        }
        let lockdep = marker("WARNING: possible circular locking dependency").unwrap();
        assert_eq!(lockdep.end, ReportEnd::Trace);
        assert_eq!(
            marker("BUG: KFENCE: out-of-bounds").unwrap().end,
            ReportEnd::Ruler
        );
    }
}
