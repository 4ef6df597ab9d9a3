// SPDX-License-Identifier: GPL-2.0

//! How a peer reaches a GPU's BAR, as the PCI P2PDMA core decides it.
//!
//! Linux 7.3 does not export `pci_p2pdma_map_type()` (nor `calc_map_type_and_dist()`) to
//! modules, so the decision is the core's [`crate::p2pdma::walk`] (the kernel's walk, tested
//! against fake bridge chains on the host) over the devices' real upstream chains and the ACS
//! control registers of their bridges, and the host bridge's verdict is the exported
//! `pci_p2pdma_distance()` itself (negative exactly when the kernel's answer is
//! `PCI_P2PDMA_MAP_NOT_SUPPORTED`).

use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::ffi::c_void;
use kernel::pci;
use kernel::prelude::*;

use crate::p2pdma::{walk, P2pdmaPath};
use crate::shim::{
    hsa_p2p_bridge_has_acs_redir, hsa_p2p_p2pdma_distance, hsa_p2p_upstream_bridge, raw_pci_dev,
};

/// One device of an upstream chain, compared by identity.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Hop {
    dev: *mut c_void,
    acs_redirect: bool,
}

/// `pdev` followed by its upstream bridges, each with its ACS redirect state.
fn upstream_chain(pdev: &pci::Device) -> Result<KVec<Hop>> {
    let mut chain = KVec::new();
    let mut dev = raw_pci_dev(pdev);
    while !dev.is_null() {
        // SAFETY: `dev` is `pdev` or one of its upstream bridges, each kept alive by the
        // reference its child holds on it, and `pdev` is alive for the whole call.
        let (acs_redirect, up) = unsafe {
            (
                hsa_p2p_bridge_has_acs_redir(dev),
                hsa_p2p_upstream_bridge(dev),
            )
        };
        chain.push(Hop { dev, acs_redirect }, GFP_KERNEL)?;
        dev = up;
    }
    Ok(chain)
}

/// The kernel's `pci_p2pdma_map_type()` for `client` reaching `provider`'s memory.
pub(crate) fn p2pdma_path(provider: &pci::Device, client: &pci::Device) -> Result<P2pdmaPath> {
    let (provider_chain, client_chain) = (upstream_chain(provider)?, upstream_chain(client)?);
    // SAFETY: both devices are alive for the duration of the call.
    let distance = unsafe { hsa_p2p_p2pdma_distance(raw_pci_dev(provider), raw_pci_dev(client)) };
    let path = walk(&provider_chain, &client_chain, |hop| hop.acs_redirect).path(distance >= 0);
    Ok(match path {
        // Cannot happen (the kernel refuses only paths through the host bridge), but a refusal
        // is the kernel's last word.
        P2pdmaPath::Switch { .. } if distance < 0 => P2pdmaPath::NotSupported {
            acs_redirected: false,
        },
        path => path,
    })
}
