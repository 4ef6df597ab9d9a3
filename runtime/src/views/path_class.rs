//! The class of the path between two GPUs in `nvidia-smi topo -m`'s vocabulary, derived from
//! the kernel's P2PDMA walk ([`crate::p2pdma::walk`], run by the spec layout or the sysfs
//! facts) and, across host bridges, from where the GPUs hang off the CPUs.

use std::fmt;

use crate::p2pdma::P2pdmaPath;

/// How traffic between two GPUs travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathClass {
    /// Through at most one PCIe switch (a common switch, both GPUs right below it).
    Pix,
    /// Through several PCIe bridges (nested switches) without the host bridge.
    Pxb,
    /// Through one PCIe host bridge (different root ports of one host bridge, or a common
    /// switch whose ACS redirects upstream).
    Phb,
    /// Between host bridges of one NUMA node.
    Node,
    /// Across the interconnect between NUMA nodes (sockets).
    Sys,
    /// An XGMI link; `links` is the number of links between the two when known.
    Xgmi {
        /// Links bonded between the pair (direct XGMI neighbours only).
        links: Option<u32>,
    },
}

/// Where one GPU of a pair is attached, for the pairs that share no PCIe bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment<'a> {
    /// The host bridge (root complex) name, when known.
    pub host_bridge: Option<&'a str>,
    /// The NUMA (KFD CPU) node, when known.
    pub numa_node: Option<u32>,
}

/// The walk's distance when both GPUs sit right below one switch (2 hops up each).
const ONE_SWITCH_DISTANCE: u32 = 4;

impl PathClass {
    /// The class of a PCIe path; `None` when it crosses host bridges and the attachments do not
    /// say which.
    pub fn of_pcie(path: P2pdmaPath, a: &Attachment<'_>, b: &Attachment<'_>) -> Option<Self> {
        match path {
            P2pdmaPath::Switch { distance } if distance <= ONE_SWITCH_DISTANCE => {
                Some(PathClass::Pix)
            }
            P2pdmaPath::Switch { .. } => Some(PathClass::Pxb),
            P2pdmaPath::HostBridge {
                acs_redirected: true,
                ..
            }
            | P2pdmaPath::NotSupported {
                acs_redirected: true,
            } => Some(PathClass::Phb),
            P2pdmaPath::HostBridge { .. } | P2pdmaPath::NotSupported { .. } => {
                match (a.host_bridge, b.host_bridge) {
                    (Some(x), Some(y)) if x == y => return Some(PathClass::Phb),
                    _ => {}
                }
                match (a.numa_node, b.numa_node) {
                    (Some(x), Some(y)) if x != y => Some(PathClass::Sys),
                    (Some(_), Some(_)) if a.host_bridge.is_some() && b.host_bridge.is_some() => {
                        Some(PathClass::Node)
                    }
                    _ => None,
                }
            }
        }
    }
}

impl fmt::Display for PathClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathClass::Pix => f.write_str("PIX"),
            PathClass::Pxb => f.write_str("PXB"),
            PathClass::Phb => f.write_str("PHB"),
            PathClass::Node => f.write_str("NODE"),
            PathClass::Sys => f.write_str("SYS"),
            PathClass::Xgmi { links: Some(n) } => write!(f, "XGMI{n}"),
            PathClass::Xgmi { links: None } => f.write_str("XGMI"),
        }
    }
}

/// The legend of the path table.
pub const PATH_LEGEND: [&str; 7] = [
    "PIX  = through at most one PCIe switch",
    "PXB  = through several PCIe bridges, not the host bridge",
    "PHB  = through a PCIe host bridge (the CPU's root complex)",
    "NODE = between PCIe host bridges of one NUMA node",
    "SYS  = across the interconnect between NUMA nodes (sockets)",
    "XGMI<n> = XGMI with n bonded links; XGMI = XGMI, link count not known or several hops",
    "the class is the path's, whether or not the pair may use P2P (see the access table)",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host_bridge: Option<&str>, numa_node: u32) -> Attachment<'_> {
        Attachment {
            host_bridge,
            numa_node: Some(numa_node),
        }
    }

    #[test]
    fn classes_follow_the_walk_and_the_attachments() {
        let (hb0, hb0b, hb1) = (at(Some("hb0"), 0), at(Some("hb0b"), 0), at(Some("hb1"), 1));
        let switch = |distance| P2pdmaPath::Switch { distance };
        assert_eq!(
            PathClass::of_pcie(switch(4), &hb0, &hb0),
            Some(PathClass::Pix)
        );
        assert_eq!(
            PathClass::of_pcie(switch(6), &hb0, &hb0),
            Some(PathClass::Pxb)
        );
        let redirected = P2pdmaPath::HostBridge {
            distance: 4,
            acs_redirected: true,
        };
        assert_eq!(
            PathClass::of_pcie(redirected, &hb0, &hb0),
            Some(PathClass::Phb)
        );
        let apart = P2pdmaPath::NotSupported {
            acs_redirected: false,
        };
        assert_eq!(PathClass::of_pcie(apart, &hb0, &hb0), Some(PathClass::Phb));
        assert_eq!(
            PathClass::of_pcie(apart, &hb0, &hb0b),
            Some(PathClass::Node)
        );
        assert_eq!(PathClass::of_pcie(apart, &hb0, &hb1), Some(PathClass::Sys));
        let unknown = Attachment {
            host_bridge: None,
            numa_node: Some(0),
        };
        assert_eq!(PathClass::of_pcie(apart, &unknown, &hb0), None);
        assert_eq!(PathClass::Xgmi { links: Some(2) }.to_string(), "XGMI2");
    }
}
