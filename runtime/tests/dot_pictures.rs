//! `p2pctl dot` stays readable: at most one edge per GPU pair (a merged edge between switches
//! stands for all pairs between them), and the shipped specs' graphs are snapshots.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn p2pctl(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_p2pctl"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(args)
        .output()
        .expect("p2pctl runs");
    assert!(output.status.success(), "{args:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Every `a -> b [...]` statement: (a, b, attributes).
fn edges(dot: &str) -> Vec<(String, String, String)> {
    dot.lines()
        .filter_map(|line| {
            let (ends, attributes) = line.trim().split_once(" [")?;
            let (a, b) = ends.split_once(" -> ")?;
            Some((a.to_string(), b.to_string(), attributes.to_string()))
        })
        .collect()
}

/// How many GPU pairs an edge stands for: `(n pairs)` in its label, else one.
fn pairs_of(attributes: &str) -> usize {
    attributes
        .rsplit_once(" pairs)")
        .and_then(|(head, _)| head.rsplit_once('(')?.1.parse().ok())
        .unwrap_or(1)
}

#[test]
fn sixteen_gpus_draw_at_most_one_edge_per_pair() {
    let dot = p2pctl(&["dot", "--spec", "topologies/sixteen-gpus.toml"]);
    let peer: Vec<_> = edges(&dot)
        .into_iter()
        .filter(|(_, _, attributes)| attributes.contains("constraint=false"))
        .collect();
    let mut seen = BTreeSet::new();
    for (a, b, _) in &peer {
        let key = if a <= b { (a, b) } else { (b, a) };
        assert!(seen.insert(key), "two edges between {a} and {b}:\n{dot}");
    }
    let pairs: usize = peer
        .iter()
        .map(|(_, _, attributes)| pairs_of(attributes))
        .sum();
    assert_eq!(pairs, 16 * 15 / 2, "every GPU pair exactly once:\n{dot}");
    assert!(
        peer.len() <= 12,
        "{} peer edges: not merged:\n{dot}",
        peer.len()
    );
    assert!(peer.iter().all(|(_, _, a)| a.contains("dir=both")));
    // The switches are drawn, GPUs clustered by socket, and indirect CPU links hidden.
    for cluster in [
        "cluster_cpu0",
        "cluster_cpu1",
        "cluster_sw_sw0",
        "cluster_sw_sw3",
    ] {
        assert!(dot.contains(cluster), "{cluster}");
    }
    assert!(!dot.contains("style=dashed, color=\"#969696\""));
    let with_cpu_links = p2pctl(&[
        "dot",
        "--spec",
        "topologies/sixteen-gpus.toml",
        "--cpu-links",
    ]);
    let indirect = edges(&with_cpu_links)
        .into_iter()
        .filter(|(_, _, a)| a.starts_with("style=dashed"))
        .count();
    assert_eq!(indirect, 16, "each GPU's link to the other socket");
}

#[test]
fn shipped_specs_as_graphs() {
    for name in ["mixed-three-gpus", "small-bar", "xgmi-hive-4"] {
        let dot = p2pctl(&["dot", "--spec", &format!("topologies/{name}.toml")]);
        insta::assert_snapshot!(format!("dot-{name}"), dot);
    }
}
