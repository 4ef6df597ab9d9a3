// SPDX-License-Identifier: GPL-2.0

//! Fault points for tests of the failure paths no kernel fault injection reaches on every
//! kernel: `/sys/kernel/debug/hsa_p2p/fail_publish` (root only, debugfs) holds how many of the
//! next topology publications after a bind fail with `ENOMEM` (0: none, the default). Writing
//! `1` and binding a GPU makes its probe fail after it joined the registry.

use core::fmt;

use kernel::debugfs::{Dir, File, Reader};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::uaccess::UserSliceReader;

/// Publications still to fail.
static FAIL_PUBLISH: Atomic<u32> = Atomic::new(0);

/// Whether this publication is to fail (counts it).
pub(crate) fn publish_fails() -> bool {
    let mut left = FAIL_PUBLISH.load(Relaxed);
    while left > 0 {
        match FAIL_PUBLISH.cmpxchg(left, left - 1, Relaxed) {
            Ok(_) => return true,
            Err(now) => left = now,
        }
    }
    false
}

/// The debugfs file's view of [`FAIL_PUBLISH`].
struct FailPublish;

impl fmt::Debug for FailPublish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", FAIL_PUBLISH.load(Relaxed))
    }
}

impl Reader for FailPublish {
    fn read_from_slice(&self, reader: &mut UserSliceReader) -> Result {
        FAIL_PUBLISH.read_from_slice(reader)
    }
}

/// The debugfs directory with the fault points (removed on drop).
#[pin_data]
pub(crate) struct FaultPoints {
    #[pin]
    _fail_publish: File<FailPublish>,
    _dir: Dir,
}

impl FaultPoints {
    pub(crate) fn create() -> impl PinInit<Self> {
        let dir = Dir::new(c"hsa_p2p");
        pin_init!(Self {
            _fail_publish <- dir.read_write_file(c"fail_publish", FailPublish),
            _dir: dir,
        })
    }
}
