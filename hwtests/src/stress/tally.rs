//! What a campaign counts, and the oracle for error numbers.
//!
//! Every worker thread, the unbinder and the readers keep a [`Tally`]; they are merged into
//! the campaign's summary. A failure is counted in its class and described (the first few
//! descriptions are kept, so a report names what went wrong without growing without bound).

use std::collections::BTreeMap;

use hsa_p2p_runtime::device::abi::AbiError;
use serde::{Deserialize, Serialize};

/// How many failure descriptions a tally keeps.
const KEPT_FAILURES: usize = 20;

/// Counters of one part of the campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Operations issued (ioctls, mmaps, accesses, forks, closes).
    pub ops: u64,
    /// Operations by name.
    pub by_op: BTreeMap<String, u64>,
    /// Failed operations by errno name (each one documented by the ABI).
    pub errors: BTreeMap<String, u64>,
    /// Copies that returned success and whose destination was read back and compared.
    pub copies_verified: u64,
    /// Bytes compared against the expected content.
    pub bytes_verified: u64,
    /// A process saw data it must not see: another owner's bytes in a fresh buffer, or a
    /// freed / unbound buffer still readable through an old mapping.
    pub isolation_violations: u64,
    /// A buffer's content differs from what its owner wrote and copied.
    pub corruptions: u64,
    /// An operation failed with an errno the ABI does not document, or behaved against the ABI
    /// (a success where the ABI promises an error, a wrong answer).
    pub contract_violations: u64,
    /// Unbind/rebind cycles completed.
    pub unbinds: u64,
    /// Topology snapshots accepted by the `generation_id` protocol and checked.
    pub topology_reads: u64,
    /// Reads that failed other than by "kept changing" (a tree missing or torn while the
    /// module is loaded).
    pub torn_reads: u64,
    /// Operations run with fault injection armed for the calling task.
    pub fault_armed_ops: u64,
    /// Asynchronous copies submitted (`COPY_SUBMIT` succeeded).
    pub async_submitted: u64,
    /// Asynchronous copies reaped with `COPY_WAIT` (whatever their status).
    pub async_reaped: u64,
    /// Asynchronous copies still in flight when their file was closed (cancelled or completed
    /// by the module; their eventfd must be signalled all the same).
    pub async_closed_in_flight: u64,
    /// Eventfd signals counted, each for an asynchronous copy that ended.
    pub eventfd_signals: u64,
    /// Descriptions of the first failures.
    pub failures: Vec<String>,
}

/// The class of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// See [`Tally::isolation_violations`].
    Isolation,
    /// See [`Tally::corruptions`].
    Corruption,
    /// See [`Tally::contract_violations`].
    Contract,
    /// See [`Tally::torn_reads`].
    TornRead,
}

impl Tally {
    /// Counts one operation named `op`.
    pub fn op(&mut self, op: &str) {
        self.ops += 1;
        *self.by_op.entry(op.to_owned()).or_default() += 1;
    }

    /// Counts an error: documented errnos by name, anything else as a contract violation.
    pub fn error(&mut self, op: &str, errno: i32) {
        match AbiError::from_errno(errno) {
            Some(error) => *self.errors.entry(error.name().to_owned()).or_default() += 1,
            None => self.fail(
                Failure::Contract,
                format!("{op}: undocumented errno {errno}"),
            ),
        }
    }

    /// Records a failure.
    pub fn fail(&mut self, class: Failure, what: String) {
        let counter = match class {
            Failure::Isolation => &mut self.isolation_violations,
            Failure::Corruption => &mut self.corruptions,
            Failure::Contract => &mut self.contract_violations,
            Failure::TornRead => &mut self.torn_reads,
        };
        *counter += 1;
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(format!("{class:?}: {what}"));
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: Tally) {
        self.ops += other.ops;
        for (name, count) in other.by_op {
            *self.by_op.entry(name).or_default() += count;
        }
        for (name, count) in other.errors {
            *self.errors.entry(name).or_default() += count;
        }
        self.copies_verified += other.copies_verified;
        self.bytes_verified += other.bytes_verified;
        self.isolation_violations += other.isolation_violations;
        self.corruptions += other.corruptions;
        self.contract_violations += other.contract_violations;
        self.unbinds += other.unbinds;
        self.topology_reads += other.topology_reads;
        self.torn_reads += other.torn_reads;
        self.fault_armed_ops += other.fault_armed_ops;
        self.async_submitted += other.async_submitted;
        self.async_reaped += other.async_reaped;
        self.async_closed_in_flight += other.async_closed_in_flight;
        self.eventfd_signals += other.eventfd_signals;
        let room = KEPT_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
    }

    /// Whether any oracle failed.
    pub fn failed(&self) -> bool {
        self.isolation_violations + self.corruptions + self.contract_violations + self.torn_reads
            > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_errnos_are_counted_by_name_and_others_fail() {
        let mut tally = Tally::default();
        tally.error("alloc", AbiError::NoVram.errno());
        tally.error("alloc", AbiError::NoVram.errno());
        assert_eq!(tally.errors.get("ENOSPC"), Some(&2));
        assert!(!tally.failed());
        tally.error("copy", 1); // EPERM is not in the ABI
        assert_eq!(tally.contract_violations, 1);
        assert!(tally.failed());
        assert!(
            tally.failures[0].contains("undocumented errno 1"),
            "{tally:?}"
        );
    }

    #[test]
    fn merging_adds_counters_and_keeps_a_bounded_failure_list() {
        let mut total = Tally::default();
        for index in 0..30 {
            let mut part = Tally::default();
            part.op("copy");
            part.copies_verified = 2;
            part.async_submitted = 3;
            part.eventfd_signals = 1;
            part.fail(Failure::Corruption, format!("buffer {index}"));
            total.merge(part);
        }
        assert_eq!(total.ops, 30);
        assert_eq!(total.by_op["copy"], 30);
        assert_eq!(total.copies_verified, 60);
        assert_eq!((total.async_submitted, total.eventfd_signals), (90, 30));
        assert_eq!(total.corruptions, 30);
        assert_eq!(total.failures.len(), KEPT_FAILURES);
        assert_eq!(total.failures[0], "Corruption: buffer 0");
    }
}
