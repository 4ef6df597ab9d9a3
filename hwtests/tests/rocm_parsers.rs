//! The ROCm tools' parsers on real published outputs (`tests/fixtures/rocm/outputs`, sources
//! in its README) and on malformed ones, which must fail naming the line.

mod common;

use hsa_p2p_core::link::LinkType;
use hsa_p2p_hwtests::rocm::parse::bandwidth_test::BusDevFn;
use hsa_p2p_hwtests::rocm::parse::{amd_smi, bandwidth_test, rocm_smi, transfer_bench, ParseError};

fn output(name: &str) -> String {
    std::fs::read_to_string(common::fixture("rocm/outputs").join(name)).unwrap()
}

/// Every published output, parsed, as a snapshot (one per file).
#[test]
fn published_outputs_parse_to_their_snapshots() {
    let mut parsed = 0;
    for entry in std::fs::read_dir(common::fixture("rocm/outputs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let text = output(&name);
        let report = if name.starts_with("rocm_bandwidth_test-") {
            format!("{:#?}", bandwidth_test::parse(&text).unwrap())
        } else if name.starts_with("transfer-bench-") {
            format!("{:#?}", transfer_bench::parse(&text).unwrap())
        } else if name.starts_with("rocm-smi-") {
            format!("{:#?}", rocm_smi::parse(&text).unwrap())
        } else if name.starts_with("amd-smi-") {
            format!("{:#?}", amd_smi::parse(&text).unwrap())
        } else {
            continue;
        };
        insta::assert_snapshot!(name.trim_end_matches(".txt"), report);
        parsed += 1;
    }
    assert_eq!(
        parsed, 9,
        "a fixture was added or lost: list it here and in the README"
    );
}

#[test]
fn bandwidth_test_2_0_1_with_peer_access() {
    let report =
        bandwidth_test::parse(&output("rocm_bandwidth_test-2.0.1-wx8100-p2p.txt")).unwrap();
    assert_eq!(report.version, "2.0.1");
    assert_eq!(report.devices.len(), 3);
    assert_eq!(report.devices[0].location, None);
    assert_eq!(
        report.devices[1].location,
        Some(BusDevFn {
            bus: 0x19,
            device: 0,
            function: 0
        })
    );
    assert_eq!(report.devices[1].name, "Vega 10 [Radeon PRO WX 8100]");
    assert!(report.access[1][2] && report.access[2][1]);
    assert_eq!(report.numa_distance[1][2], Some(40));
    assert_eq!(
        report.unidirectional.as_ref().unwrap()[1][2],
        Some(10.261399)
    );
    // 2.0.1 spells the title "Bdirectional".
    assert_eq!(report.bidirectional.as_ref().unwrap()[2][1], Some(18.90725));
    assert_eq!(report.bidirectional.as_ref().unwrap()[0][0], None);
}

#[test]
fn bandwidth_test_2_6_0_small_bar_has_no_peer_access() {
    let report =
        bandwidth_test::parse(&output("rocm_bandwidth_test-2.6.0-mi50-small-bar.txt")).unwrap();
    assert_eq!(report.version, "2.6.0");
    assert!(!report.access[1][2] && !report.access[2][1]);
    assert_eq!(report.numa_distance[1][2], None);
    assert_eq!(report.unidirectional.as_ref().unwrap()[1][2], None);
    assert_eq!(report.unidirectional.as_ref().unwrap()[1][0], Some(14.28));
}

#[test]
fn transfer_bench_p2p_keeps_the_bidirectional_totals() {
    let report = transfer_bench::parse(&output("transfer-bench-1.62-p2p-8gpu-mi350x.txt")).unwrap();
    assert_eq!(report.devices.len(), 10);
    assert_eq!(report.devices[2], transfer_bench::Device::Gpu(0));
    assert_eq!(report.unidirectional[2][3], Some(57.39));
    assert_eq!(report.unidirectional[9][3], Some(46.66));
    let bidirectional = report.bidirectional.unwrap();
    assert_eq!(bidirectional[2][3], Some(109.30));
    assert_eq!(bidirectional[5][8], Some(79.33));
    assert_eq!(bidirectional[2][2], None);
}

#[test]
fn smi_tools_read_link_types_weights_and_hops() {
    let smi = rocm_smi::parse(&output("rocm-smi-showtopo-8gpu-xgmi-mi308x.txt")).unwrap();
    assert_eq!(smi.gpus, 8);
    assert_eq!(smi.weight[0][7], Some(15));
    assert_eq!(smi.hops[3][4], Some(1));
    assert_eq!(smi.link_type[6][1], Some(LinkType::Xgmi));
    assert_eq!(smi.link_type[2][2], None);
    assert_eq!(smi.addresses, None);
    let pcie = rocm_smi::parse(&output("rocm-smi-showtopo-4gpu-pcie-two-sockets.txt")).unwrap();
    assert_eq!((pcie.weight[0][1], pcie.hops[0][1]), (Some(52), Some(3)));
    assert_eq!(pcie.link_type[3][0], Some(LinkType::Pcie));
    let amd = amd_smi::parse(&output("amd-smi-topology-2gpu-pcie-no-p2p.txt")).unwrap();
    assert_eq!(amd.gpus[1].to_string(), "0000:0c:00.0");
    assert_eq!(amd.access, vec![vec![true, false], vec![false, true]]);
    assert_eq!((amd.weight[0][1], amd.hops[0][1]), (40, 2));
    assert_eq!(amd.link_type[0][1], Some(LinkType::Pcie));
}

#[test]
fn rocm_smi_with_showbus_maps_gpus_to_addresses() {
    let mut text = output("rocm-smi-showtopo-4gpu-pcie-two-sockets.txt");
    for (gpu, bus) in ["03", "23", "83", "a3"].iter().enumerate() {
        text.push_str(&format!("GPU[{gpu}]\t\t: PCI Bus: 0000:{bus}:00.0\n"));
    }
    let smi = rocm_smi::parse(&text).unwrap();
    let addresses: Vec<String> = smi
        .addresses
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        addresses,
        [
            "0000:03:00.0",
            "0000:23:00.0",
            "0000:83:00.0",
            "0000:a3:00.0"
        ]
    );
}

/// `fixture` with its line `line` (1-based) replaced.
fn malformed(fixture: &str, line: usize, replacement: &str) -> String {
    let text = output(fixture);
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = replacement;
    lines.join("\n") + "\n"
}

#[test]
fn malformed_outputs_fail_naming_the_line() {
    let wx = "rocm_bandwidth_test-2.0.1-wx8100-p2p.txt";
    let bad_cell = malformed(
        wx,
        39,
        "          1         14.285625   388.648245  fast        ",
    );
    assert_eq!(
        bandwidth_test::parse(&bad_cell),
        Err(ParseError::BadCell {
            line: 39,
            column: 2,
            cell: "fast".into(),
            expected: "a bandwidth in GB/s or N/A"
        })
    );
    let short_row = malformed(wx, 17, "          1         1         1");
    assert!(matches!(
        bandwidth_test::parse(&short_row),
        Err(ParseError::RowWidth {
            line: 17,
            expected: 3,
            found: 2,
            ..
        })
    ));
    let bad_access = malformed(wx, 17, "          1         1         1         2");
    assert!(matches!(
        bandwidth_test::parse(&bad_access),
        Err(ParseError::BadCell {
            line: 17,
            column: 2,
            ..
        })
    ));
    let no_version = output(wx).replace("RocmBandwidthTest Version: 2.0.1", "");
    assert!(matches!(
        bandwidth_test::parse(&no_version),
        Err(ParseError::MissingSection {
            section: "RocmBandwidthTest Version:",
            ..
        })
    ));
    let no_access = output(wx).replace("Device Access", "Device Axxess");
    assert!(matches!(
        bandwidth_test::parse(&no_access),
        Err(ParseError::MissingSection {
            section: "Inter-Device Access",
            ..
        })
    ));

    let tb = "transfer-bench-1.62-p2p-8gpu-mi350x.txt";
    // ROCm 7's rocm_bandwidth_test prints TransferBench's tables: said so, with the line.
    assert!(matches!(
        bandwidth_test::parse(&output(tb)),
        Err(ParseError::OtherFormat { line: 1, .. })
    ));
    let bad_header = malformed(tb, 2, " SRC+EXE\\DST    CPU 00    CPU");
    assert!(matches!(
        transfer_bench::parse(&bad_header),
        Err(ParseError::Unexpected { line: 2, .. })
    ));
    let bad_value = malformed(
        tb,
        7,
        "  GPU 01  ->     55.59     55.66        57.41   2152.51     57.58     57.52     57.65     57.37     57.65     oops",
    );
    assert!(matches!(
        transfer_bench::parse(&bad_value),
        Err(ParseError::BadCell {
            line: 7,
            column: 9,
            ..
        })
    ));

    let smi = "rocm-smi-showtopo-8gpu-xgmi-mi308x.txt";
    let bad_link = malformed(
        smi,
        28,
        "GPU0   0            NVLINK       XGMI         XGMI         XGMI         XGMI         XGMI         XGMI",
    );
    assert_eq!(
        rocm_smi::parse(&bad_link),
        Err(ParseError::BadCell {
            line: 28,
            column: 1,
            cell: "NVLINK".into(),
            expected: "PCIE or XGMI"
        })
    );
    let missing_row = malformed(smi, 13, "");
    assert!(matches!(
        rocm_smi::parse(&missing_row),
        Err(ParseError::Unexpected { line: 13, .. })
    ));

    let amd = "amd-smi-topology-2gpu-pcie-no-p2p.txt";
    let bad_access = malformed(amd, 3, "0000:03:00.0 ENABLED      MAYBE");
    assert!(matches!(
        amd_smi::parse(&bad_access),
        Err(ParseError::BadCell {
            line: 3,
            column: 1,
            ..
        })
    ));
    let other_gpu = malformed(amd, 8, "0000:03:00.0 0            40");
    assert!(matches!(
        amd_smi::parse(&other_gpu),
        Err(ParseError::Unexpected { line: 8, .. })
    ));
    assert!(matches!(
        amd_smi::parse("WEIGHT TABLE:\n"),
        Err(ParseError::MissingSection {
            section: "ACCESS TABLE:",
            lines: 1
        })
    ));
}
