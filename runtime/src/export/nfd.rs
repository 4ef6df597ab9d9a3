//! `p2pctl export nfd`: a node-feature-discovery local feature file (`features.d`): one
//! `name=value` line per label, `#` comments. Names without a namespace get NFD's
//! `feature.node.kubernetes.io/` prefix; names and values follow Kubernetes' label syntax.

use std::collections::BTreeSet;

use super::groups::p2p_groups;
use crate::peers::peer_pair;
use crate::views::{pair_class, ViewInput};

/// The prefix of every label name (NFD adds its namespace in front).
pub const NFD_PREFIX: &str = "hsa-p2p.";

/// The feature file for the GPUs of `input`.
pub fn nfd_features(input: &ViewInput<'_>, source: &str) -> String {
    let topology = input.topology;
    let gpus = &input.gpus;
    let groups = p2p_groups(topology, gpus);
    let largest = groups.iter().map(Vec::len).max().unwrap_or(0);
    let all = gpus.len() >= 2 && groups.len() == 1;
    let mut link_types = BTreeSet::new();
    let mut classes = BTreeSet::new();
    let mut pairs = 0;
    for &a in gpus {
        for &b in gpus.iter().filter(|&&b| b != a) {
            let pair = peer_pair(topology, a, b);
            if let (true, Some((_, link))) = (pair.has_access(), pair.link) {
                pairs += 1;
                link_types.insert(link.link_type.name().to_string());
                if let Some(class) = pair_class(input, a, b) {
                    classes.insert(class.to_string());
                }
            }
        }
    }
    let join = |set: BTreeSet<String>| {
        if set.is_empty() {
            "none".to_string()
        } else {
            set.into_iter().collect::<Vec<_>>().join("_")
        }
    };
    let labels = [
        ("gpu-count", gpus.len().to_string()),
        ("p2p-pairs", pairs.to_string()),
        ("p2p-groups", groups.len().to_string()),
        ("p2p-group-size", largest.to_string()),
        ("p2p-all", all.to_string()),
        ("p2p-link-types", join(link_types)),
        ("p2p-path-classes", join(classes)),
    ];
    let mut out = format!(
        "# node-feature-discovery local features of {source}, written by p2pctl export nfd.\n\
         # p2p-groups: sets of GPUs that reach each other both ways (p2p-group-size: the \
         largest).\n"
    );
    for (name, value) in labels {
        out += &format!("{NFD_PREFIX}{name}={value}\n");
    }
    out
}
