//! The sysfs `properties` text format: `key value\n` lines, unsigned decimal values.
//!
//! Writers emit the kernel's key order. The parser follows what user space (libhsakmt) needs:
//! unknown keys are ignored, optional keys may be missing, values are u64; a malformed line is
//! rejected with its line number and the reason. The file name is the caller's business.

use core::fmt::{self, Write};

use crate::gate::PeerDenial;
use crate::link::{LinkFlags, LinkProperties, LinkType};
use crate::node::{HeapType, MemBankProperties, NodeCounts, NodeProperties, SystemProperties};

/// Why a properties text was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The line has a key but no value.
    MissingValue,
    /// The value is not an unsigned decimal number that fits in 64 bits.
    InvalidValue,
    /// More than `key value` on the line.
    TrailingText,
    /// The value does not fit the field (e.g. above u32::MAX for a 32-bit field).
    OutOfRange {
        /// Largest allowed value.
        max: u64,
    },
    /// A key the record needs is absent.
    MissingKey(&'static str),
    /// A key appears twice.
    DuplicateKey,
}

/// A rejected properties text: where and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number; `None` when the error concerns the whole file (a missing key).
    pub line: Option<u32>,
    /// The reason.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match self.kind {
            ParseErrorKind::MissingValue => f.write_str("key without a value"),
            ParseErrorKind::InvalidValue => {
                f.write_str("value is not an unsigned decimal number (u64)")
            }
            ParseErrorKind::TrailingText => f.write_str("unexpected text after the value"),
            ParseErrorKind::OutOfRange { max } => write!(f, "value exceeds {max}"),
            ParseErrorKind::MissingKey(key) => write!(f, "required key `{key}` is missing"),
            ParseErrorKind::DuplicateKey => f.write_str("key appears more than once"),
        }
    }
}

/// One `key value` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: u64,
    /// 1-based line number.
    pub line: u32,
}

/// Iterator over the `key value` lines of a properties text; blank lines are skipped.
pub struct Properties<'a> {
    lines: core::str::Lines<'a>,
    line: u32,
}

/// Iterates over the lines of `text`.
pub fn properties(text: &str) -> Properties<'_> {
    Properties {
        lines: text.lines(),
        line: 0,
    }
}

impl<'a> Iterator for Properties<'a> {
    type Item = Result<Property<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let raw = self.lines.next()?;
            self.line = self.line.saturating_add(1);
            let line = self.line;
            let mut words = raw.split_ascii_whitespace();
            let Some(key) = words.next() else {
                continue;
            };
            let error = |kind| {
                Some(Err(ParseError {
                    line: Some(line),
                    kind,
                }))
            };
            let Some(value) = words.next() else {
                return error(ParseErrorKind::MissingValue);
            };
            if words.next().is_some() {
                return error(ParseErrorKind::TrailingText);
            }
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                return error(ParseErrorKind::InvalidValue);
            }
            let Ok(value) = value.parse::<u64>() else {
                return error(ParseErrorKind::InvalidValue);
            };
            return Some(Ok(Property { key, value, line }));
        }
    }
}

/// The values found for a fixed list of keys, with their line numbers.
struct Record<const N: usize> {
    keys: [&'static str; N],
    values: [Option<(u64, u32)>; N],
}

impl<const N: usize> Record<N> {
    fn parse(text: &str, keys: [&'static str; N]) -> Result<Self, ParseError> {
        let mut record = Record {
            keys,
            values: [None; N],
        };
        for property in properties(text) {
            let property = property?;
            if let Some(index) = keys.iter().position(|key| *key == property.key) {
                if record.values[index].is_some() {
                    return Err(ParseError {
                        line: Some(property.line),
                        kind: ParseErrorKind::DuplicateKey,
                    });
                }
                record.values[index] = Some((property.value, property.line));
            }
        }
        Ok(record)
    }

    fn slot(&self, key: &'static str) -> Option<(u64, u32)> {
        let index = self.keys.iter().position(|k| *k == key)?;
        self.values[index]
    }

    fn required_u64(&self, key: &'static str) -> Result<u64, ParseError> {
        match self.slot(key) {
            Some((value, _)) => Ok(value),
            None => Err(ParseError {
                line: None,
                kind: ParseErrorKind::MissingKey(key),
            }),
        }
    }

    fn optional_u64(&self, key: &'static str) -> Option<u64> {
        self.slot(key).map(|(value, _)| value)
    }

    fn narrow(&self, key: &'static str, value: u64) -> Result<u32, ParseError> {
        u32::try_from(value).map_err(|_| ParseError {
            line: self.slot(key).map(|(_, line)| line),
            kind: ParseErrorKind::OutOfRange {
                max: u64::from(u32::MAX),
            },
        })
    }

    fn required_u32(&self, key: &'static str) -> Result<u32, ParseError> {
        let value = self.required_u64(key)?;
        self.narrow(key, value)
    }

    fn optional_u32(&self, key: &'static str) -> Result<Option<u32>, ParseError> {
        match self.optional_u64(key) {
            Some(value) => self.narrow(key, value).map(Some),
            None => Ok(None),
        }
    }

    fn u32_or_zero(&self, key: &'static str) -> Result<u32, ParseError> {
        Ok(self.optional_u32(key)?.unwrap_or(0))
    }
}

const LINK_KEYS: [&str; 13] = [
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
];

/// Writes a link's `properties` file (io_links and p2p_links alike), in the kernel's key order.
pub fn write_link_properties(w: &mut impl Write, link: &LinkProperties) -> fmt::Result {
    let values = [
        link.link_type.as_raw(),
        link.version_major,
        link.version_minor,
        link.node_from,
        link.node_to,
        link.weight,
        link.min_latency,
        link.max_latency,
        link.min_bandwidth,
        link.max_bandwidth,
        link.recommended_transfer_size,
        link.recommended_sdma_engine_id_mask,
        link.flags.0,
    ];
    for (key, value) in LINK_KEYS.iter().zip(values) {
        writeln!(w, "{key} {value}")?;
    }
    Ok(())
}

/// Parses a link's `properties` file. `type`, `node_from` and `node_to` are required; every
/// other field defaults to 0 when absent (older kernels lack `recommended_sdma_engine_id_mask`).
pub fn parse_link_properties(text: &str) -> Result<LinkProperties, ParseError> {
    let r = Record::parse(text, LINK_KEYS)?;
    Ok(LinkProperties {
        link_type: LinkType::from_raw(r.required_u32("type")?),
        version_major: r.u32_or_zero("version_major")?,
        version_minor: r.u32_or_zero("version_minor")?,
        node_from: r.required_u32("node_from")?,
        node_to: r.required_u32("node_to")?,
        weight: r.u32_or_zero("weight")?,
        min_latency: r.u32_or_zero("min_latency")?,
        max_latency: r.u32_or_zero("max_latency")?,
        min_bandwidth: r.u32_or_zero("min_bandwidth")?,
        max_bandwidth: r.u32_or_zero("max_bandwidth")?,
        recommended_transfer_size: r.u32_or_zero("recommended_transfer_size")?,
        recommended_sdma_engine_id_mask: r.u32_or_zero("recommended_sdma_engine_id_mask")?,
        flags: LinkFlags(r.u32_or_zero("flags")?),
    })
}

const NODE_KEYS: [&str; 19] = [
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
    // Not written by hsa-p2p, read only to tell CPU and GPU nodes apart on real trees.
    "cpu_core_id_base",
    "simd_id_base",
];

/// Writes a node's `properties` file, in the kernel's key order.
///
/// `p2p_links_count` is written only when `counts.p2p_links` is `Some`, as on kernels that
/// build p2p links.
pub fn write_node_properties(
    w: &mut impl Write,
    node: &NodeProperties,
    counts: &NodeCounts,
) -> fmt::Result {
    writeln!(w, "cpu_cores_count {}", node.cpu_cores_count)?;
    writeln!(w, "simd_count {}", node.simd_count)?;
    writeln!(w, "mem_banks_count {}", counts.mem_banks)?;
    writeln!(w, "caches_count {}", counts.caches)?;
    writeln!(w, "io_links_count {}", counts.io_links)?;
    if let Some(p2p_links) = counts.p2p_links {
        writeln!(w, "p2p_links_count {p2p_links}")?;
    }
    writeln!(w, "gfx_target_version {}", node.gfx_target_version)?;
    writeln!(w, "vendor_id {}", node.vendor_id)?;
    writeln!(w, "device_id {}", node.device_id)?;
    writeln!(w, "location_id {}", node.location_id)?;
    writeln!(w, "domain {}", node.domain)?;
    writeln!(w, "drm_render_minor {}", node.drm_render_minor)?;
    writeln!(w, "hive_id {}", node.hive_id)?;
    writeln!(w, "num_sdma_engines {}", node.num_sdma_engines)?;
    writeln!(w, "num_sdma_xgmi_engines {}", node.num_sdma_xgmi_engines)?;
    writeln!(w, "local_mem_size {}", node.local_mem_size)?;
    writeln!(w, "unique_id {}", node.unique_id)
}

/// Parses a node's `properties` file. Only `io_links_count` is required (every KFD version
/// has it); missing fields default to 0 and a missing `p2p_links_count` gives `None`.
pub fn parse_node_properties(text: &str) -> Result<(NodeProperties, NodeCounts), ParseError> {
    let r = Record::parse(text, NODE_KEYS)?;
    let node = NodeProperties {
        cpu_cores_count: r.u32_or_zero("cpu_cores_count")?,
        simd_count: r.u32_or_zero("simd_count")?,
        gfx_target_version: r.u32_or_zero("gfx_target_version")?,
        vendor_id: r.u32_or_zero("vendor_id")?,
        device_id: r.u32_or_zero("device_id")?,
        location_id: r.u32_or_zero("location_id")?,
        domain: r.u32_or_zero("domain")?,
        drm_render_minor: r.u32_or_zero("drm_render_minor")?,
        hive_id: r.optional_u64("hive_id").unwrap_or(0),
        num_sdma_engines: r.u32_or_zero("num_sdma_engines")?,
        num_sdma_xgmi_engines: r.u32_or_zero("num_sdma_xgmi_engines")?,
        local_mem_size: r.optional_u64("local_mem_size").unwrap_or(0),
        unique_id: r.optional_u64("unique_id").unwrap_or(0),
    };
    let counts = NodeCounts {
        mem_banks: r.u32_or_zero("mem_banks_count")?,
        caches: r.u32_or_zero("caches_count")?,
        io_links: r.required_u32("io_links_count")?,
        p2p_links: r.optional_u32("p2p_links_count")?,
    };
    Ok((node, counts))
}

const MEM_BANK_KEYS: [&str; 5] = [
    "heap_type",
    "size_in_bytes",
    "flags",
    "width",
    "mem_clk_max",
];

/// Writes a memory bank's `properties` file.
pub fn write_mem_bank_properties(w: &mut impl Write, bank: &MemBankProperties) -> fmt::Result {
    writeln!(w, "heap_type {}", bank.heap_type.as_raw())?;
    writeln!(w, "size_in_bytes {}", bank.size_in_bytes)?;
    writeln!(w, "flags {}", bank.flags)?;
    writeln!(w, "width {}", bank.width)?;
    writeln!(w, "mem_clk_max {}", bank.mem_clk_max)
}

/// Parses a memory bank's `properties` file; `heap_type` and `size_in_bytes` are required.
pub fn parse_mem_bank_properties(text: &str) -> Result<MemBankProperties, ParseError> {
    let r = Record::parse(text, MEM_BANK_KEYS)?;
    Ok(MemBankProperties {
        heap_type: HeapType::from_raw(r.required_u32("heap_type")?),
        size_in_bytes: r.required_u64("size_in_bytes")?,
        flags: r.u32_or_zero("flags")?,
        width: r.u32_or_zero("width")?,
        mem_clk_max: r.u32_or_zero("mem_clk_max")?,
    })
}

const SYSTEM_KEYS: [&str; 3] = ["platform_oem", "platform_id", "platform_rev"];

/// Writes the topology's `system_properties` file.
pub fn write_system_properties(w: &mut impl Write, system: &SystemProperties) -> fmt::Result {
    writeln!(w, "platform_oem {}", system.platform_oem)?;
    writeln!(w, "platform_id {}", system.platform_id)?;
    writeln!(w, "platform_rev {}", system.platform_rev)
}

/// Parses the topology's `system_properties` file; every key is optional.
pub fn parse_system_properties(text: &str) -> Result<SystemProperties, ParseError> {
    let r = Record::parse(text, SYSTEM_KEYS)?;
    Ok(SystemProperties {
        platform_oem: r.optional_u64("platform_oem").unwrap_or(0),
        platform_id: r.optional_u64("platform_id").unwrap_or(0),
        platform_rev: r.optional_u64("platform_rev").unwrap_or(0),
    })
}

/// Parses a file holding a single number (`generation_id`, `gpu_id`), surrounding whitespace
/// allowed.
pub fn parse_single_value(text: &str) -> Result<u64, ParseError> {
    let mut words = text.split_ascii_whitespace();
    let error = |kind| ParseError {
        line: Some(1),
        kind,
    };
    let value = words.next().ok_or(error(ParseErrorKind::MissingValue))?;
    if words.next().is_some() {
        return Err(error(ParseErrorKind::TrailingText));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(ParseErrorKind::InvalidValue));
    }
    value
        .parse()
        .map_err(|_| error(ParseErrorKind::InvalidValue))
}

const DENIAL_KEYS: [&str; 4] = ["node_from", "node_to", "reasons", "p2pdma_distance"];

/// Writes a `p2p_denials/N/properties` file (an hsa-p2p extension of the KFD tree: why the
/// accessing node `node_from` has no p2p link to `node_to`). `p2pdma_distance` is absent when
/// the PCI core refused the pair.
pub fn write_peer_denial(w: &mut impl Write, denial: &PeerDenial) -> fmt::Result {
    writeln!(w, "node_from {}", denial.node_from)?;
    writeln!(w, "node_to {}", denial.node_to)?;
    writeln!(w, "reasons {}", denial.reasons.bits())?;
    if let Some(distance) = denial.p2pdma_distance {
        writeln!(w, "p2pdma_distance {distance}")?;
    }
    Ok(())
}

/// Parses a `p2p_denials/N/properties` file.
pub fn parse_peer_denial(text: &str) -> Result<PeerDenial, ParseError> {
    let r = Record::parse(text, DENIAL_KEYS)?;
    Ok(PeerDenial {
        node_from: r.required_u32("node_from")?,
        node_to: r.required_u32("node_to")?,
        reasons: crate::gate::DenialReasons::from_bits(r.required_u32("reasons")?),
        p2pdma_distance: r.optional_u32("p2pdma_distance")?,
    })
}
