//! `p2pctl matrix` and `p2pctl predict` as an administrator reads them: every table of every
//! shipped spec as a snapshot (text), CSV that parses to rectangular tables, JSON that is
//! compact when piped, the GPU subset, and the views of an amdkfd tree with its machine's
//! sysfs facts.

mod common;

use common::{p2pctl, shipped_specs};

/// Every table, in `p2pctl matrix`'s order.
const TABLES: [&str; 8] = [
    "access",
    "type",
    "weight",
    "bandwidth",
    "hops",
    "path",
    "flags",
    "gpus",
];

#[test]
fn every_shipped_spec_shows_every_table_with_a_legend() {
    for name in shipped_specs() {
        let spec = format!("topologies/{name}.toml");
        let out = p2pctl(&["matrix", "--spec", &spec]);
        insta::assert_snapshot!(format!("matrix-{name}"), out);
    }
}

#[test]
fn predict_prints_verdicts_then_the_tables() {
    for name in shipped_specs() {
        let out = p2pctl(&["predict", &format!("topologies/{name}.toml")]);
        insta::assert_snapshot!(format!("predict-{name}"), out);
    }
}

#[test]
fn an_amdkfd_tree_with_its_machines_facts_has_path_classes() {
    let machine = "hwtests/tests/fixtures/four-gpu-intel";
    let tree = format!("{machine}/sys/class/kfd/kfd/topology");
    let out = p2pctl(&["matrix", "--root", &tree, "--machine-root", machine]);
    insta::assert_snapshot!("matrix-four-gpu-intel-tree", out);
    // Without the machine's facts the path class is unknown, and says so.
    let out = p2pctl(&["matrix", "--root", &tree, "--table", "path"]);
    insta::assert_snapshot!("matrix-four-gpu-intel-tree-without-facts", out);
}

/// RFC 4180 records (CRLF line ends, quoted fields with doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "quote inside an unquoted field: {text}");
                quoted = true;
            }
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "CR without LF"),
            (false, '\n') => panic!("bare LF line end in {text:?}"),
            (false, c) => field.push(c),
        }
        if !quoted && c == '\r' {
            record.push(std::mem::take(&mut field));
            records.push(std::mem::take(&mut record));
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "unterminated: {text:?}"
    );
    records
}

#[test]
fn every_table_is_rectangular_csv() {
    for name in ["sixteen-gpus", "two-socket", "xgmi-hive-4"] {
        let spec = format!("topologies/{name}.toml");
        for table in TABLES {
            let out = p2pctl(&["matrix", "--spec", &spec, "--table", table, "--csv"]);
            let records = parse_csv(&out);
            let width = records[0].len();
            assert!(width >= 2, "{name} {table}: {out}");
            assert!(
                records.iter().all(|r| r.len() == width),
                "{name} {table}: ragged CSV {records:?}"
            );
        }
    }
    let out = p2pctl(&[
        "matrix",
        "--spec",
        "topologies/two-socket.toml",
        "--table",
        "path",
        "--csv",
    ]);
    insta::assert_snapshot!("csv-two-socket-path", out);
}

#[test]
fn a_gpu_subset_keeps_the_asked_order() {
    let out = p2pctl(&[
        "matrix",
        "--spec",
        "topologies/sixteen-gpus.toml",
        "--gpus",
        "gpu12,gpu0,gpu4",
        "--table",
        "path",
        "--csv",
    ]);
    let records = parse_csv(&out);
    let rows: Vec<&str> = records[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(rows, ["gpu12", "gpu0", "gpu4"]);
    assert_eq!(&records[0][1..4], ["gpu12", "gpu0", "gpu4"]);
    // gpu12 and gpu0 sit on different sockets, gpu0 and gpu4 on different switches of one.
    assert_eq!(&records[2][1..4], ["SYS", "X", "PHB"]);
}

#[test]
fn json_is_one_line_when_piped_and_indented_with_pretty() {
    let spec = "topologies/sixteen-gpus.toml";
    let compact = p2pctl(&["matrix", "--spec", spec, "--json"]);
    assert_eq!(compact.lines().count(), 1, "{compact}");
    let pretty = p2pctl(&["matrix", "--spec", spec, "--json", "--pretty"]);
    assert!(pretty.lines().count() > 100);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&compact).unwrap(),
        serde_json::from_str(&pretty).unwrap(),
    );
    assert_eq!(a, b);
    let tables = a["tables"].as_array().unwrap();
    let kinds: Vec<&str> = tables.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, TABLES);
    let path = &tables[5];
    assert_eq!(path["rows"][0]["cells"][0], "X");
    assert_eq!(path["rows"][0]["cells"][1], "PIX");
    assert_eq!(path["rows"][0]["cells"][15], "SYS");
    let hops = &tables[4];
    assert_eq!(hops["rows"][0]["cells"][15], 3, "across sockets: 3 hops");
    let one = p2pctl(&["matrix", "--spec", spec, "--json", "--table", "hops"]);
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["tables"].as_array().unwrap().len(), 1);
}

#[test]
fn csv_needs_one_table_and_gpus_must_be_gpus() {
    let spec = "topologies/two-socket.toml";
    let output = common::run(&["matrix", "--spec", spec, "--csv"]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--table <TABLE>"));
    let output = common::run(&["matrix", "--spec", spec, "--gpus", "gpu0,cpu1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "p2pctl: error: --gpus cpu1: node 1 is not a GPU\n"
    );
    let output = common::run(&["matrix", "--spec", spec, "--gpus", "gpu9"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no GPU named \"gpu9\""));
}
