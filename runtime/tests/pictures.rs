//! The pictures: `p2pctl dot` stays readable (at most one edge per GPU pair, a merged edge
//! between switches standing for all pairs between them; the shipped specs' graphs are
//! snapshots), and `p2pctl heatmap` writes SVG and PNG files of tables and bench results.

mod common;

use std::collections::BTreeSet;

use common::{p2pctl, run};

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

#[test]
fn heatmaps_are_written_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("weight.svg");
    let png = dir.path().join("bandwidth.png");
    let spec = "topologies/sixteen-gpus.toml";
    p2pctl(&[
        "heatmap",
        "--spec",
        spec,
        "--table",
        "weight",
        "-o",
        svg.to_str().unwrap(),
    ]);
    p2pctl(&["heatmap", "--spec", spec, "-o", png.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    let document = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let texts: Vec<String> = document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    for label in ["Link weight", "gpu0", "gpu15", "40", "72", "weight"] {
        assert!(texts.iter().any(|t| t == label), "{label:?} not in the SVG");
    }
    let bytes = std::fs::read(&png).unwrap();
    let decoder = png::Decoder::new(bytes.as_slice());
    let reader = decoder.read_info().expect("a PNG");
    let info = reader.info();
    assert!(
        info.width >= 600 && info.height >= 600,
        "{}x{}",
        info.width,
        info.height
    );
}

#[test]
fn heatmap_of_a_bench_result_and_of_an_unknown_format() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench.json");
    let pair = |from: u32, to: u32, direct: Option<f64>| {
        serde_json::json!({
            "from": from, "to": to, "direct_gbps": direct, "direct_gbps_aliased": null,
            "staged_gbps": 3.5, "direct_over_staged": null, "direct_latency_us": null,
            "staged_latency_us": 9.0, "verified": true
        })
    };
    let report = serde_json::json!({
        "schema": "hsa-p2p/bench/v1", "size_bytes": 16777216, "iterations": 5,
        "latency_iterations": 200, "memcpy_gbps": 9.0,
        "pairs": [pair(1, 2, Some(7.25)), pair(2, 1, Some(6.5)), pair(1, 3, None), pair(3, 1, None),
                  pair(2, 3, None), pair(3, 2, None)]
    });
    std::fs::write(&bench, report.to_string()).unwrap();
    let svg = dir.path().join("bench.svg");
    p2pctl(&[
        "heatmap",
        "--bench",
        bench.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    for expected in [
        ">7.2<",
        ">6.5<",
        ">node3<",
        "GB/s",
        "Direct copy bandwidth (16 MiB",
    ] {
        let squeezed: String = text.split_whitespace().collect::<Vec<_>>().join("");
        let expected: String = expected.split_whitespace().collect::<Vec<_>>().join("");
        assert!(squeezed.contains(&expected), "{expected:?} not in {text}");
    }
    let jpg = dir.path().join("x.jpg");
    let output = run(&[
        "heatmap",
        "--spec",
        "topologies/same-switch.toml",
        "-o",
        jpg.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.ends_with("x.jpg: the output must end in .svg or .png\n"),
        "{err}"
    );
    assert!(!jpg.exists());
}
