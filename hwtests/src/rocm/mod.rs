//! The ROCm user space of a runner: the tools it has ([`tools`]), running them ([`collect`]),
//! reading their outputs ([`parse`]), comparing what they say per ordered GPU pair with
//! amdkfd's topology and the prediction ([`peers`]), and recordings of all of it that replay
//! offline ([`recording`], [`snapshot`]).

pub mod collect;
pub mod parse;
pub mod peers;
pub mod recording;
pub mod snapshot;
pub mod tools;

use std::path::PathBuf;

/// Where the `rocm` suite's tool outputs come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RocmSource {
    /// The tools of the machine under test, run now.
    Machine,
    /// A recording (`hwtests --replay DIR`): its outputs, and its facts as the root.
    Replay(PathBuf),
}

/// Default fraction of a link's `max_bandwidth` a peer copy must reach.
pub const DEFAULT_BANDWIDTH_FRACTION: f64 = 0.5;
