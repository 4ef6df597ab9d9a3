//! Mounting debugfs (where the module's fault points live) when the machine has not.

use std::ffi::CString;
use std::path::Path;

/// Mounts debugfs at `sys/kernel/debug` below `root`; a failure (not root, already mounted,
/// no debugfs) leaves things as they are: the caller looks for what it needs afterwards.
pub fn mount(root: &Path) {
    let Some(target) = root
        .join("sys/kernel/debug")
        .to_str()
        .and_then(|path| CString::new(path).ok())
    else {
        return;
    };
    // SAFETY: all arguments are NUL-terminated strings that outlive the call; no data.
    unsafe {
        libc::mount(
            c"debugfs".as_ptr(),
            target.as_ptr(),
            c"debugfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
}
