//! The unbinder: GPUs leave and come back through the driver's sysfs `unbind`/`bind` files
//! while the workers use them, some binds with fault injection armed.
//!
//! After every cycle the published topology must list exactly the GPUs the driver has bound:
//! a probe that failed (under fault injection) must leave no phantom GPU behind.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hsa_p2p_runtime::device::transfer;
use hsa_p2p_runtime::sysfs::read_topology;

use super::failslab::FaultArm;
use super::tally::{Failure, Tally};
use crate::guest::pci_bind;

/// How often a failed bind is retried without fault injection.
const REBIND_ATTEMPTS: u32 = 5;

/// What the unbinder does.
#[derive(Clone, Debug)]
pub struct UnbindPlan {
    /// Seed of its choices.
    pub seed: u64,
    /// The driver's sysfs directory (`/sys/bus/pci/drivers/hsa_p2p`).
    pub driver: PathBuf,
    /// The module's topology directory.
    pub topology: PathBuf,
    /// Cycles to complete at least, even after the workers are done.
    pub min_cycles: u64,
    /// Percent of binds made with fault injection armed.
    pub fault_percent: u32,
    /// Time after which it stops even below `min_cycles` (and says so).
    pub deadline: Duration,
}

/// Runs until `workers_done` is set and `min_cycles` are complete (or the deadline passed).
pub fn run(plan: &UnbindPlan, workers_done: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let faults = FaultArm::for_this_thread();
    let devices = pci_bind::bound(&plan.driver);
    let started = Instant::now();
    if devices.is_empty() {
        tally.fail(
            Failure::Contract,
            format!("{}: no bound GPU to unbind", plan.driver.display()),
        );
        return tally;
    }
    while !(workers_done.load(Ordering::Relaxed) && tally.unbinds >= plan.min_cycles) {
        if started.elapsed() > plan.deadline {
            tally.fail(
                Failure::Contract,
                format!(
                    "only {} unbind/rebind cycles in {:?}",
                    tally.unbinds, plan.deadline
                ),
            );
            break;
        }
        let device = &devices[rng.usize(0..devices.len())];
        tally.op("unbind");
        if let Err(error) = pci_bind::unbind(&plan.driver, device) {
            tally.fail(Failure::Contract, error);
            break;
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..10)));
        if !rebind(plan, device, &faults, &mut rng, &mut tally) {
            break;
        }
        tally.unbinds += 1;
        check_published(plan, &mut tally);
        std::thread::sleep(Duration::from_millis(rng.u64(0..20)));
    }
    tally
}

/// Binds `device` again, maybe under fault injection first; false when it cannot be bound.
fn rebind(
    plan: &UnbindPlan,
    device: &str,
    faults: &FaultArm,
    rng: &mut fastrand::Rng,
    tally: &mut Tally,
) -> bool {
    if faults.available() && rng.u32(0..100) < plan.fault_percent {
        tally.op("bind_with_faults");
        tally.fault_armed_ops += 1;
        faults.arm();
        // The errno matters here (a failed probe must fail with a documented one), so this
        // write is made directly rather than through `pci_bind::bind`.
        let result = std::fs::write(plan.driver.join("bind"), device);
        faults.disarm();
        match result {
            Ok(()) => return true,
            Err(error) => match error.raw_os_error() {
                Some(errno) => tally.error("bind with faults", errno),
                None => tally.fail(Failure::Contract, format!("bind {device}: {error}")),
            },
        }
        // A failed probe must leave nothing behind: the topology lists the GPUs still bound.
        check_published(plan, tally);
    }
    for _ in 0..REBIND_ATTEMPTS {
        tally.op("bind");
        match pci_bind::bind(&plan.driver, device) {
            Ok(()) => return true,
            Err(error) => tally.fail(Failure::Contract, error),
        }
    }
    false
}

/// The published topology lists as many GPUs as the driver has bound.
fn check_published(plan: &UnbindPlan, tally: &mut Tally) {
    let bound = pci_bind::bound(&plan.driver).len();
    match read_topology(&plan.topology) {
        Ok(topology) => {
            let published = transfer::gpus(&topology).len();
            if published != bound {
                tally.fail(
                    Failure::Contract,
                    format!("topology lists {published} GPUs, the driver has {bound} bound"),
                );
            }
        }
        Err(error) => tally.fail(Failure::TornRead, format!("after a bind: {error}")),
    }
}
