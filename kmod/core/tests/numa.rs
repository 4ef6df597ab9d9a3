//! KFD's CPU nodes come from the online NUMA nodes in id order, also when the online ids have
//! holes (issue 10, point 10). The code before issue 10 asked the platform about nodes
//! `0..count`: on a machine whose online nodes are {0, 2} it published node 0 and the offline
//! node 1 (no cores, no memory) and lost node 2; on {1, 3, 4} it published the offline node 0
//! and node 2 and lost 3 and 4.

use std::collections::BTreeMap;

use hsa_p2p_core::facts::CpuFacts;
use hsa_p2p_core::numa::{cpu_nodes, online_nodes, NumaPlatform};

/// A platform with the given online nodes (id -> cores); memory is 1 GiB per core; the
/// distance between two nodes is 10 to itself, 20 + the sum of the ids otherwise (so a row
/// or column of the wrong node shows). Offline nodes have nothing.
struct Platform {
    online: BTreeMap<u32, u32>,
}

impl Platform {
    fn new(online: &[(u32, u32)]) -> Self {
        Platform {
            online: online.iter().copied().collect(),
        }
    }
}

impl NumaPlatform for Platform {
    fn next_online_node(&self, after: Option<u32>) -> Option<u32> {
        let from = after.map_or(0, |after| after + 1);
        self.online.range(from..).next().map(|(node, _)| *node)
    }

    fn cpu_cores(&self, node: u32) -> u32 {
        self.online.get(&node).copied().unwrap_or(0)
    }

    fn memory_bytes(&self, node: u32) -> u64 {
        u64::from(self.cpu_cores(node)) << 30
    }

    fn distance(&self, from: u32, to: u32) -> u32 {
        match (
            self.online.contains_key(&from),
            self.online.contains_key(&to),
        ) {
            (true, true) if from == to => 10,
            (true, true) => 20 + from + to,
            _ => 255,
        }
    }
}

fn kfd_cpu_nodes(platform: &Platform) -> (Vec<CpuFacts>, Vec<u32>) {
    let (mut cpus, mut distances) = (Vec::new(), Vec::new());
    cpu_nodes::<_, ()>(
        platform,
        |facts| {
            cpus.push(facts);
            Ok(())
        },
        |distance| {
            distances.push(distance);
            Ok(())
        },
    )
    .unwrap();
    (cpus, distances)
}

fn cpu(cpu_cores: u32) -> CpuFacts {
    CpuFacts {
        cpu_cores,
        memory_bytes: u64::from(cpu_cores) << 30,
    }
}

/// A machine's online nodes (id, cores) and the KFD CPU nodes expected of it.
struct Case {
    online: &'static [(u32, u32)],
    cores: &'static [u32],
    distances: &'static [u32],
}

const CASES: &[Case] = &[
    Case {
        online: &[(0, 4), (1, 8)],
        cores: &[4, 8],
        distances: &[10, 21, 21, 10],
    },
    Case {
        online: &[(0, 4), (2, 8)],
        cores: &[4, 8],
        distances: &[10, 22, 22, 10],
    },
    Case {
        online: &[(1, 2), (3, 4), (4, 6)],
        cores: &[2, 4, 6],
        distances: &[10, 24, 25, 24, 10, 27, 25, 27, 10],
    },
    Case {
        online: &[(5, 16)],
        cores: &[16],
        distances: &[10],
    },
];

#[test]
fn kfd_cpu_nodes_are_the_online_nodes_in_id_order() {
    for Case {
        online,
        cores,
        distances,
    } in CASES
    {
        let platform = Platform::new(online);
        let expected: Vec<CpuFacts> = cores.iter().map(|cores| cpu(*cores)).collect();
        assert_eq!(
            kfd_cpu_nodes(&platform),
            (expected, distances.to_vec()),
            "online nodes {online:?}"
        );
    }
}

#[test]
fn online_nodes_are_listed_once_in_ascending_order() {
    let platform = Platform::new(&[(1, 2), (3, 4), (4, 6)]);
    assert_eq!(online_nodes(&platform).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(online_nodes(&Platform::new(&[])).count(), 0);
}

/// A platform whose "next" node does not advance ends the walk instead of looping.
struct Stuck;

impl NumaPlatform for Stuck {
    fn next_online_node(&self, _after: Option<u32>) -> Option<u32> {
        Some(3)
    }
    fn cpu_cores(&self, _node: u32) -> u32 {
        1
    }
    fn memory_bytes(&self, _node: u32) -> u64 {
        0
    }
    fn distance(&self, _from: u32, _to: u32) -> u32 {
        10
    }
}

#[test]
fn a_platform_that_does_not_advance_ends_the_walk() {
    assert_eq!(online_nodes(&Stuck).collect::<Vec<_>>(), [3]);
}

#[test]
fn the_first_error_stops_the_walk() {
    let platform = Platform::new(&[(0, 4), (2, 8)]);
    let mut seen = 0;
    let result = cpu_nodes(
        &platform,
        |_| {
            seen += 1;
            Err("full")
        },
        |_| Ok(()),
    );
    assert_eq!((result, seen), (Err("full"), 1));
}
