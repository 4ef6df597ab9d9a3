//! P2P groups: the sets of GPUs that reach each other, both ways, through chains of peer links
//! (the connected components of the "both directions allowed" graph).

use hsa_p2p_core::topology::Topology;

use crate::peers::peer_pair;

/// The groups of `gpus` (node ids), each in `gpus` order, ordered by their first member.
pub fn p2p_groups(topology: &Topology, gpus: &[u32]) -> Vec<Vec<u32>> {
    let mutual = |a: u32, b: u32| {
        peer_pair(topology, a, b).has_access() && peer_pair(topology, b, a).has_access()
    };
    let mut group_of: Vec<Option<usize>> = vec![None; gpus.len()];
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for start in 0..gpus.len() {
        if group_of[start].is_some() {
            continue;
        }
        let index = groups.len();
        let mut members = vec![start];
        group_of[start] = Some(index);
        let mut next = 0;
        while next < members.len() {
            let current = members[next];
            next += 1;
            for other in 0..gpus.len() {
                if group_of[other].is_none() && mutual(gpus[current], gpus[other]) {
                    group_of[other] = Some(index);
                    members.push(other);
                }
            }
        }
        members.sort_unstable();
        groups.push(members.into_iter().map(|i| gpus[i]).collect());
    }
    groups
}
