//! The kernel's `calc_map_type_and_dist` (drivers/pci/p2pdma.c), once: the walk over two
//! devices' upstream chains that finds their common bridge, the distance and whether an ACS
//! redirect on the way sends the traffic up to the host bridge. The chains come from a spec's
//! PCIe layout (`spec::LayoutP2pdma`) or from sysfs (`machine_facts`); whether the host
//! bridge allows P2P is the caller's.

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

    #[test]
    fn the_walk_follows_the_kernel() {
        // 1 and 2 behind switch port 10/11 of switch 20, under root port 30; 3 under root 31.
        let one = [1, 10, 20, 30];
        let two = [2, 11, 20, 30];
        let three = [3, 31];
        assert_eq!(walk(&one, &two, |_| false), Walk::Switch { distance: 4 });
        assert_eq!(
            walk(&one, &two, |n| n == 11),
            Walk::HostBridge {
                distance: 4,
                acs_redirected: true
            }
        );
        assert_eq!(
            walk(&one, &three, |_| false),
            Walk::HostBridge {
                distance: 6,
                acs_redirected: false
            }
        );
        assert_eq!(
            walk(&one, &three, |_| false).path(false),
            P2pdmaPath::NotSupported {
                acs_redirected: false
            }
        );
        assert_eq!(
            walk(&one, &two, |_| false).path(false),
            P2pdmaPath::Switch { distance: 4 }
        );
    }
}
