//! Whether an address of a device mapping still shows memory, without dying of the SIGBUS that
//! a revoked mapping raises.
//!
//! The process-wide SIGBUS handler replaces the faulting page with an anonymous page (so the
//! load that faulted completes when it is retried) and counts the fault; [`shows_memory`]
//! compares the count around one volatile load. Only SIGBUS raised by a page fault of this
//! process reaches it; the tests probe from one thread at a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

static FAULTS: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an `SA_SIGINFO` handler.
    let address = unsafe { (*info).si_addr() } as usize;
    let page = address & !(page_size() - 1);
    // SAFETY: replaces the one page that faulted (part of a device mapping the test owns and
    // unmaps later) with anonymous memory; `mmap` is async-signal-safe.
    unsafe {
        libc::mmap(
            page as *mut libc::c_void,
            page_size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    FAULTS.fetch_add(1, Ordering::SeqCst);
}

fn page_size() -> usize {
    4096
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: an all-zero `sigaction` is a valid starting point; the handler is an
        // `extern "C"` function of the `SA_SIGINFO` signature.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            action.sa_sigaction = handler as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}

/// Whether reading `address` (inside a live mapping of this process) returns data rather than
/// raising SIGBUS. After a SIGBUS the page is anonymous memory: the mapping is spent.
///
/// # Safety
///
/// `address` must lie in a mapping of this process that nothing else uses concurrently.
pub unsafe fn shows_memory(address: *const u8) -> bool {
    install();
    let before = FAULTS.load(Ordering::SeqCst);
    // SAFETY: guaranteed by the caller; a SIGBUS is absorbed by the handler.
    unsafe { std::ptr::read_volatile(address) };
    FAULTS.load(Ordering::SeqCst) == before
}
