//! The kernel log's reports of trouble (warnings, bugs, oopses, checker splats), counted so
//! that a test can tell whether it caused one.

use super::kernel_report::starts_report;

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

/// The lines of `log` that start a report.
pub fn reports(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| starts_report(line))
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
        let checkers = "<4>[ 5.0] refcount_t: underflow; use-after-free.\n\
                        <3>[ 6.0] UBSAN: array-index-out-of-bounds in x.c:1:2\n\
                        <4>[ 7.0] list_del corruption, ffff88802a5e4c38->next is LIST_POISON1\n\
                        unreferenced object 0xffff89862ca702e8 (size 32):\n";
        assert_eq!(reports(checkers).len(), 4);
    }

    #[test]
    fn start_up_notices_and_user_space_are_not_reports() {
        let log = "<4>[    0.412511] DMA-API: preallocated 65536 debug entries\n\
                   <5>[    0.520113] ODEBUG: selftest passed\n\
                   <12>[    3.000000] hwtests: talking about a BUG: in its own words\n";
        assert_eq!(reports(log), Vec::<String>::new());
    }
}
