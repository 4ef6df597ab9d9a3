//! Host bridges, CPUs and PCI addresses in a spec, judged by the PCI core's rules
//! (drivers/pci/p2pdma.c: `cpu_supports_p2pdma`, `pci_p2pdma_whitelist`,
//! `__host_bridge_whitelist`, `host_bridge_whitelist`, `pci_host_bridge_dev`).

use hsa_p2p_runtime::predict::predict;
use hsa_p2p_runtime::spec::{LayoutP2pdma, Spec};

/// Two GPUs on root ports of host bridges `a` and `b` (`None`: no `[[host_bridge]]` at all),
/// with `platform` lines.
fn machine(platform: &str, a: Option<&str>, b: Option<&str>) -> String {
    let mut text = format!("name = \"hb\"\n[platform]\n{platform}\n[[cpu]]\n");
    let bridges: Vec<&str> = [a, b].into_iter().flatten().collect();
    let mut declared: Vec<String> = Vec::new();
    for bridge in &bridges {
        let (name, rest) = bridge.split_once(' ').unwrap();
        if !declared.iter().any(|d| d == name) {
            text += &format!("[[host_bridge]]\nid = \"{name}\"\n{rest}\n");
            declared.push(name.to_string());
        }
    }
    for (index, bridge) in [a, b].iter().enumerate() {
        text += &format!("[[root_port]]\nid = \"rp{index}\"\n");
        if let Some(bridge) = bridge {
            text += &format!("host_bridge = \"{}\"\n", bridge.split_once(' ').unwrap().0);
        }
    }
    for index in 0..2 {
        text += &format!("[[gpu]]\nid = \"g{index}\"\nparent = \"rp{index}\"\nvram = \"1G\"\n");
    }
    text
}

const SKYLAKE_0: &str = "s0 bus = 0x00\nvendor_id = 0x8086\ndevice_id = 0x2020";
const SKYLAKE_1: &str = "s1 bus = 0x80\nvendor_id = 0x8086\ndevice_id = 0x2030";
const HASWELL_0: &str = "h0 bus = 0x00\nvendor_id = 0x8086\ndevice_id = 0x2f00";
const HASWELL_1: &str = "h1 bus = 0x80\nvendor_id = 0x8086\ndevice_id = 0x2f00";
const Q35: &str = "q bus = 0x00\nvendor_id = 0x8086\ndevice_id = 0x29c0";
const GOOGLE: &str = "g bus = 0x00\nvendor_id = 0x1ae0\ndevice_id = 0x1234";
const GOOGLE_2: &str = "g2 bus = 0x40\nvendor_id = 0x1ae0\ndevice_id = 0x0042";

/// Whether the two GPUs on separate root ports may reach each other (the walk finds no
/// common bridge, so the host bridges decide).
#[test]
fn host_bridges_decide_as_the_pci_core_does() {
    let zen = "cpu_vendor = \"AuthenticAMD\"\ncpu_family = 0x17";
    /// (what, `[platform]` lines, host bridge of each GPU, P2P allowed).
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, bool);
    let cases: [Case<'_>; 12] = [
        ("no host bridge ids: not whitelisted", "", None, None, false),
        (
            "shorthand",
            "host_bridge_whitelisted = true",
            None,
            None,
            true,
        ),
        (
            "cpu_supports_p2pdma: AMD Zen (family 0x17)",
            zen,
            None,
            None,
            true,
        ),
        (
            "cpu_supports_p2pdma: AMD before Zen (family 0x15)",
            "cpu_vendor = \"AuthenticAMD\"\ncpu_family = 0x15",
            None,
            None,
            false,
        ),
        (
            "cpu_supports_p2pdma: Intel, any family",
            "cpu_vendor = \"GenuineIntel\"\ncpu_family = 0x19",
            None,
            None,
            false,
        ),
        (
            "AMD Zen trusts even unlisted host bridges",
            zen,
            Some(Q35),
            Some(Q35),
            true,
        ),
        (
            "q35 8086:29c0 is not on the whitelist",
            "",
            Some(Q35),
            Some(Q35),
            false,
        ),
        (
            "Skylake-E entries allow two host bridges",
            "",
            Some(SKYLAKE_0),
            Some(SKYLAKE_1),
            true,
        ),
        (
            "REQ_SAME_HOST_BRIDGE: one Haswell host bridge",
            "",
            Some(HASWELL_0),
            Some(HASWELL_0),
            true,
        ),
        (
            "REQ_SAME_HOST_BRIDGE: two Haswell host bridges",
            "",
            Some(HASWELL_0),
            Some(HASWELL_1),
            false,
        ),
        (
            "both bridges must be listed",
            "",
            Some(SKYLAKE_0),
            Some(HASWELL_1),
            false,
        ),
        (
            "PCI_ANY_ID: any Google device",
            "",
            Some(GOOGLE),
            Some(GOOGLE_2),
            true,
        ),
    ];
    for (what, platform, a, b, allowed) in cases {
        let text = machine(platform, a, b);
        let spec = Spec::parse(&text, "hb.toml").unwrap_or_else(|e| panic!("{what}: {e}"));
        let paths = LayoutP2pdma::new(&spec);
        for (provider, client) in [(0, 1), (1, 0)] {
            let distance = paths.path(provider, client).distance();
            assert_eq!(
                distance.is_some(),
                allowed,
                "{what}: {provider} <- {client}"
            );
            if allowed {
                assert_eq!(distance, Some(4), "{what}: two root ports, two hops each");
            }
        }
    }
}

/// Root ports sit on their host bridge's root bus and segment; buses are numbered from it,
/// and a GPU's explicit address becomes its KFD `domain` and `location_id`.
#[test]
fn addresses_follow_host_bridges_and_explicit_gpu_addresses() {
    let text = machine(
        "",
        Some("s1 segment = 2\nbus = 0x17\nvendor_id = 0x8086\ndevice_id = 0x2030"),
        Some(SKYLAKE_1),
    )
    .replace("id = \"g1\"\n", "id = \"g1\"\naddress = \"0000:86:00.0\"\n");
    let spec = Spec::parse(&text, "hb.toml").unwrap();
    let layout = spec.layout();
    let addresses: Vec<String> = (0..2)
        .map(|gpu| spec.gpu_address(&layout, gpu).to_string())
        .collect();
    assert_eq!(addresses, ["0002:18:00.0", "0000:86:00.0"]);
    let prediction = predict(&spec).unwrap();
    let gpu_nodes: Vec<(u32, u32)> = prediction
        .topology
        .nodes
        .iter()
        .filter(|node| node.is_gpu())
        .map(|node| (node.properties.domain, node.properties.location_id))
        .collect();
    assert_eq!(gpu_nodes, [(2, 0x1800), (0, 0x8600)]);
}

#[test]
fn host_bridge_mistakes_are_refused_naming_the_field() {
    let cases = [
        (
            machine("", Some(SKYLAKE_0), None),
            "root port \"rp1\": host_bridge is required when the spec declares [[host_bridge]]",
        ),
        (
            machine("", None, None).replace("id = \"rp0\"\n", "id = \"rp0\"\nhost_bridge = \"x\"\n"),
            "root port \"rp0\": host_bridge \"x\" names no [[host_bridge]]",
        ),
        (
            machine("", Some(SKYLAKE_0), Some("s1 bus = 0x01\nvendor_id = 0x8086\ndevice_id = 0x2030")),
            "host bridge \"s0\" (segment 0x0, buses 0x00..0x02) overlaps host bridge \"s1\"'s buses",
        ),
        (
            machine("", Some("s0 bus = 0xff\nvendor_id = 0x8086\ndevice_id = 0x2030"), Some(SKYLAKE_1)),
            "host bridge \"s0\" needs buses 0xff..0x101: more than 256 bus numbers",
        ),
        (machine("cpu_family = 0x19", None, None), "platform: cpu_family needs cpu_vendor"),
        (
            machine("", None, None).replace("id = \"g0\"\n", "id = \"g0\"\naddress = \"c1:00.0\"\n"),
            "gpu \"g0\": address \"c1:00.0\" is not a PCI address DDDD:BB:DD.F",
        ),
        (
            machine("", None, None)
                .replace("id = \"g0\"\n", "id = \"g0\"\naddress = \"0000:c1:00.0\"\n")
                .replace("id = \"g1\"\n", "id = \"g1\"\naddress = \"0000:c1:00.0\"\n"),
            "gpu \"g1\": address \"0000:c1:00.0\" is also gpu \"g0\"'s",
        ),
        (
            machine("", Some(SKYLAKE_0), Some(SKYLAKE_0)).replace("[[root_port]]\nid = \"rp0\"", "[[root_port]]\nid = \"s0\""),
            "id \"s0\" is used twice",
        ),
    ];
    for (text, expected) in cases {
        let error = Spec::parse(&text, "hb.toml").unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    }
}
