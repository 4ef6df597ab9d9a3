//! Per ordered GPU pair: the peer link amdkfd publishes, the one the rules predict from the
//! machine's PCI facts, and the comparison of both with what a ROCm tool reports.
//!
//! A pair's peer link is the p2p_link from the accessor to the owner, or for members of one
//! XGMI hive their XGMI io_link (amdkfd adds no p2p_links inside a hive). A link flagged
//! NO_PEER_TO_PEER_DMA (with ENABLED, which makes the other flags valid) is no peer link: ROCr
//! skips it.

use hsa_p2p_core::facts::PciAddress;
use hsa_p2p_core::link::{LinkFlags, LinkProperties, LinkType};
use hsa_p2p_core::topology::Topology;

/// A peer link as the checks compare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLink {
    /// PCIe or XGMI.
    pub link_type: LinkType,
    /// Weight.
    pub weight: u32,
    /// Peak bandwidth, MB/s.
    pub max_bandwidth_mbs: u32,
}

fn usable(link: &LinkProperties) -> bool {
    !(link.flags.contains(LinkFlags::ENABLED)
        && link.flags.contains(LinkFlags::NO_PEER_TO_PEER_DMA))
}

/// The peer link from GPU node `from` to GPU node `to` in `tree`.
pub fn peer_link(tree: &Topology, from: u32, to: u32) -> Option<PeerLink> {
    let to_gpu = tree.node(to).is_some_and(|node| node.is_gpu());
    tree.p2p_link(from, to)
        .or_else(|| tree.io_link(from, to).filter(|_| to_gpu))
        .filter(|link| usable(link))
        .map(|link| PeerLink {
            link_type: link.link_type,
            weight: link.weight,
            max_bandwidth_mbs: link.max_bandwidth,
        })
}

/// The GPUs of a machine with amdkfd's tree and the predicted one.
#[derive(Clone, Debug)]
pub struct Machine<'a> {
    /// amdkfd's tree.
    pub tree: &'a Topology,
    /// The tree the rules predict from the PCI facts (same node numbering).
    pub predicted: Topology,
    /// GPU node ids with their PCI addresses, in node order.
    pub gpus: Vec<(u32, PciAddress)>,
}

/// What a tool reports about one ordered pair; `None` fields it does not report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolView {
    /// Whether the pair may copy peer-to-peer.
    pub p2p: Option<bool>,
    /// Link type.
    pub link_type: Option<LinkType>,
    /// Weight (compared only for pairs with a peer link: otherwise the tools report the weight
    /// of the path through the CPUs).
    pub weight: Option<u32>,
    /// Hops: 1 means XGMI, more means through the CPUs.
    pub hops: Option<u32>,
}

/// What a tool measured for one ordered pair, GB/s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BandwidthView {
    /// Peak unidirectional peer copy.
    pub unidirectional: Option<f64>,
    /// Peak bidirectional copy, both directions together (when the tool ran it).
    pub bidirectional: Option<f64>,
    /// The staged path's throughput (source to CPU memory, then CPU memory to destination),
    /// when the tool measured both legs.
    pub staged: Option<f64>,
}

/// Problems (fail the test) and notes of a comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Disagreements.
    pub problems: Vec<String>,
    /// Remarks.
    pub notes: Vec<String>,
}

fn describe(link: Option<PeerLink>) -> String {
    match link {
        Some(link) => format!(
            "a {:?} peer link of weight {} ({} MB/s)",
            link.link_type, link.weight, link.max_bandwidth_mbs
        ),
        None => "no peer link".into(),
    }
}

/// The staged path's throughput from the two legs' bandwidths: the copy runs them in turn.
pub fn staged(to_cpu: f64, from_cpu: f64) -> Option<f64> {
    (to_cpu > 0.0 && from_cpu > 0.0).then(|| 1.0 / (1.0 / to_cpu + 1.0 / from_cpu))
}

impl Machine<'_> {
    /// `node 2 (0000:19:00.0)`.
    pub fn label(&self, node: u32) -> String {
        self.gpus.iter().find(|(id, _)| *id == node).map_or_else(
            || format!("node {node}"),
            |(_, address)| format!("node {node} ({address})"),
        )
    }

    /// Every ordered pair of distinct GPU nodes.
    pub fn pairs(&self) -> Vec<(u32, u32)> {
        let ids: Vec<u32> = self.gpus.iter().map(|(id, _)| *id).collect();
        ids.iter()
            .flat_map(|&a| ids.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
            .collect()
    }

    /// The GPU node at `address`.
    pub fn node_at(&self, address: PciAddress) -> Option<u32> {
        self.gpus
            .iter()
            .find(|(_, gpu)| *gpu == address)
            .map(|(id, _)| *id)
    }

    /// amdkfd's peer link.
    pub fn kfd(&self, from: u32, to: u32) -> Option<PeerLink> {
        peer_link(self.tree, from, to)
    }

    /// amdkfd's tree against the prediction, for one pair.
    fn against_prediction(&self, from: u32, to: u32) -> Option<String> {
        let kfd = self.kfd(from, to);
        let predicted = peer_link(&self.predicted, from, to);
        let same = match (kfd, predicted) {
            (Some(k), Some(p)) => k.link_type == p.link_type && k.weight == p.weight,
            (k, p) => k.is_none() && p.is_none(),
        };
        (!same).then(|| {
            format!(
                "{} -> {}: amdkfd has {}, the prediction from the PCI facts {}",
                self.label(from),
                self.label(to),
                describe(kfd),
                describe(predicted)
            )
        })
    }

    /// Compares `tool`'s view of every ordered pair (`view(from, to)`, `None` when the tool
    /// does not list the pair) with amdkfd's peer links and the prediction.
    pub fn compare(&self, tool: &str, view: impl Fn(u32, u32) -> Option<ToolView>) -> Verdict {
        let mut verdict = Verdict::default();
        for (from, to) in self.pairs() {
            let pair = format!("{} -> {}", self.label(from), self.label(to));
            verdict.problems.extend(self.against_prediction(from, to));
            let kfd = self.kfd(from, to);
            let Some(seen) = view(from, to) else {
                verdict
                    .problems
                    .push(format!("{pair}: {tool} does not list this pair"));
                continue;
            };
            let mut wrong = |what: String| {
                verdict.problems.push(format!(
                    "{pair}: {tool} reports {what}, amdkfd has {}",
                    describe(kfd)
                ))
            };
            if let Some(p2p) = seen.p2p.filter(|p2p| *p2p != kfd.is_some()) {
                wrong(if p2p { "peer access" } else { "no peer access" }.into());
            }
            match kfd {
                Some(link) => {
                    if let Some(link_type) = seen.link_type.filter(|t| *t != link.link_type) {
                        wrong(format!("link type {link_type:?}"));
                    }
                    if let Some(weight) = seen.weight.filter(|w| *w != link.weight) {
                        wrong(format!("weight {weight}"));
                    }
                    let xgmi = link.link_type == LinkType::Xgmi;
                    if let Some(hops) = seen.hops.filter(|hops| (*hops == 1) != xgmi) {
                        wrong(format!("{hops} hops"));
                    }
                }
                None => {
                    if seen.link_type == Some(LinkType::Xgmi) {
                        wrong("an XGMI link".into());
                    }
                    if seen.hops == Some(1) {
                        wrong("1 hop (a direct XGMI link)".into());
                    }
                }
            }
        }
        let links = self
            .pairs()
            .into_iter()
            .filter(|(from, to)| self.kfd(*from, *to).is_some())
            .count();
        verdict.notes.push(format!(
            "{} GPUs, {} ordered pairs, {links} with a peer link",
            self.gpus.len(),
            self.pairs().len()
        ));
        verdict
    }

    /// Checks `tool`'s copy bandwidths: every pair with a peer link copies at `fraction` of the
    /// link's max_bandwidth or more (bidirectional: of twice the slower direction's) and faster
    /// than the staged path; no pair without one shows a peer copy.
    pub fn check_bandwidth(
        &self,
        tool: &str,
        fraction: f64,
        view: impl Fn(u32, u32) -> Option<BandwidthView>,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        for (from, to) in self.pairs() {
            let pair = format!("{} -> {}", self.label(from), self.label(to));
            let Some(seen) = view(from, to) else {
                verdict
                    .problems
                    .push(format!("{pair}: {tool} does not list this pair"));
                continue;
            };
            let Some(link) = self.kfd(from, to) else {
                for (kind, value) in [
                    ("unidirectional", seen.unidirectional),
                    ("bidirectional", seen.bidirectional),
                ] {
                    if let Some(value) = value {
                        verdict.problems.push(format!(
                            "{pair}: {tool} measured a {kind} peer copy ({value:.3} GB/s) \
                             although amdkfd has no peer link: reported as P2P"
                        ));
                    }
                }
                continue;
            };
            let max = f64::from(link.max_bandwidth_mbs) / 1000.0;
            let Some(measured) = seen.unidirectional else {
                verdict.problems.push(format!(
                    "{pair}: {tool} measured no peer copy although amdkfd has {}",
                    describe(Some(link))
                ));
                continue;
            };
            let share = measured / max;
            if share < fraction {
                verdict.problems.push(format!(
                    "{pair}: {measured:.3} GB/s is {:.0}% of the link's max_bandwidth \
                     ({} MB/s), below the {:.0}% required",
                    share * 100.0,
                    link.max_bandwidth_mbs,
                    fraction * 100.0
                ));
            }
            let mut note = format!(
                "{pair}: {measured:.3} GB/s, {:.0}% of {} MB/s",
                share * 100.0,
                link.max_bandwidth_mbs
            );
            if let Some(staged) = seen.staged {
                note.push_str(&format!(", staged path {staged:.3} GB/s"));
                if measured <= staged {
                    verdict.problems.push(format!(
                        "{pair}: the peer copy ({measured:.3} GB/s) is not faster than the \
                         staged path through CPU memory ({staged:.3} GB/s)"
                    ));
                }
            }
            if let Some(both) = seen.bidirectional {
                let back = self.kfd(to, from).map_or(link.max_bandwidth_mbs, |back| {
                    back.max_bandwidth_mbs.min(link.max_bandwidth_mbs)
                });
                let max_both = 2.0 * f64::from(back) / 1000.0;
                note.push_str(&format!(", bidirectional {both:.3} GB/s"));
                if both / max_both < fraction {
                    verdict.problems.push(format!(
                        "{pair}: bidirectional {both:.3} GB/s is {:.0}% of twice the slower \
                         direction's max_bandwidth ({back} MB/s), below the {:.0}% required",
                        both / max_both * 100.0,
                        fraction * 100.0
                    ));
                }
            }
            verdict.notes.push(note);
        }
        verdict
    }
}
