//! Slab fault injection (the kernel's failslab, `CONFIG_FAILSLAB`) for the campaign.
//!
//! Injection is armed per task (`task-filter`): only the system calls a worker or the unbinder
//! chooses to arm, by writing `/proc/thread-self/make-it-fail`, see allocation failures, so the
//! rest of the machine (and the campaign's own bookkeeping) keeps working. The number of
//! failures the kernel injected is read back from failslab's `times` counter, which it
//! decrements on every injected failure.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `times` at the start: large enough never to run out during a campaign.
const TIMES: i64 = 1_000_000;

/// Failslab, configured for the campaign; restored to off on drop.
#[derive(Debug)]
pub struct Failslab {
    dir: PathBuf,
}

impl Failslab {
    /// Configures failslab under `debugfs` to fail `percent`% of the armed tasks' slab
    /// allocations (sleeping ones included). `None` when the kernel has no failslab.
    pub fn setup(debugfs: &Path, percent: u32) -> io::Result<Option<Self>> {
        let dir = debugfs.join("failslab");
        if !dir.is_dir() {
            return Ok(None);
        }
        let failslab = Failslab { dir };
        for (file, value) in [
            ("task-filter", "Y".to_owned()),
            ("ignore-gfp-wait", "N".to_owned()),
            ("cache-filter", "N".to_owned()),
            ("verbose", "0".to_owned()),
            ("space", "0".to_owned()),
            ("interval", "1".to_owned()),
            ("times", TIMES.to_string()),
            ("probability", percent.to_string()),
        ] {
            failslab.set(file, &value)?;
        }
        Ok(Some(failslab))
    }

    fn set(&self, file: &str, value: &str) -> io::Result<()> {
        let path = self.dir.join(file);
        fs::write(&path, value)
            .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))
    }

    /// Failures injected so far.
    pub fn injected(&self) -> io::Result<u64> {
        let path = self.dir.join("times");
        let left: i64 = fs::read_to_string(&path)?
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("{}: not a number", path.display())))?;
        Ok(u64::try_from(TIMES - left).unwrap_or(0))
    }
}

impl Drop for Failslab {
    fn drop(&mut self) {
        let _ = self.set("probability", "0");
    }
}

/// This thread's switch of fault injection (`/proc/thread-self/make-it-fail`); does nothing on
/// a kernel without fault injection (the campaign then arms nothing and says so).
#[derive(Debug)]
pub struct FaultArm {
    switch: Option<File>,
}

impl FaultArm {
    /// The calling thread's switch. Must be used from that thread only.
    pub fn for_this_thread() -> Self {
        FaultArm {
            switch: OpenOptions::new()
                .write(true)
                .open("/proc/thread-self/make-it-fail")
                .ok(),
        }
    }

    /// Whether injection can be armed on this kernel.
    pub fn available(&self) -> bool {
        self.switch.is_some()
    }

    /// Allocation failures may now be injected into this thread's system calls.
    pub fn arm(&self) {
        self.write(b"1");
    }

    /// No more injected failures for this thread.
    pub fn disarm(&self) {
        self.write(b"0");
    }

    fn write(&self, value: &[u8]) {
        if let Some(switch) = &self.switch {
            // A failed write leaves the switch as it was; the campaign counts injected
            // failures from the kernel's own counter, not from its requests.
            let _ = switch.write_at(value, 0);
        }
    }
}
