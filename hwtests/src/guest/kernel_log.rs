//! The kernel log's reports of trouble (warnings, bugs, oopses, checker splats), counted so
//! that a test can tell whether it caused one.

/// Markers of a report (as the kernel prints them at the start of one).
const REPORT_MARKERS: &[&str] = &[
    "------------[ cut here ]------------",
    "BUG:",
    "Oops:",
    "WARNING:",
    "general protection fault",
    "KASAN:",
    "DMA-API:",
];

/// The kernel log (the whole ring buffer), `None` when it cannot be read.
pub fn read() -> Option<String> {
    const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
    const SYSLOG_ACTION_SIZE_BUFFER: libc::c_int = 10;
    // SAFETY: a size query takes no buffer.
    let size = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
    let mut buffer = vec![0u8; usize::try_from(size).ok()?.max(1 << 16)];
    let len = buffer.len() as libc::c_int;
    // SAFETY: `buffer` is writable for `len` bytes.
    let read = unsafe { libc::klogctl(SYSLOG_ACTION_READ_ALL, buffer.as_mut_ptr().cast(), len) };
    buffer.truncate(usize::try_from(read).ok()?);
    Some(String::from_utf8_lossy(&buffer).into_owned())
}

/// The report lines of `log`.
pub fn reports(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| REPORT_MARKERS.iter().any(|marker| line.contains(marker)))
        .map(str::to_string)
        .collect()
}

/// The reports that appeared since `before` (a log read earlier), `None` when the log cannot
/// be read now; the ring buffer only grows at its end until it wraps, so the new reports are
/// those past the old count.
pub fn new_reports(before: &str) -> Option<Vec<String>> {
    let old = reports(before).len();
    let mut now = reports(&read()?);
    Some(now.split_off(old.min(now.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_found_by_their_markers() {
        let log = "[ 1.0] hsa_p2p: bound\n[ 2.0] ------------[ cut here ]------------\n\
                   [ 2.0] WARNING: CPU: 0 PID: 1 at drivers/pci/p2pdma.c:1 x\n[ 3.0] ok\n";
        assert_eq!(reports(log).len(), 2);
        assert!(reports("[ 1.0] all fine\n").is_empty());
    }
}
