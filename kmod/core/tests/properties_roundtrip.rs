//! The sysfs `key value` format: writers and parsers round-trip, the parser tolerates what
//! user space must tolerate (unknown keys, any key order, blank lines, CRLF, missing optional
//! keys) and rejects malformed text with the right reason and line, never panicking.

mod common;

use hsa_p2p_core::gate::{DenialReasons, PeerDenial};
use hsa_p2p_core::link::{LinkFlags, LinkProperties};
use hsa_p2p_core::node::{
    HeapType, MemBankProperties, NodeCounts, NodeProperties, SystemProperties,
};
use hsa_p2p_core::properties::{
    parse_link_properties, parse_mem_bank_properties, parse_node_properties, parse_peer_denial,
    parse_single_value, parse_system_properties, properties, write_link_properties,
    write_mem_bank_properties, write_node_properties, write_peer_denial, write_system_properties,
    ParseError, ParseErrorKind,
};
use proptest::prelude::*;
use proptest::sample::{select, Index};

fn link_text(link: &LinkProperties) -> String {
    let mut text = String::new();
    write_link_properties(&mut text, link).unwrap();
    text
}

fn node_text(node: &NodeProperties, counts: &NodeCounts) -> String {
    let mut text = String::new();
    write_node_properties(&mut text, node, counts).unwrap();
    text
}

fn bank_text(bank: &MemBankProperties) -> String {
    let mut text = String::new();
    write_mem_bank_properties(&mut text, bank).unwrap();
    text
}

fn denial_text(denial: &PeerDenial) -> String {
    let mut text = String::new();
    write_peer_denial(&mut text, denial).unwrap();
    text
}

fn node_properties() -> impl Strategy<Value = NodeProperties> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (cpu_cores_count, simd_count, gfx_target_version, vendor_id),
                (device_id, location_id, domain, drm_render_minor),
                (hive_id, num_sdma_engines, num_sdma_xgmi_engines, local_mem_size, unique_id),
            )| NodeProperties {
                cpu_cores_count,
                simd_count,
                gfx_target_version,
                vendor_id,
                device_id,
                location_id,
                domain,
                drm_render_minor,
                hive_id,
                num_sdma_engines,
                num_sdma_xgmi_engines,
                local_mem_size,
                unique_id,
            },
        )
}

fn node_counts() -> impl Strategy<Value = NodeCounts> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(mem_banks, caches, io_links, p2p_links)| NodeCounts {
            mem_banks,
            caches,
            io_links,
            p2p_links,
        })
}

fn mem_bank() -> impl Strategy<Value = MemBankProperties> {
    (
        any::<u32>().prop_map(HeapType::from_raw),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(heap_type, size_in_bytes, flags, width, mem_clk_max)| MemBankProperties {
                heap_type,
                size_in_bytes,
                flags,
                width,
                mem_clk_max,
            },
        )
}

fn system() -> impl Strategy<Value = SystemProperties> {
    (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(platform_oem, platform_id, platform_rev)| SystemProperties {
            platform_oem,
            platform_id,
            platform_rev,
        },
    )
}

fn denial() -> impl Strategy<Value = PeerDenial> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(node_from, node_to, reasons, p2pdma_distance)| PeerDenial {
                node_from,
                node_to,
                reasons: DenialReasons::from_bits(reasons),
                p2pdma_distance,
            },
        )
}

/// Keys that none of the records knows.
fn unknown_key() -> impl Strategy<Value = String> {
    "[a-z_]{1,24}".prop_filter("a key some record knows", |key| {
        ![
            // link
            "type",
            "version_major",
            "version_minor",
            "node_from",
            "node_to",
            "weight",
            "min_latency",
            "max_latency",
            "min_bandwidth",
            "max_bandwidth",
            "recommended_transfer_size",
            "recommended_sdma_engine_id_mask",
            "flags",
            // node
            "cpu_cores_count",
            "simd_count",
            "mem_banks_count",
            "caches_count",
            "io_links_count",
            "p2p_links_count",
            "gfx_target_version",
            "vendor_id",
            "device_id",
            "location_id",
            "domain",
            "drm_render_minor",
            "hive_id",
            "num_sdma_engines",
            "num_sdma_xgmi_engines",
            "local_mem_size",
            "unique_id",
            "cpu_core_id_base",
            "simd_id_base",
            // mem bank, system, denial
            "heap_type",
            "size_in_bytes",
            "width",
            "mem_clk_max",
            "platform_oem",
            "platform_id",
            "platform_rev",
            "reasons",
            "p2pdma_distance",
        ]
        .contains(&key.as_str())
    })
}

/// Inserts `extra` lines into `text` at the positions `at` picks; returns the new text.
fn insert_lines(text: &str, extra: &[(Index, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (at, line) in extra {
        let position = at.index(lines.len() + 1);
        lines.insert(position, line.clone());
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Whether a parse result is well-formed for `text`: Ok, or an error whose line exists.
fn error_line_is_in_text(result: Result<(), ParseError>, text: &str) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        let lines = text.lines().count() as u32;
        match (error.line, error.kind) {
            (None, ParseErrorKind::MissingKey(_)) => {}
            (None, kind) => prop_assert!(false, "{kind:?} without a line number"),
            (Some(_), ParseErrorKind::MissingKey(_)) => {
                prop_assert!(false, "missing key reported on a line")
            }
            (Some(line), _) => prop_assert!(
                (1..=lines).contains(&line),
                "line {line} outside 1..={lines} in {text:?}"
            ),
        }
        // Display never panics either.
        let _ = error.to_string();
    }
    Ok(())
}

/// A text made of property-like lines: real and unknown keys, good and bad values, odd spacing.
fn property_like_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        select(vec![
            "type",
            "node_from",
            "node_to",
            "weight",
            "flags",
            "io_links_count",
            "p2p_links_count",
            "hive_id",
            "heap_type",
            "size_in_bytes",
            "reasons",
            "p2pdma_distance",
            "platform_id",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
        "\\PC{1,6}",
    ];
    let value = prop_oneof![
        any::<u32>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("0x10".to_owned()),
        Just("".to_owned()),
        "\\PC{1,4}",
    ];
    let space = select(vec![" ", "\t", "  ", " \t ", "\u{a0}", ""]);
    let line = prop_oneof![
        4 => (key, space.clone(), value, proptest::option::of("[ 0-9a-z]{1,4}"))
            .prop_map(|(k, s, v, trailing)| format!("{k}{s}{v}{}", trailing.map(|t| format!(" {t}")).unwrap_or_default())),
        1 => Just(String::new()),
        1 => "\\PC{0,12}",
    ];
    (
        proptest::collection::vec(line, 0..24),
        select(vec!["\n", "\r\n", "\r"]),
        any::<bool>(),
    )
        .prop_map(|(lines, newline, final_newline)| {
            let mut text = lines.join(newline);
            if final_newline {
                text.push_str(newline);
            }
            text
        })
}

proptest! {
    #![proptest_config(config!("properties_roundtrip", 256))]

    #[test]
    fn link_properties_round_trip(link in common::any_link()) {
        prop_assert_eq!(parse_link_properties(&link_text(&link)), Ok(link));
    }

    #[test]
    fn node_properties_and_counts_round_trip(node in node_properties(), counts in node_counts()) {
        let text = node_text(&node, &counts);
        prop_assert_eq!(text.contains("p2p_links_count"), counts.p2p_links.is_some());
        prop_assert_eq!(parse_node_properties(&text), Ok((node, counts)));
    }

    #[test]
    fn mem_bank_properties_round_trip(bank in mem_bank()) {
        prop_assert_eq!(parse_mem_bank_properties(&bank_text(&bank)), Ok(bank));
    }

    #[test]
    fn system_properties_round_trip(system in system()) {
        let mut text = String::new();
        write_system_properties(&mut text, &system).unwrap();
        prop_assert_eq!(parse_system_properties(&text), Ok(system));
    }

    #[test]
    fn peer_denial_round_trips(denial in denial()) {
        let text = denial_text(&denial);
        prop_assert_eq!(text.contains("p2pdma_distance"), denial.p2pdma_distance.is_some());
        prop_assert_eq!(parse_peer_denial(&text), Ok(denial));
    }

    #[test]
    fn single_values_round_trip_with_surrounding_whitespace(
        value in any::<u64>(),
        before in "[ \t\n]{0,3}",
        after in "[ \t\n]{0,3}",
    ) {
        prop_assert_eq!(parse_single_value(&format!("{before}{value}{after}")), Ok(value));
    }

    /// Every written line is `key value` with a decimal value, and the text ends with a newline.
    #[test]
    fn writers_emit_one_decimal_value_per_line(link in common::any_link(), node in node_properties(), counts in node_counts()) {
        for text in [link_text(&link), node_text(&node, &counts)] {
            prop_assert!(text.ends_with('\n'));
            for line in text.lines() {
                let words: Vec<&str> = line.split(' ').collect();
                prop_assert_eq!(words.len(), 2, "{:?}", line);
                prop_assert!(words[1].bytes().all(|b| b.is_ascii_digit()), "{:?}", line);
            }
        }
    }

    #[test]
    fn parsers_never_panic_and_report_lines_inside_the_text(text in property_like_text()) {
        error_line_is_in_text(parse_link_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_node_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_mem_bank_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_system_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_peer_denial(&text).map(drop), &text)?;
        for property in properties(&text) {
            match property {
                Ok(p) => {
                    prop_assert!(p.line >= 1 && p.line as usize <= text.lines().count());
                    prop_assert_eq!(text.lines().nth(p.line as usize - 1).unwrap().split_ascii_whitespace().next(), Some(p.key));
                }
                Err(error) => error_line_is_in_text(Err(error), &text)?,
            }
        }
        let _ = parse_single_value(&text);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in "\\PC*") {
        error_line_is_in_text(parse_link_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_node_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_mem_bank_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_system_properties(&text).map(drop), &text)?;
        error_line_is_in_text(parse_peer_denial(&text).map(drop), &text)?;
        let _ = parse_single_value(&text);
    }

    /// Unknown keys (anywhere, with any u64 value), blank lines, shuffled key order and CRLF line
    /// ends change nothing.
    #[test]
    fn unknown_keys_blank_lines_order_and_crlf_are_tolerated(
        link in common::any_link(),
        node in node_properties(),
        counts in node_counts(),
        extra in proptest::collection::vec((any::<Index>(), prop_oneof![
            (unknown_key(), any::<u64>()).prop_map(|(k, v)| format!("{k} {v}")),
            Just(String::new()),
            Just("   \t".to_owned()),
        ]), 0..6),
        shuffle_seed in any::<u64>(),
        crlf in any::<bool>(),
    ) {
        let shuffle = |text: String| {
            // A deterministic permutation of the lines from the seed.
            let mut lines: Vec<&str> = text.lines().collect();
            let mut state = shuffle_seed | 1;
            for i in (1..lines.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                lines.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut out = lines.join(if crlf { "\r\n" } else { "\n" });
            out.push('\n');
            out
        };
        let link_variant = shuffle(insert_lines(&link_text(&link), &extra));
        prop_assert_eq!(parse_link_properties(&link_variant), Ok(link));
        let node_variant = shuffle(insert_lines(&node_text(&node, &counts), &extra));
        prop_assert_eq!(parse_node_properties(&node_variant), Ok((node, counts)));
    }

    /// Optional keys may be missing: the field reads as 0 (`p2p_links_count`: None). Dropping a
    /// required key gives `MissingKey` without a line number.
    #[test]
    fn missing_keys_default_or_are_reported(link in common::any_link(), drop_mask in any::<u16>()) {
        let text = link_text(&link);
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| drop_mask & (1 << i) == 0)
            .map(|(_, line)| line)
            .collect();
        let dropped = |key: &str| !kept.iter().any(|line| line.split(' ').next() == Some(key));
        let result = parse_link_properties(&kept.join("\n"));
        let first_required_missing = ["type", "node_from", "node_to"].into_iter().find(|k| dropped(k));
        match first_required_missing {
            Some(key) => prop_assert_eq!(
                result,
                Err(ParseError { line: None, kind: ParseErrorKind::MissingKey(key) })
            ),
            None => {
                let zero_if = |key: &str, value: u32| if dropped(key) { 0 } else { value };
                let expected = LinkProperties {
                    version_major: zero_if("version_major", link.version_major),
                    version_minor: zero_if("version_minor", link.version_minor),
                    weight: zero_if("weight", link.weight),
                    min_latency: zero_if("min_latency", link.min_latency),
                    max_latency: zero_if("max_latency", link.max_latency),
                    min_bandwidth: zero_if("min_bandwidth", link.min_bandwidth),
                    max_bandwidth: zero_if("max_bandwidth", link.max_bandwidth),
                    recommended_transfer_size: zero_if("recommended_transfer_size", link.recommended_transfer_size),
                    recommended_sdma_engine_id_mask: zero_if("recommended_sdma_engine_id_mask", link.recommended_sdma_engine_id_mask),
                    flags: LinkFlags(zero_if("flags", link.flags.0)),
                    ..link
                };
                prop_assert_eq!(result, Ok(expected));
            }
        }
    }

    /// One malformed line among good ones is reported with its 1-based line number (blank lines
    /// count) and the right reason.
    #[test]
    fn a_malformed_line_is_reported_with_its_number_and_reason(
        link in common::any_link(),
        victim in any::<Index>(),
        blank_lines in any::<Index>(),
        defect in 0u8..8,
        big in (u64::from(u32::MAX) + 1)..=u64::MAX,
    ) {
        let mut lines: Vec<String> = link_text(&link).lines().map(str::to_owned).collect();
        let victim = victim.index(lines.len());
        let key = lines[victim].split(' ').next().unwrap().to_owned();
        let (replacement, kind) = match defect {
            0 => (key.clone(), ParseErrorKind::MissingValue),
            1 => (format!("{key} 1 2"), ParseErrorKind::TrailingText),
            2 => (format!("{key} -1"), ParseErrorKind::InvalidValue),
            3 => (format!("{key} 0x10"), ParseErrorKind::InvalidValue),
            4 => (format!("{key} 1.5"), ParseErrorKind::InvalidValue),
            5 => (format!("{key} 18446744073709551616"), ParseErrorKind::InvalidValue),
            6 => (format!("{key} {big}"), ParseErrorKind::OutOfRange { max: u64::from(u32::MAX) }),
            _ => (format!("\t{key}\t+7 "), ParseErrorKind::InvalidValue),
        };
        lines[victim] = replacement;
        // Blank lines before the victim shift its number.
        let blanks = blank_lines.index(3);
        for _ in 0..blanks {
            lines.insert(0, String::new());
        }
        let text = lines.join("\n");
        prop_assert_eq!(
            parse_link_properties(&text),
            Err(ParseError { line: Some((victim + blanks + 1) as u32), kind })
        );
    }

    /// A key given twice is rejected at its second occurrence, even with the same value.
    #[test]
    fn duplicate_keys_are_rejected_at_the_second_occurrence(bank in mem_bank(), which in any::<Index>(), same_value in any::<bool>()) {
        let text = bank_text(&bank);
        let lines: Vec<&str> = text.lines().collect();
        let line = lines[which.index(lines.len())];
        let duplicate = if same_value {
            line.to_owned()
        } else {
            format!("{} 7", line.split(' ').next().unwrap())
        };
        let doubled = format!("{text}{duplicate}\n");
        prop_assert_eq!(
            parse_mem_bank_properties(&doubled),
            Err(ParseError { line: Some(lines.len() as u32 + 1), kind: ParseErrorKind::DuplicateKey })
        );
    }

    /// Unknown keys with malformed-looking but valid lines still have to be syntactically valid:
    /// the parser checks every line, known key or not.
    #[test]
    fn malformed_unknown_lines_are_still_rejected(system in system(), key in unknown_key()) {
        let mut text = String::new();
        write_system_properties(&mut text, &system).unwrap();
        text.push_str(&format!("{key} not_a_number\n"));
        prop_assert_eq!(
            parse_system_properties(&text),
            Err(ParseError { line: Some(4), kind: ParseErrorKind::InvalidValue })
        );
    }
}

#[test]
fn link_writer_uses_the_kernel_key_order() {
    let keys: Vec<String> = link_text(&LinkProperties::new(
        hsa_p2p_core::link::LinkType::Pcie,
        1,
        2,
    ))
    .lines()
    .map(|line| line.split(' ').next().unwrap().to_owned())
    .collect();
    assert_eq!(
        keys,
        [
            "type",
            "version_major",
            "version_minor",
            "node_from",
            "node_to",
            "weight",
            "min_latency",
            "max_latency",
            "min_bandwidth",
            "max_bandwidth",
            "recommended_transfer_size",
            "recommended_sdma_engine_id_mask",
            "flags",
        ]
    );
}

#[test]
fn older_kernels_node_file_parses_without_p2p_links_count() {
    // A trimmed real GPU node file of a kernel without p2p links, with keys hsa-p2p ignores.
    let text = "cpu_cores_count 0\nsimd_count 304\nmem_banks_count 1\ncaches_count 203\n\
                io_links_count 1\ncpu_core_id_base 0\nsimd_id_base 2147487744\nmax_waves_per_simd 10\n\
                lds_size_in_kb 64\ngds_size_in_kb 0\nwave_front_size 64\narray_count 8\n\
                gfx_target_version 90008\nvendor_id 4098\ndevice_id 29580\nlocation_id 17152\n\
                domain 0\ndrm_render_minor 128\nhive_id 0\nnum_sdma_engines 2\n\
                num_sdma_xgmi_engines 0\nlocal_mem_size 34342961152\nunique_id 12345\n";
    let (node, counts) = parse_node_properties(text).unwrap();
    assert_eq!(counts.p2p_links, None);
    assert_eq!(counts.io_links, 1);
    assert_eq!(counts.caches, 203);
    assert_eq!(node.simd_count, 304);
    assert_eq!(node.location_id, 17152);
    assert_eq!(node.local_mem_size, 34_342_961_152);
    assert_eq!(
        parse_node_properties("simd_count 4\n"),
        Err(ParseError {
            line: None,
            kind: ParseErrorKind::MissingKey("io_links_count")
        })
    );
}

#[test]
fn single_value_files_reject_garbage() {
    let error = |kind| {
        Err(ParseError {
            line: Some(1),
            kind,
        })
    };
    assert_eq!(parse_single_value(""), error(ParseErrorKind::MissingValue));
    assert_eq!(
        parse_single_value(" \n"),
        error(ParseErrorKind::MissingValue)
    );
    assert_eq!(
        parse_single_value("1 2"),
        error(ParseErrorKind::TrailingText)
    );
    assert_eq!(
        parse_single_value("-3"),
        error(ParseErrorKind::InvalidValue)
    );
    assert_eq!(
        parse_single_value("18446744073709551616"),
        error(ParseErrorKind::InvalidValue)
    );
    assert_eq!(parse_single_value("18446744073709551615\n"), Ok(u64::MAX));
}
