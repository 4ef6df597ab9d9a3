//! Spec parsing errors and the P2PDMA path emulation on hand-written trees.

use hsa_p2p_runtime::spec::{LayoutP2pdma, P2pdmaPath, Spec};

const BASE: &str = r#"
name = "t"
[[cpu]]
[[root_port]]
id = "rp0"
[[root_port]]
id = "rp1"
"#;

fn parse(extra: &str) -> Result<Spec, String> {
    Spec::parse(&format!("{BASE}{extra}"), "test.toml").map_err(|e| e.to_string())
}

#[test]
fn unknown_fields_are_rejected_with_their_location() {
    let error =
        parse("[[gpu]]\nid = \"g\"\nparent = \"rp0\"\nvram = \"1G\"\nvarm = 1\n").unwrap_err();
    assert!(error.starts_with("test.toml: "), "{error}");
    assert!(error.contains("unknown field `varm`"), "{error}");
}

#[test]
fn impossible_machines_are_rejected_with_a_reason() {
    let cases = [
        ("[[gpu]]\nid = \"g\"\nparent = \"nowhere\"\nvram = \"1G\"\n", "is no root port"),
        (
            "[[gpu]]\nid = \"a\"\nparent = \"rp0\"\nvram = \"1G\"\n[[gpu]]\nid = \"b\"\nparent = \"rp0\"\nvram = \"1G\"\n",
            "both sit on port \"rp0\"",
        ),
        (
            "[[switch]]\nid = \"s\"\nparent = \"rp0\"\ndownstream_ports = 2\n[[gpu]]\nid = \"g\"\nparent = \"s.2\"\nvram = \"1G\"\n",
            "has downstream ports 0..2",
        ),
        (
            "[[switch]]\nid = \"s\"\nparent = \"t.0\"\ndownstream_ports = 1\n[[switch]]\nid = \"t\"\nparent = \"s.0\"\ndownstream_ports = 1\n",
            "form a cycle",
        ),
        ("[[gpu]]\nid = \"g\"\nparent = \"rp0\"\nvram = \"1G\"\nxgmi_hive = 7\n", "xgmi_hive 7 is not declared"),
        ("[[gpu]]\nid = \"g\"\nparent = \"rp0\"\nvram = \"1G\"\ndma_mask_bits = 12\n", "dma_mask_bits must be 32..=64"),
        ("[[gpu]]\nid = \"g\"\nparent = \"rp0\"\nvram = \"1G\"\npcie = { gen = 6, width = 16 }\n", "pcie gen must be 1..=5"),
        ("[[gpu]]\nid = \"rp1\"\nparent = \"rp0\"\nvram = \"1G\"\n", "id \"rp1\" is used twice (lines 7 and 9)"),
        ("[[gpu]]\nid = \"node3\"\nparent = \"rp0\"\nvram = \"1G\"\n", "gpu id \"node3\" reads as a node id, nodeN or cpuN"),
        ("[[gpu]]\nid = \"2\"\nparent = \"rp0\"\nvram = \"1G\"\n", "gpu id \"2\" reads as a node id"),
        ("[[gpu]]\nid = \"cpu0\"\nparent = \"rp0\"\nvram = \"1G\"\n", "gpu id \"cpu0\" reads as a node id"),
        ("[[gpu]]\nid = \"gpu1\"\nparent = \"rp0\"\nvram = \"1G\"\n", "gpu id \"gpu1\" is GPU number 0 of the spec"),
        ("[[gpu]]\nid = \"g\"\nparent = \"rp0\"\nvram = \"lots\"\n", "invalid size \"lots\""),
    ];
    for (extra, expected) in cases {
        let error = parse(extra).unwrap_err();
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    }
}

/// Two hive members on rp0/rp1 and the hive's own lines.
fn hive(lines: &str) -> String {
    format!(
        "[[xgmi_hive]]\nid = 9\n{lines}\n[[gpu]]\nid = \"a\"\nparent = \"rp0\"\nvram = \"1G\"\nxgmi_hive = 9\n\
         [[gpu]]\nid = \"b\"\nparent = \"rp1\"\nvram = \"1G\"\nxgmi_hive = 9\n"
    )
}

/// XGMI wiring the PSP could not report: each refusal names the hive and the field.
#[test]
fn impossible_xgmi_wirings_are_rejected_naming_the_hive_and_field() {
    let link =
        |gpus: &str, count: u32| format!("[[xgmi_hive.link]]\ngpus = [{gpus}]\ncount = {count}\n");
    let cases = [
        (
            hive("wiring = \"links\""),
            "xgmi_hive 0x9: wiring = \"links\" needs [[xgmi_hive.link]] entries",
        ),
        (
            hive(&link("\"a\", \"b\"", 1)),
            "xgmi_hive 0x9: [[xgmi_hive.link]] entries need wiring = \"links\"",
        ),
        (
            hive(&format!(
                "wiring = \"links\"\nlinks_per_peer = 2\n{}",
                link("\"a\", \"b\"", 1)
            )),
            "xgmi_hive 0x9: links_per_peer applies to \"full\" and \"ring\" wiring",
        ),
        (
            hive("links_per_peer = 0"),
            "xgmi_hive 0x9: links_per_peer must be 1..=255",
        ),
        (
            hive(&format!("wiring = \"links\"\n{}", link("\"a\", \"c\"", 1))),
            "xgmi_hive 0x9: link.gpus names \"c\", which is not a GPU of this hive",
        ),
        (
            hive(&format!("wiring = \"links\"\n{}", link("\"a\", \"a\"", 1))),
            "link [\"a\", \"a\"]: link.gpus names one GPU twice",
        ),
        (
            hive(&format!("wiring = \"links\"\n{}", link("\"a\", \"b\"", 0))),
            "link [\"a\", \"b\"]: link.count must be 1..=255",
        ),
        (
            hive(&format!(
                "wiring = \"links\"\n{}{}",
                link("\"a\", \"b\"", 1),
                link("\"b\", \"a\"", 2)
            )),
            "link [\"b\", \"a\"]: the pair is listed twice",
        ),
    ];
    for (extra, expected) in cases {
        let error = parse(&extra).unwrap_err();
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    }
}

/// amdgpu_xgmi_get_hops_count reads 3 bits of the PSP's num_hops: a ring of 16 (8 hops across)
/// cannot be reported, nor can a member no link reaches.
#[test]
fn xgmi_hives_beyond_seven_hops_or_split_are_rejected() {
    let ports: String = (2..16)
        .map(|i| format!("[[root_port]]\nid = \"rp{i}\"\n"))
        .collect();
    let members: String = (0..16)
        .map(|i| {
            format!("[[gpu]]\nid = \"g{i}\"\nparent = \"rp{i}\"\nvram = \"1G\"\nxgmi_hive = 9\n")
        })
        .collect();
    let ring = format!("{ports}[[xgmi_hive]]\nid = 9\nwiring = \"ring\"\n{members}");
    let error = parse(&ring).unwrap_err();
    assert!(
        error.contains("\"g0\" and \"g8\" are 8 hops apart; amdgpu reports at most 7"),
        "{error}"
    );
    let fifteen = ring.replace(
        "[[gpu]]\nid = \"g15\"\nparent = \"rp15\"\nvram = \"1G\"\nxgmi_hive = 9\n",
        "",
    );
    parse(&fifteen).expect("a ring of 15 is at most 7 hops across");

    let split = format!(
        "[[root_port]]\nid = \"rp2\"\n{}[[gpu]]\nid = \"c\"\nparent = \"rp2\"\nvram = \"1G\"\nxgmi_hive = 9\n",
        hive("wiring = \"links\"\n[[xgmi_hive.link]]\ngpus = [\"a\", \"b\"]\ncount = 1\n")
    );
    let error = parse(&split).unwrap_err();
    assert!(
        error.contains("\"a\" and \"c\" are not connected by any path of links"),
        "{error}"
    );
}

/// Sizes and addresses near 2^64 never wrap: the spec is refused and the error names the GPU
/// and the field (a wrapped BAR would land on another GPU's and make a false peer).
#[test]
fn sizes_and_addresses_beyond_64_bits_are_refused_naming_the_field() {
    let gpu = |id: &str, port: &str, fields: &str| {
        format!("[[gpu]]\nid = \"{id}\"\nparent = \"{port}\"\n{fields}\n")
    };
    let cases = [
        (
            gpu("a", "rp0", "vram = \"18446744073709551615\"") + &gpu("b", "rp1", "vram = \"1G\""),
            "gpu \"a\": vram = \"18446744073709551615\" (the BAR size, as no `bar` is given): \
             the BAR placed at 0x2000000000 does not fit below 2^64",
        ),
        (
            gpu("a", "rp0", "vram = 9223372036854775807")
                + &gpu("b", "rp1", "vram = 9223372036854775807"),
            "gpu \"b\": vram = \"9223372036854775807\" (the BAR size, as no `bar` is given): \
             the BAR placed at 0x8000002000000000 does not fit below 2^64",
        ),
        (
            gpu("a", "rp0", "vram = \"1G\"\nbar = \"17179869183G\""),
            "gpu \"a\": bar = \"17179869183G\": the BAR placed at 0x2000000000 does not fit below 2^64",
        ),
        (
            gpu("a", "rp0", "vram = \"1G\"\nbar = \"17179869183G\"\nbar_address = 0x4000_0000_0000_0000"),
            "gpu \"a\": bar_address = 0x4000000000000000 + bar = \"17179869183G\" ends beyond 2^64",
        ),
        (
            gpu("a", "rp0", "vram = \"1G\"") + &gpu("b", "rp1", "vram = \"1G\"\nbar_address = 0x2000000000"),
            "gpu \"b\": its BAR 0x2000000000..0x2040000000 (vram = \"1G\" (the BAR size, as no \
             `bar` is given)) overlaps gpu \"a\"'s",
        ),
    ];
    for (extra, expected) in cases {
        let error = parse(&extra).unwrap_err();
        assert_eq!(
            error,
            format!("test.toml: {expected}"),
            "for spec lines\n{extra}"
        );
    }
}

fn switch_pair(acs: bool, whitelisted: bool) -> Spec {
    Spec::parse(
        &format!(
            r#"
name = "acs"
[platform]
host_bridge_whitelisted = {whitelisted}
[[cpu]]
[[root_port]]
id = "rp0"
[[switch]]
id = "sw"
parent = "rp0"
downstream_ports = 2
acs_redirect = {acs}
[[gpu]]
id = "a"
parent = "sw.0"
vram = "1G"
[[gpu]]
id = "b"
parent = "sw.1"
vram = "1G"
"#
        ),
        "acs.toml",
    )
    .unwrap()
}

#[test]
fn common_switch_without_acs_is_a_bus_address_path_of_distance_4() {
    let paths = LayoutP2pdma::new(&switch_pair(false, false));
    assert_eq!(paths.path(0, 1), P2pdmaPath::Switch { distance: 4 });
    assert_eq!(paths.path(1, 0), P2pdmaPath::Switch { distance: 4 });
}

#[test]
fn acs_redirect_sends_switch_traffic_to_the_host_bridge() {
    let refused = LayoutP2pdma::new(&switch_pair(true, false));
    assert_eq!(
        refused.path(0, 1),
        P2pdmaPath::NotSupported {
            acs_redirected: true
        }
    );
    let through_bridge = LayoutP2pdma::new(&switch_pair(true, true));
    assert_eq!(
        through_bridge.path(0, 1),
        P2pdmaPath::HostBridge {
            distance: 4,
            acs_redirected: true
        }
    );
}

#[test]
fn separate_root_ports_go_through_the_host_bridge_when_whitelisted() {
    let spec = Spec::parse(
        &format!(
            "{BASE}[platform]\nhost_bridge_whitelisted = true\n[[gpu]]\nid = \"a\"\nparent = \"rp0\"\nvram = \"1G\"\n[[gpu]]\nid = \"b\"\nparent = \"rp1\"\nvram = \"1G\"\n"
        ),
        "t.toml",
    );
    // [platform] after [[root_port]] tables is still a top-level table in TOML.
    let spec = spec.unwrap();
    let paths = LayoutP2pdma::new(&spec);
    assert_eq!(
        paths.path(0, 1),
        P2pdmaPath::HostBridge {
            distance: 4,
            acs_redirected: false
        }
    );
}
