//! `p2pctl export slurm|nfd` checked against each format's documented grammar: Slurm's
//! gres.conf(5) (`Key=Value` parameters, `#` comments, `Links`: one number per device, `-1`
//! for the device itself, on a line naming a single `File`) and node-feature-discovery's
//! local feature files (`name[=value]` lines, `#` comments, Kubernetes label syntax).

mod common;

use std::collections::BTreeMap;

use common::{p2pctl, run, shipped_specs};

/// One GPU line of gres.conf, parameters by lower-case name.
type GresLine = BTreeMap<String, String>;

/// Parses gres.conf text by gres.conf(5); panics on anything the format does not allow.
fn parse_gres(text: &str) -> Vec<GresLine> {
    const KEYS: [&str; 9] = [
        "autodetect",
        "count",
        "cores",
        "file",
        "flags",
        "links",
        "name",
        "nodename",
        "type",
    ];
    let mut lines = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let mut parameters = GresLine::new();
        for token in line.split_whitespace() {
            let (key, value) = token
                .split_once('=')
                .unwrap_or_else(|| panic!("{token:?} is not Key=Value in {raw:?}"));
            let key = key.to_ascii_lowercase();
            assert!(
                KEYS.contains(&key.as_str()),
                "unknown parameter {key} in {raw:?}"
            );
            assert!(!value.is_empty(), "empty {key} in {raw:?}");
            assert!(
                parameters.insert(key.clone(), value.to_string()).is_none(),
                "{key} twice in {raw:?}"
            );
        }
        assert_eq!(
            line.split_whitespace()
                .next()
                .unwrap()
                .split('=')
                .next()
                .unwrap(),
            "Name",
            "without NodeName the first parameter is Name: {raw:?}"
        );
        lines.push(parameters);
    }
    lines
}

fn is_cpu_list(text: &str) -> bool {
    text.split(',').all(|range| {
        let mut ends = range.splitn(2, '-');
        let first = ends.next().unwrap();
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        numeric(first) && ends.next().is_none_or(numeric)
    })
}

/// The GPU lines' Links as a matrix, after checking every line against the grammar.
fn check_gres(text: &str) -> Vec<Vec<i64>> {
    let lines = parse_gres(text);
    let count = lines.len();
    let mut matrix = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["name"], "gpu");
        let kind = &line["type"];
        assert!(
            kind.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)),
            "Type {kind:?}"
        );
        let file = &line["file"];
        let minor = file
            .strip_prefix("/dev/dri/renderD")
            .expect("a render node");
        assert!(
            minor.parse::<u32>().is_ok(),
            "a Links line names one File: {file}"
        );
        if let Some(cores) = line.get("cores") {
            assert!(is_cpu_list(cores), "Cores {cores:?}");
        }
        let links: Vec<i64> = line["links"]
            .split(',')
            .map(|n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("Links {:?}", line["links"]))
            })
            .collect();
        assert_eq!(links.len(), count, "one number per device");
        assert!(links.iter().all(|&n| n >= -1));
        let own: Vec<usize> = (0..count).filter(|&i| links[i] == -1).collect();
        assert_eq!(own, [index], "-1 exactly at the device itself");
        matrix.push(links);
    }
    for (a, row) in matrix.iter().enumerate() {
        for (b, &n) in row.iter().enumerate() {
            assert_eq!(n, matrix[b][a], "links between {a} and {b} are symmetric");
        }
    }
    matrix
}

#[test]
fn slurm_lines_follow_gres_conf_for_every_shipped_spec() {
    for name in shipped_specs() {
        let text = p2pctl(&[
            "export",
            "slurm",
            "--spec",
            &format!("topologies/{name}.toml"),
        ]);
        let links = check_gres(&text);
        assert!(!links.is_empty(), "{name}: no GPU lines");
    }
    let text = p2pctl(&["export", "slurm", "--spec", "topologies/xgmi-hive-4.toml"]);
    // The MI100 quad hive: fully connected, one link per pair.
    assert_eq!(
        check_gres(&text),
        [[-1, 1, 1, 1], [1, -1, 1, 1], [1, 1, -1, 1], [1, 1, 1, -1]]
    );
    // The MI250 node: amdgpu's num_links per pair, 0 for pairs reached through other dies.
    let mi250 = p2pctl(&["export", "slurm", "--spec", "topologies/mi250-8gcd.toml"]);
    assert_eq!(
        check_gres(&mi250),
        [
            [-1, 4, 0, 0, 2, 0, 0, 0],
            [4, -1, 0, 1, 0, 1, 0, 0],
            [0, 0, -1, 4, 0, 0, 2, 0],
            [0, 1, 4, -1, 0, 0, 0, 1],
            [2, 0, 0, 0, -1, 4, 0, 0],
            [0, 1, 0, 0, 4, -1, 0, 1],
            [0, 0, 2, 0, 0, 0, -1, 4],
            [0, 0, 0, 1, 0, 1, 4, -1],
        ]
    );
    insta::assert_snapshot!("slurm-xgmi-hive-4", text);
    let renamed = p2pctl(&[
        "export",
        "slurm",
        "--spec",
        "topologies/two-socket.toml",
        "--type",
        "MI300X",
    ]);
    check_gres(&renamed);
    assert!(renamed.contains("Type=mi300x "), "{renamed}");
    insta::assert_snapshot!("slurm-two-socket", renamed);
}

#[test]
fn slurm_lines_of_an_amdkfd_tree() {
    let machine = "hwtests/tests/fixtures/four-gpu-intel";
    let tree = format!("{machine}/sys/class/kfd/kfd/topology");
    let text = p2pctl(&[
        "export",
        "slurm",
        "--root",
        &tree,
        "--machine-root",
        machine,
    ]);
    assert_eq!(check_gres(&text).len(), 4);
}

/// Kubernetes' label name part / value: up to 63 of `[A-Za-z0-9._-]`, alphanumeric at both
/// ends (a value may be empty).
fn is_label_word(text: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && edge(text.chars().next())
        && edge(text.chars().last())
}

/// Parses an NFD feature file; panics on lines the format does not allow.
fn parse_features(text: &str) -> BTreeMap<String, String> {
    let mut features = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            assert!(
                !line.starts_with("# +") || line.starts_with("# +expiry-time="),
                "unknown directive {line:?}"
            );
            continue;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, "true"));
        let local = match name.split_once('/') {
            Some((prefix, local)) => {
                assert!(prefix.split('.').all(is_label_word), "prefix {prefix:?}");
                local
            }
            None => name,
        };
        assert!(is_label_word(local), "label name {name:?}");
        assert!(
            value.is_empty() || is_label_word(value),
            "value {value:?} of {name}"
        );
        assert!(
            features
                .insert(name.to_string(), value.to_string())
                .is_none(),
            "{name} twice"
        );
    }
    features
}

#[test]
fn nfd_features_follow_the_local_source_format() {
    let expectations = [
        ("sixteen-gpus", "16", "1", "16", "true", "PCIE"),
        ("mixed-three-gpus", "3", "2", "2", "false", "PCIE"),
        ("small-bar", "2", "2", "1", "false", "PCIE"),
        ("xgmi-hive-4", "4", "1", "4", "true", "XGMI"),
        ("separate-root-ports", "2", "2", "1", "false", "none"),
    ];
    for name in shipped_specs() {
        let text = p2pctl(&[
            "export",
            "nfd",
            "--spec",
            &format!("topologies/{name}.toml"),
        ]);
        let features = parse_features(&text);
        assert!(features.len() >= 6, "{name}: {features:?}");
        if let Some((_, gpus, groups, size, all, types)) = expectations.iter().find(|e| e.0 == name)
        {
            let get = |key: &str| features[&format!("hsa-p2p.{key}")].as_str();
            assert_eq!(
                [get("gpu-count"), get("p2p-groups"), get("p2p-group-size")],
                [*gpus, *groups, *size],
                "{name}"
            );
            assert_eq!(get("p2p-all"), *all, "{name}");
            assert_eq!(get("p2p-link-types"), *types, "{name}");
        }
    }
    let seen = expectations
        .iter()
        .filter(|e| shipped_specs().contains(&e.0.to_string()))
        .count();
    assert_eq!(seen, expectations.len(), "every expected spec is shipped");
    insta::assert_snapshot!(
        "nfd-mixed-three-gpus",
        p2pctl(&[
            "export",
            "nfd",
            "--spec",
            "topologies/mixed-three-gpus.toml"
        ])
    );
}

#[test]
fn output_files_are_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hsa-p2p");
    std::fs::write(&file, "old=1\n").unwrap();
    let spec = "topologies/two-socket.toml";
    p2pctl(&[
        "export",
        "nfd",
        "--spec",
        spec,
        "-o",
        file.to_str().unwrap(),
    ]);
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, p2pctl(&["export", "nfd", "--spec", spec]));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "no temporary file left behind");
    let output = run(&["export", "nfd", "--spec", spec, "--type", "x"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "p2pctl: error: --type applies to `export slurm` only\n"
    );
}
