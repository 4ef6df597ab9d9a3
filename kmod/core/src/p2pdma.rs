//! The kernel's `calc_map_type_and_dist` (drivers/pci/p2pdma.c, Linux 7.3), once: the walk
//! over two devices' upstream chains that finds their common bridge, the distance and whether
//! an ACS redirect on the way (`pci_bridge_has_acs_redir`: RR, CR or EC set in a bridge's ACS
//! control register) sends the traffic up to the host bridge.
//!
//! One decision for everyone who needs it: the module maps peers with it (7.3 does not export
//! `pci_p2pdma_map_type` to modules; its chains and ACS bits are the devices' own), the
//! runtime predicts from a spec's PCIe layout (`spec::LayoutP2pdma`) and from sysfs
//! (`machine_facts`). Whether the host bridge allows P2P (`cpu_supports_p2pdma` or
//! `host_bridge_whitelist`) is the caller's: the module asks `pci_p2pdma_distance`.

use crate::abi::{MAP_TYPE_BUS_ADDR, MAP_TYPE_THRU_HOST_BRIDGE};

/// How a P2P transaction between two devices travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P2pdmaPath {
    /// Through a common upstream switch, no ACS redirect on the way (PCI_P2PDMA_MAP_BUS_ADDR).
    Switch {
        /// The kernel's distance.
        distance: u32,
    },
    /// Up through the host bridge, which allows it (PCI_P2PDMA_MAP_THRU_HOST_BRIDGE).
    HostBridge {
        /// The kernel's distance.
        distance: u32,
        /// A common switch exists but ACS redirects the traffic upstream.
        acs_redirected: bool,
    },
    /// Refused (PCI_P2PDMA_MAP_NOT_SUPPORTED).
    NotSupported {
        /// A common switch exists but ACS redirects the traffic to a host bridge that refuses it.
        acs_redirected: bool,
    },
}

impl P2pdmaPath {
    /// The value `pci_p2pdma_distance` returns, `None` for -1.
    pub fn distance(self) -> Option<u32> {
        match self {
            P2pdmaPath::Switch { distance } | P2pdmaPath::HostBridge { distance, .. } => {
                Some(distance)
            }
            P2pdmaPath::NotSupported { .. } => None,
        }
    }

    /// The `MAP_PEER` map type (`abi::MAP_TYPE_*`) of the kernel's
    /// `PCI_P2PDMA_MAP_BUS_ADDR` / `PCI_P2PDMA_MAP_THRU_HOST_BRIDGE`; `None` when refused.
    pub fn map_type(self) -> Option<u32> {
        match self {
            P2pdmaPath::Switch { .. } => Some(MAP_TYPE_BUS_ADDR),
            P2pdmaPath::HostBridge { .. } => Some(MAP_TYPE_THRU_HOST_BRIDGE),
            P2pdmaPath::NotSupported { .. } => None,
        }
    }
}

/// What the walk found before the host bridge is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// A common bridge without ACS redirect on the way: P2P through it.
    Switch {
        /// Hops up from both ends.
        distance: u32,
    },
    /// The traffic must go through the host bridge.
    HostBridge {
        /// The kernel's distance (both chains' lengths when there is no common bridge).
        distance: u32,
        /// There is a common bridge, but ACS redirects upstream.
        acs_redirected: bool,
    },
}

impl Walk {
    /// The path, given whether the host bridge (or bridges) allow P2P.
    pub fn path(self, host_bridge_allows: bool) -> P2pdmaPath {
        match self {
            Walk::Switch { distance } => P2pdmaPath::Switch { distance },
            Walk::HostBridge {
                distance,
                acs_redirected,
            } if host_bridge_allows => P2pdmaPath::HostBridge {
                distance,
                acs_redirected,
            },
            Walk::HostBridge { acs_redirected, .. } => P2pdmaPath::NotSupported { acs_redirected },
        }
    }
}

/// Walks `provider` and `client` (each the device followed by its upstream bridges) the way
/// the kernel does: for each bridge above the provider, counting ACS redirects, look for it
/// above the client; then count the client's redirects below the common bridge.
pub fn walk<N: PartialEq + Copy>(
    provider: &[N],
    client: &[N],
    acs_redirects: impl Fn(N) -> bool,
) -> Walk {
    let mut acs_count = 0;
    for (dist_a, &a) in provider.iter().enumerate() {
        if acs_redirects(a) {
            acs_count += 1;
        }
        if let Some(dist_b) = client.iter().position(|&b| b == a) {
            acs_count += client[..dist_b]
                .iter()
                .filter(|&&b| acs_redirects(b))
                .count();
            let distance = (dist_a + dist_b) as u32;
            return if acs_count == 0 {
                Walk::Switch { distance }
            } else {
                Walk::HostBridge {
                    distance,
                    acs_redirected: true,
                }
            };
        }
    }
    // No common bridge: the kernel's loops leave both counters at the chain lengths.
    Walk::HostBridge {
        distance: (provider.len() + client.len()) as u32,
        acs_redirected: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake PCI tree: every device's upstream bridge and whether its ACS control register
    /// has RR, CR or EC set (what `pci_bridge_has_acs_redir` reads from config space).
    ///
    /// ```text
    /// host bridge
    /// +- root port 30 ---- switch upstream 20 -+- downstream 10 --- gpu 1
    /// |                                         +- downstream 11 --- gpu 2
    /// |                                         +- downstream 12 --- switch upstream 21
    /// |                                                              +- downstream 13 --- gpu 4
    /// +- root port 31 ---- gpu 3
    /// ```
    struct FakeTree {
        upstream: &'static [(u32, u32)],
        acs_redirect: &'static [u32],
    }

    impl FakeTree {
        const TREE: &'static [(u32, u32)] = &[
            (1, 10),
            (2, 11),
            (10, 20),
            (11, 20),
            (12, 20),
            (20, 30),
            (3, 31),
            (4, 13),
            (13, 21),
            (21, 12),
        ];

        fn with_acs(acs_redirect: &'static [u32]) -> Self {
            FakeTree {
                upstream: Self::TREE,
                acs_redirect,
            }
        }

        /// The device followed by its upstream bridges (`pci_upstream_bridge` until NULL).
        fn chain(&self, device: u32) -> ([u32; 8], usize) {
            let mut chain = [0; 8];
            let (mut len, mut at) = (0, Some(device));
            while let Some(device) = at {
                chain[len] = device;
                len += 1;
                at = self
                    .upstream
                    .iter()
                    .find(|(child, _)| *child == device)
                    .map(|(_, parent)| *parent);
            }
            (chain, len)
        }

        /// `calc_map_type_and_dist(provider, client)`, with the host bridge's verdict given.
        fn path(&self, provider: u32, client: u32, host_bridge_allows: bool) -> P2pdmaPath {
            let ((a, a_len), (b, b_len)) = (self.chain(provider), self.chain(client));
            walk(&a[..a_len], &b[..b_len], |device| {
                self.acs_redirect.contains(&device)
            })
            .path(host_bridge_allows)
        }
    }

    #[test]
    fn devices_behind_one_switch_map_by_bus_address() {
        let tree = FakeTree::with_acs(&[]);
        // gpu 1 -> 10 -> 20 <- 11 <- gpu 2: the kernel's distance 4 (its comment's example).
        for allows in [false, true] {
            assert_eq!(tree.path(1, 2, allows), P2pdmaPath::Switch { distance: 4 });
        }
        assert_eq!(tree.path(1, 2, false).map_type(), Some(MAP_TYPE_BUS_ADDR));
        // Nested switch: gpu 4 -> 13 -> 21 -> 12 -> 20 <- 10 <- gpu 1.
        assert_eq!(tree.path(4, 1, false), P2pdmaPath::Switch { distance: 6 });
        assert_eq!(tree.path(1, 4, false), P2pdmaPath::Switch { distance: 6 });
    }

    #[test]
    fn acs_redirect_on_a_switch_downstream_port_goes_through_the_host_bridge() {
        // The provider's downstream port redirects (counted in the first loop).
        let provider_side = FakeTree::with_acs(&[10]);
        // The client's downstream port redirects (counted in check_b_path_acs).
        let client_side = FakeTree::with_acs(&[11]);
        for tree in [&provider_side, &client_side] {
            assert_eq!(
                tree.path(1, 2, true),
                P2pdmaPath::HostBridge {
                    distance: 4,
                    acs_redirected: true
                }
            );
            assert_eq!(
                tree.path(1, 2, true).map_type(),
                Some(MAP_TYPE_THRU_HOST_BRIDGE)
            );
            // A host bridge that refuses P2P: PCI_P2PDMA_MAP_NOT_SUPPORTED.
            assert_eq!(
                tree.path(1, 2, false),
                P2pdmaPath::NotSupported {
                    acs_redirected: true
                }
            );
            assert_eq!(tree.path(1, 2, false).map_type(), None);
        }
        // Redirect on a nested switch's port below the common bridge counts too.
        let nested = FakeTree::with_acs(&[12]);
        assert!(matches!(
            nested.path(4, 1, false),
            P2pdmaPath::NotSupported {
                acs_redirected: true
            }
        ));
    }

    #[test]
    fn acs_redirect_above_the_common_bridge_does_not_count() {
        // The kernel never climbs above the common bridge (20): RR/CR on the root port (which
        // it enables on every root port when an IOMMU is on) leaves BUS_ADDR.
        let tree = FakeTree::with_acs(&[30]);
        assert_eq!(tree.path(1, 2, false), P2pdmaPath::Switch { distance: 4 });
        // The common bridge itself is asked (in the provider's loop, before the match).
        let common = FakeTree::with_acs(&[20]);
        assert!(matches!(
            common.path(1, 2, true),
            P2pdmaPath::HostBridge {
                acs_redirected: true,
                ..
            }
        ));
        // A redirect on another branch (11) does not matter to 1 and 4.
        let other_branch = FakeTree::with_acs(&[11]);
        assert_eq!(
            other_branch.path(1, 4, false),
            P2pdmaPath::Switch { distance: 6 }
        );
    }

    #[test]
    fn no_common_bridge_asks_the_host_bridge() {
        // gpu 1 (1, 10, 20, 30) and gpu 3 (3, 31): the loops end with both chain lengths.
        let tree = FakeTree::with_acs(&[]);
        assert_eq!(
            tree.path(1, 3, true),
            P2pdmaPath::HostBridge {
                distance: 6,
                acs_redirected: false
            }
        );
        assert_eq!(
            tree.path(1, 3, false),
            P2pdmaPath::NotSupported {
                acs_redirected: false
            }
        );
        // ACS redirect on the root ports changes nothing there: the path already goes up.
        let redirecting_roots = FakeTree::with_acs(&[30, 31]);
        assert_eq!(redirecting_roots.path(1, 3, true), tree.path(1, 3, true));
        assert_eq!(tree.path(1, 3, true).distance(), Some(6));
        assert_eq!(tree.path(1, 3, false).distance(), None);
    }

    #[test]
    fn a_device_reaching_itself_is_distance_zero() {
        let tree = FakeTree::with_acs(&[10]);
        assert_eq!(tree.path(1, 1, false), P2pdmaPath::Switch { distance: 0 });
    }
}
