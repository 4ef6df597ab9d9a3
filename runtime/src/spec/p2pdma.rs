//! `pci_p2pdma_distance` computed on a spec's PCIe tree, following the kernel's
//! `calc_map_type_and_dist` (drivers/pci/p2pdma.c) step by step.

use hsa_p2p_core::builder::P2pdmaOracle;

use super::{PcieLayout, Spec};

/// The PCI core's P2PDMA verdicts for the GPUs of a spec.
pub struct LayoutP2pdma {
    layout: PcieLayout,
    /// Element index of each GPU.
    gpu_elements: Vec<Option<usize>>,
    /// P2P through the host bridge is allowed (whitelisted bridge or a CPU the kernel trusts).
    host_bridge_whitelisted: bool,
}

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

impl LayoutP2pdma {
    /// The verdicts for `spec`.
    pub fn new(spec: &Spec) -> Self {
        let layout = spec.layout();
        let gpu_elements = (0..spec.gpus.len())
            .map(|gpu| layout.gpu_element(gpu))
            .collect();
        LayoutP2pdma {
            layout,
            gpu_elements,
            host_bridge_whitelisted: spec.platform.host_bridge_whitelisted,
        }
    }

    fn has_acs_redirect(&self, element: usize) -> bool {
        self.layout.elements[element].acs_redirect
    }

    /// The path from `client` to `provider`'s memory (GPU indices).
    pub fn path(&self, provider: usize, client: usize) -> P2pdmaPath {
        let (Some(Some(provider)), Some(Some(client))) = (
            self.gpu_elements.get(provider).copied(),
            self.gpu_elements.get(client).copied(),
        ) else {
            return P2pdmaPath::NotSupported {
                acs_redirected: false,
            };
        };
        let mut acs_count = 0;
        let mut common = None;
        let mut dist_a = 0;
        let mut dist_b = 0;
        // Walk up from the provider; for each ancestor `a`, walk up from the client looking for it.
        for a in self.layout.upstream_chain(provider) {
            if self.has_acs_redirect(a) {
                acs_count += 1;
            }
            if let Some(steps) = self.layout.upstream_chain(client).position(|b| b == a) {
                dist_b = steps as u32;
                common = Some(a);
                break;
            }
            dist_b = self.layout.upstream_chain(client).count() as u32;
            dist_a += 1;
        }
        let distance = dist_a + dist_b;
        let acs_redirected = match common {
            None => false,
            Some(common) => {
                acs_count += self
                    .layout
                    .upstream_chain(client)
                    .take_while(|&b| b != common)
                    .filter(|&b| self.has_acs_redirect(b))
                    .count();
                if acs_count == 0 {
                    return P2pdmaPath::Switch { distance };
                }
                true
            }
        };
        if self.host_bridge_whitelisted {
            P2pdmaPath::HostBridge {
                distance,
                acs_redirected,
            }
        } else {
            P2pdmaPath::NotSupported { acs_redirected }
        }
    }
}

impl P2pdmaOracle for LayoutP2pdma {
    fn p2pdma_distance(&self, owner: usize, accessor: usize) -> Option<u32> {
        self.path(owner, accessor).distance()
    }
}
