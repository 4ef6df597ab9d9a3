// SPDX-License-Identifier: GPL-2.0

//! Fault points for tests of paths no kernel fault injection reaches on every kernel, as
//! files in `/sys/kernel/debug/hsa_p2p/` (root only, debugfs; each reads back its value):
//!
//! - `fail_publish`: how many of the next topology publications after a bind fail with
//!   `ENOMEM` (0: none, the default). Writing `1` and binding a GPU makes its probe fail after
//!   it joined the registry.
//! - `delay_map_peer_ms`: how long `MAP_PEER` sleeps after it took the owner's P2PDMA provider
//!   and before it uses it (0: not at all, the default), so that a test can unbind the owner
//!   inside that window, which is otherwise a few instructions wide.
//! - `delay_zero_chunk_ms`: how long `ALLOC` sleeps after zeroing each 1 MiB chunk of a new
//!   buffer (0: not at all, the default), so that a test can kill it part-way through zeroing
//!   however fast the VRAM is.
//! - `delay_copy_chunk_ms`: how long a copy sleeps between two of its chunks (0: not at all,
//!   the default), so that a test can close the file or unbind a GPU while an asynchronous
//!   copy is in flight however fast the copy engines are.
//! - `next_handle`: the next buffer handle the handle counter gives out (shared by every open
//!   file), so that a test reaches the counter's wrap without 2^32 allocations.

use core::fmt;

use kernel::debugfs::{Dir, File, Reader};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::uaccess::UserSliceReader;

/// Publications still to fail.
static FAIL_PUBLISH: Atomic<u32> = Atomic::new(0);

/// Milliseconds `MAP_PEER` holds the owner's provider before using it.
static DELAY_MAP_PEER_MS: Atomic<u32> = Atomic::new(0);

/// Milliseconds `ALLOC` sleeps after zeroing each chunk.
static DELAY_ZERO_CHUNK_MS: Atomic<u32> = Atomic::new(0);

/// Milliseconds a copy sleeps between chunks.
static DELAY_COPY_CHUNK_MS: Atomic<u32> = Atomic::new(0);

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

/// How long `MAP_PEER` is to sleep between taking the owner's provider and using it.
pub(crate) fn map_peer_delay_ms() -> u32 {
    DELAY_MAP_PEER_MS.load(Relaxed)
}

/// How long `ALLOC` is to sleep after zeroing a chunk.
pub(crate) fn zero_chunk_delay_ms() -> u32 {
    DELAY_ZERO_CHUNK_MS.load(Relaxed)
}

/// How long a copy is to sleep between two chunks.
pub(crate) fn copy_chunk_delay_ms() -> u32 {
    DELAY_COPY_CHUNK_MS.load(Relaxed)
}

/// A debugfs file's view of one counter: reads show it, writes set it.
struct Knob(&'static Atomic<u32>);

impl fmt::Debug for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.load(Relaxed))
    }
}

impl Reader for Knob {
    fn read_from_slice(&self, reader: &mut UserSliceReader) -> Result {
        self.0.read_from_slice(reader)
    }
}

/// The debugfs directory with the fault points (removed on drop).
#[pin_data]
pub(crate) struct FaultPoints {
    #[pin]
    _fail_publish: File<Knob>,
    #[pin]
    _delay_map_peer_ms: File<Knob>,
    #[pin]
    _delay_zero_chunk_ms: File<Knob>,
    #[pin]
    _delay_copy_chunk_ms: File<Knob>,
    #[pin]
    _next_handle: File<Knob>,
    _dir: Dir,
}

impl FaultPoints {
    pub(crate) fn create() -> impl PinInit<Self> {
        let dir = Dir::new(c"hsa_p2p");
        pin_init!(Self {
            _fail_publish <- dir.read_write_file(c"fail_publish", Knob(&FAIL_PUBLISH)),
            _delay_map_peer_ms <- dir.read_write_file(
                c"delay_map_peer_ms",
                Knob(&DELAY_MAP_PEER_MS)
            ),
            _delay_zero_chunk_ms <- dir.read_write_file(
                c"delay_zero_chunk_ms",
                Knob(&DELAY_ZERO_CHUNK_MS)
            ),
            _delay_copy_chunk_ms <- dir.read_write_file(
                c"delay_copy_chunk_ms",
                Knob(&DELAY_COPY_CHUNK_MS)
            ),
            _next_handle <- dir.read_write_file(c"next_handle", Knob(&crate::peer::NEXT_HANDLE)),
            _dir: dir,
        })
    }
}
