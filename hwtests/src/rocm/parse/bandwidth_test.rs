//! `rocm_bandwidth_test` (the 2.x "legacy" tool of ROCm 2 to 6) run with no arguments (`-a` +
//! `-A`): its devices, access matrix, NUMA distances and peak copy bandwidths.
//!
//! Output shape (2.0.1 titles in brackets):
//!
//! ```text
//!           RocmBandwidthTest Version: 2.6.0
//!           Device: 0,  AMD EPYC 7763 64-Core Processor
//!           Device: 2,  AMD Instinct MI100,  GPU-4a6fa69c0466a0f6,  23:0.0
//!           Inter-Device Access                       [Device Access]
//!           D/D       0         1  ...
//!           0         1         1  ...
//!           Inter-Device Numa Distance                [Device Numa Distance]
//!           Unidirectional copy peak bandwidth GB/s
//!           Bidirectional copy peak bandwidth GB/s    [Bdirectional ...]
//! ```
//!
//! Rows are sources, columns destinations; `N/A` marks a pair the tool did not measure (it
//! measures only pairs whose access is 1).

use super::{gigabytes_per_second, matrix, numbered, or_not_available, rows, ParseError, Row};

/// A GPU's PCI location as the tool prints it: bus, device and function, no domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusDevFn {
    /// Bus.
    pub bus: u8,
    /// Device.
    pub device: u8,
    /// Function.
    pub function: u8,
}

/// One HSA agent the tool lists.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// The tool's index (rows and columns of every matrix).
    pub index: usize,
    /// Marketing name.
    pub name: String,
    /// A GPU's PCI location; `None` for CPUs.
    pub location: Option<BusDevFn>,
}

/// A square matrix over the devices, rows = sources.
pub type Matrix<T> = Vec<Vec<T>>;

/// What one run printed.
#[derive(Clone, Debug, PartialEq)]
pub struct BandwidthTestReport {
    /// `RocmBandwidthTest Version`.
    pub version: String,
    /// Devices in index order.
    pub devices: Vec<Device>,
    /// 1 where the row device reaches the column device's memory.
    pub access: Matrix<bool>,
    /// Link weight between the devices, `None` where there is no path.
    pub numa_distance: Matrix<Option<u32>>,
    /// Peak unidirectional copy bandwidth, GB/s (absent when not run).
    pub unidirectional: Option<Matrix<Option<f64>>>,
    /// Peak bidirectional copy bandwidth (both directions together), GB/s.
    pub bidirectional: Option<Matrix<Option<f64>>>,
}

impl BandwidthTestReport {
    /// The GPUs, in index order.
    pub fn gpus(&self) -> impl Iterator<Item = &Device> {
        self.devices
            .iter()
            .filter(|device| device.location.is_some())
    }
}

const VERSION: &str = "RocmBandwidthTest Version:";
const ACCESS: &[&str] = &["Inter-Device Access", "Device Access"];
const NUMA: &[&str] = &["Inter-Device Numa Distance", "Device Numa Distance"];
const UNIDIRECTIONAL: &[&str] = &["Unidirectional copy peak bandwidth GB/s"];
const BIDIRECTIONAL: &[&str] = &[
    "Bidirectional copy peak bandwidth GB/s",
    // rocm_bandwidth_test 2.0.x spells it so.
    "Bdirectional copy peak bandwidth GB/s",
];

/// `19:0.0` (hex bus, device, function).
fn bus_dev_fn(text: &str) -> Option<BusDevFn> {
    let (bus, rest) = text.split_once(':')?;
    let (device, function) = rest.split_once('.')?;
    Some(BusDevFn {
        bus: u8::from_str_radix(bus, 16).ok()?,
        device: u8::from_str_radix(device, 16).ok().filter(|d| *d < 32)?,
        function: u8::from_str_radix(function, 16).ok().filter(|f| *f < 8)?,
    })
}

/// `Device: 2,  AMD Instinct MI100,  GPU-4a6f…,  23:0.0`.
fn device(line: usize, text: &str) -> Result<Device, ParseError> {
    let unexpected = || ParseError::Unexpected {
        line,
        expected: "\"Device: <index>,  <name>[,  <uuid>],  <bus:dev.fn>\"".into(),
        found: text.to_string(),
    };
    let rest = text.trim().strip_prefix("Device:").ok_or_else(unexpected)?;
    let fields: Vec<&str> = rest.split(',').map(str::trim).collect();
    let index = fields[0].parse().map_err(|_| unexpected())?;
    let location = fields.last().and_then(|last| bus_dev_fn(last));
    let name_fields = if location.is_some() {
        &fields[1..fields.len() - 1]
    } else {
        &fields[1..]
    };
    let name = name_fields
        .iter()
        .filter(|field| !field.starts_with("GPU-"))
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Device {
        index,
        name,
        location,
    })
}

/// The `count` rows of the table titled by one of `titles`, `None` when there is no such title.
fn table<'a>(
    lines: &[(usize, &'a str)],
    titles: &[&str],
    count: usize,
) -> Result<Option<Vec<Row<'a>>>, ParseError> {
    let Some(start) = lines
        .iter()
        .position(|(_, text)| titles.contains(&text.trim()))
    else {
        return Ok(None);
    };
    let mut content = lines[start + 1..]
        .iter()
        .filter(|(_, text)| !text.trim().is_empty());
    let (header_line, header) = content.next().copied().unwrap_or((start + 1, ""));
    let columns: Vec<&str> = header.split_whitespace().collect();
    let expected: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    if columns.first() != Some(&"D/D") || columns[1..] != expected {
        return Err(ParseError::Unexpected {
            line: header_line,
            expected: format!("the header \"D/D 0 .. {}\"", count.saturating_sub(1)),
            found: header.to_string(),
        });
    }
    rows(
        content.copied(),
        lines.len(),
        count,
        |index| format!("row {index} of \"{}\"", titles[0]),
        |index, label| label == index.to_string(),
    )
    .map(Some)
}

fn required<'a>(
    lines: &[(usize, &'a str)],
    titles: &'static [&'static str],
    count: usize,
) -> Result<Vec<Row<'a>>, ParseError> {
    table(lines, titles, count)?.ok_or(ParseError::MissingSection {
        section: titles[0],
        lines: lines.len(),
    })
}

/// What ROCm 7's rewritten rocm_bandwidth_test prints instead (TransferBench's tables).
const TRANSFER_BENCH_TABLE: &str = "copy peak bandwidth GB/s [";

/// Parses one run's output.
pub fn parse(text: &str) -> Result<BandwidthTestReport, ParseError> {
    let lines = numbered(text);
    if let Some((line, _)) = lines
        .iter()
        .find(|(_, text)| text.contains(TRANSFER_BENCH_TABLE))
    {
        return Err(ParseError::OtherFormat {
            line: *line,
            format: "TransferBench-style tables (the rocm_bandwidth_test of ROCm 7), not the \
                     2.x output: run TransferBench p2p for the rocm suite",
        });
    }
    let version = lines
        .iter()
        .find_map(|(_, line)| line.trim().strip_prefix(VERSION))
        .map(|version| version.trim().to_string())
        .ok_or(ParseError::MissingSection {
            section: VERSION,
            lines: lines.len(),
        })?;
    let devices = lines
        .iter()
        .filter(|(_, text)| text.trim_start().starts_with("Device:"))
        .map(|(line, text)| device(*line, text))
        .collect::<Result<Vec<_>, _>>()?;
    for (position, device) in devices.iter().enumerate() {
        if device.index != position {
            return Err(ParseError::Unexpected {
                line: lines
                    .iter()
                    .filter(|(_, text)| text.trim_start().starts_with("Device:"))
                    .nth(position)
                    .map_or(0, |(line, _)| *line),
                expected: format!("device {position}"),
                found: format!("device {}", device.index),
            });
        }
    }
    let count = devices.len();
    let access = matrix(
        &required(&lines, ACCESS, count)?,
        "0 or 1",
        |cell| match cell {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        },
    )?;
    let numa_distance = matrix(
        &required(&lines, NUMA, count)?,
        "a distance or N/A",
        or_not_available(|cell| cell.parse::<u32>().ok()),
    )?;
    let bandwidth = |titles| -> Result<Option<Matrix<Option<f64>>>, ParseError> {
        table(&lines, titles, count)?
            .map(|rows| {
                matrix(
                    &rows,
                    "a bandwidth in GB/s or N/A",
                    or_not_available(gigabytes_per_second),
                )
            })
            .transpose()
    };
    Ok(BandwidthTestReport {
        version,
        devices,
        access,
        numa_distance,
        unidirectional: bandwidth(UNIDIRECTIONAL)?,
        bidirectional: bandwidth(BIDIRECTIONAL)?,
    })
}
