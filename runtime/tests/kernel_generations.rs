//! `p2pctl` on a kernel whose amdkfd predates p2p_links (Linux before 6.0), with the shipped
//! example `topologies/w6800-pair-before-p2p-links.toml`: `why` names the kernel and what ROCm's
//! libhsakmt synthesizes there, and `matrix --json` carries those synthesized links, marked as
//! such, while the kernel's own matrices stay empty.

mod common;

use common::p2pctl;
use serde_json::Value;

const SPEC: &str = "topologies/w6800-pair-before-p2p-links.toml";

#[test]
fn why_names_the_kernel_and_the_link_libhsakmt_synthesizes() {
    // node_show (kfd_topology.c) prints p2p_links_count whenever amdkfd has p2p_links;
    // libhsakmt's topology_create_indirect_gpu_links joins the pair through the CPU:
    // GPU -> CPU (20) + CPU -> GPU (20).
    let text = p2pctl(&["why", "w6800a", "w6800b", "--spec", SPEC]);
    insta::assert_snapshot!("why-w6800-pair-before-p2p-links", text);
}

#[test]
fn matrix_json_carries_the_synthesized_links_marked_as_such() {
    let text = p2pctl(&["matrix", "--spec", SPEC, "--json", "--table", "access"]);
    let document: Value = serde_json::from_str(&text).unwrap();
    // The kernel itself links no GPU pair ...
    assert_eq!(
        document["access"],
        serde_json::json!([[null, false], [false, null]])
    );
    assert_eq!(
        document["link_type"],
        serde_json::json!([[null, null], [null, null]])
    );
    // ... user space does.
    insta::assert_snapshot!(
        "matrix-json-synthesized-w6800-pair-before-p2p-links",
        serde_json::to_string_pretty(&document["synthesized_links"]).unwrap()
    );
}

#[test]
fn matrix_json_has_no_synthesized_links_where_the_kernel_publishes_p2p_links() {
    for spec in [
        "topologies/same-switch.toml",
        "topologies/mi50-pex88096-without-hsa-amd-p2p.toml",
    ] {
        let text = p2pctl(&["matrix", "--spec", spec, "--json", "--table", "access"]);
        let document: Value = serde_json::from_str(&text).unwrap();
        assert!(
            document.get("synthesized_links").is_none(),
            "{spec}: {text}"
        );
    }
}
