//! Validation of the `hsa_p2p` module's tree on the VM harness's q35 machine: what the module
//! publishes there passes, a denial with the wrong reason fails.

mod common;

use common::{assert_all_pass, fixture};
use hsa_p2p_hwtests::report::Outcome;
use hsa_p2p_hwtests::{Context, Filter, ModuleState};

#[test]
fn the_published_tree_of_the_vm_machine_passes() {
    let context = Context::new(fixture("vm-mixed-three-gpus"), ModuleState::Loaded);
    let run = hsa_p2p_hwtests::run("module", &context, &Filter::new(["hsa_p2p.*"]));
    assert_eq!(run.cases.len(), 5);
    assert_all_pass("vm-mixed-three-gpus", &run.cases);
    // amdkfd's suite has nothing to look at on this machine.
    let kfd = hsa_p2p_hwtests::run("kfd", &context, &Filter::new(["kfd.*"]));
    assert!(kfd.cases.iter().all(|case| case.outcome.is_skip()));
}

#[test]
fn a_denial_with_the_wrong_reason_fails() {
    let context = Context::new(
        fixture("vm-mixed-three-gpus-wrong-denial"),
        ModuleState::Loaded,
    );
    let run = hsa_p2p_hwtests::run("module", &context, &Filter::new(["hsa_p2p.p2p_denials*"]));
    assert_eq!(
        run.cases[0].outcome,
        Outcome::Fail(vec![
            "node 3 (0000:05:00.0) -> node 1 (0000:03:00.0): p2p_denials says small BAR, the \
             gate says chipset"
                .into()
        ])
    );
}

#[test]
fn a_loaded_module_without_its_tree_fails_instead_of_skipping() {
    let context = Context::new(fixture("mi210-pair"), ModuleState::Loaded);
    let run = hsa_p2p_hwtests::run("module", &context, &Filter::new(["hsa_p2p.tree*"]));
    assert!(
        run.cases[0].outcome.is_failure(),
        "{:?}",
        run.cases[0].outcome
    );
}
