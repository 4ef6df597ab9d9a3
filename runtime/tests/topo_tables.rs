//! `p2pctl topo` as an administrator reads it: the node and link tables of every committed
//! predicted tree, of amdkfd's and the module's trees on the hwtests fixture machines, and of
//! a kernel before p2p_links, as snapshots.

mod common;

use common::{p2pctl, shipped_specs};

#[test]
fn topo_of_every_predicted_tree() {
    for name in shipped_specs() {
        let tree = format!("runtime/tests/fixtures/predicted/{name}");
        insta::assert_snapshot!(
            format!("topo-predicted-{name}"),
            p2pctl(&["topo", "--root", &tree])
        );
    }
}

#[test]
fn topo_of_the_fixture_machines_trees() {
    let trees = [
        ("four-gpu-intel", "sys/class/kfd/kfd/topology"),
        ("mi210-pair", "sys/class/kfd/kfd/topology"),
        ("vm-mixed-three-gpus", "sys/kernel/hsa_p2p/topology"),
        ("old-kernel", ""),
    ];
    for (machine, tree) in trees {
        let root = if tree.is_empty() {
            format!("runtime/tests/fixtures/{machine}")
        } else {
            format!("hwtests/tests/fixtures/{machine}/{tree}")
        };
        insta::assert_snapshot!(
            format!("topo-{machine}"),
            p2pctl(&["topo", "--root", &root])
        );
    }
}
