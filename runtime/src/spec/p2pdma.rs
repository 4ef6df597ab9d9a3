//! `pci_p2pdma_distance` computed on a spec's PCIe tree with the kernel's walk
//! ([`crate::p2pdma::walk`]).

use hsa_p2p_core::builder::P2pdmaOracle;

use super::{PcieLayout, Spec};
use crate::host_bridge::host_bridges_whitelisted;
use crate::p2pdma::walk;
pub use crate::p2pdma::P2pdmaPath;

/// The PCI core's P2PDMA verdicts for the GPUs of a spec.
pub struct LayoutP2pdma {
    layout: PcieLayout,
    /// Element index of each GPU.
    gpu_elements: Vec<Option<usize>>,
    /// Every host bridge allows P2P: the spec's shorthand, or a CPU the kernel trusts
    /// (`cpu_supports_p2pdma`).
    host_bridges_trusted: bool,
    /// The ids of each declared host bridge's device (`Spec::host_bridges` order).
    host_bridge_ids: Vec<(u16, u16)>,
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
            host_bridges_trusted: spec.platform.host_bridge_whitelisted
                || spec.cpu_supports_p2pdma(),
            host_bridge_ids: (spec.host_bridges.iter())
                .map(|bridge| (bridge.vendor_id, bridge.device_id))
                .collect(),
        }
    }

    /// Whether the host bridges above elements `a` and `b` let P2P through
    /// (`pci_p2pdma_distance`'s `cpu_supports_p2pdma() || host_bridge_whitelist()`).
    fn host_bridges_allow(&self, a: usize, b: usize) -> bool {
        let (a, b) = (
            self.layout.elements[a].host_bridge,
            self.layout.elements[b].host_bridge,
        );
        let id = |bridge: Option<usize>| bridge.and_then(|i| self.host_bridge_ids.get(i).copied());
        self.host_bridges_trusted || host_bridges_whitelisted(id(a), id(b), a == b)
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
        let chain =
            |element: usize| -> Vec<usize> { self.layout.upstream_chain(element).collect() };
        walk(&chain(provider), &chain(client), |element| {
            self.has_acs_redirect(element)
        })
        .path(self.host_bridges_allow(provider, client))
    }
}

impl P2pdmaOracle for LayoutP2pdma {
    fn p2pdma_distance(&self, owner: usize, accessor: usize) -> Option<u32> {
        self.path(owner, accessor).distance()
    }
}
