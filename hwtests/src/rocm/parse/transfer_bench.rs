//! `TransferBench p2p`: the peer-to-peer preset's peak copy bandwidths between every CPU and
//! GPU (the same tables `rocm_bandwidth_test` 2.x of ROCm 7 prints, from the same engine).
//!
//! Output shape:
//!
//! ```text
//! Unidirectional copy peak bandwidth GB/s [Local read / Remote write] (GPU-Executor: GFX)
//!  SRC+EXE\DST    CPU 00    CPU 01       GPU 00    GPU 01
//!   CPU 00  ->     92.21    102.51        45.11     45.16
//!   GPU 00  ->     55.47     55.54      2132.28     57.39
//!                            CPU->CPU  CPU->GPU  GPU->CPU  GPU->GPU
//! Averages (During UniDir):    103.69     44.91     55.25     57.32
//!
//! Bidirectional copy peak bandwidth GB/s [Local read / Remote write] (GPU-Executor: GFX)
//!      SRC\DST    CPU 00    CPU 01       GPU 00    GPU 01
//!   GPU 00  ->     55.02     54.96          N/A     54.69
//!   GPU 00 <-      44.71     44.45          N/A     54.61
//!   GPU 00 <->     99.73     99.41          N/A    109.30
//! ```
//!
//! `->` rows are copies from the row device, `<-` to it, `<->` both together; newer versions
//! add `min`, `max` and `sd` rows, which are skipped. A run in which a transfer's data did not
//! match aborts with an error instead of printing its tables: the figures are of verified
//! copies (TransferBench validates every transfer unless told not to).

use super::{check_width, gigabytes_per_second, numbered, or_not_available, ParseError, Row};

/// A device of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// `CPU nn`: a NUMA node.
    Cpu(usize),
    /// `GPU nn`: a HIP device index (the KFD GPU nodes in order).
    Gpu(usize),
}

/// A square matrix over the devices, rows = sources.
pub type Matrix = Vec<Vec<Option<f64>>>;

/// What one `p2p` run printed.
#[derive(Clone, Debug, PartialEq)]
pub struct TransferBenchReport {
    /// `TransferBench vX`, when the output has it.
    pub version: Option<String>,
    /// Devices, in column order.
    pub devices: Vec<Device>,
    /// Unidirectional peak bandwidth, GB/s.
    pub unidirectional: Matrix,
    /// Bidirectional peak bandwidth (both directions together, the `<->` rows), GB/s.
    pub bidirectional: Option<Matrix>,
}

const UNIDIRECTIONAL: &str = "Unidirectional copy peak bandwidth GB/s";
const BIDIRECTIONAL: &str = "Bidirectional copy peak bandwidth GB/s";

fn devices(line: usize, header: &str) -> Result<Vec<Device>, ParseError> {
    let unexpected = || ParseError::Unexpected {
        line,
        expected: "a header \"SRC\\DST CPU 00 .. GPU nn\"".into(),
        found: header.to_string(),
    };
    let mut words = header.split_whitespace();
    if !words.next().is_some_and(|first| first.contains("\\DST")) {
        return Err(unexpected());
    }
    let words: Vec<&str> = words.collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(unexpected());
    }
    words
        .chunks(2)
        .map(|pair| {
            let index = pair[1].parse().map_err(|_| unexpected())?;
            match pair[0] {
                "CPU" => Ok(Device::Cpu(index)),
                "GPU" => Ok(Device::Gpu(index)),
                _ => Err(unexpected()),
            }
        })
        .collect()
}

/// The matrix of `direction` rows (`->` or `<->`) of the table titled `title`.
fn table(
    lines: &[(usize, &str)],
    title: &str,
    direction: &str,
) -> Result<Option<(Vec<Device>, Matrix)>, ParseError> {
    let Some(start) = lines
        .iter()
        .position(|(_, text)| text.trim_start().starts_with(title))
    else {
        return Ok(None);
    };
    let (header_line, header) = lines.get(start + 1).copied().unwrap_or((start + 1, ""));
    let devices = devices(header_line, header)?;
    let mut matrix = vec![Vec::new(); devices.len()];
    let mut seen = vec![false; devices.len()];
    for &(line, text) in &lines[start + 2..] {
        let words: Vec<&str> = text.split_whitespace().collect();
        // The averages' caption or the next table end this one.
        if words
            .first()
            .is_some_and(|word| word.contains("->") && word.len() > 2)
            || text.trim_start().starts_with("Averages")
            || text.contains("copy peak bandwidth")
        {
            break;
        }
        if words.is_empty() || words.get(2) != Some(&direction) {
            continue;
        }
        let device = match (words[0], words[1].parse::<usize>()) {
            ("CPU", Ok(index)) => Device::Cpu(index),
            ("GPU", Ok(index)) => Device::Gpu(index),
            _ => {
                return Err(ParseError::Unexpected {
                    line,
                    expected: "a row \"CPU nn ->\" or \"GPU nn ->\"".into(),
                    found: text.to_string(),
                })
            }
        };
        let Some(position) = devices.iter().position(|d| *d == device) else {
            return Err(ParseError::Unexpected {
                line,
                expected: "a device of the header".into(),
                found: text.to_string(),
            });
        };
        let row = Row {
            line,
            label: format!("{} {}", words[0], words[1]),
            cells: words[3..].to_vec(),
        };
        check_width(&row, devices.len())?;
        matrix[position] = super::matrix(
            std::slice::from_ref(&row),
            "a bandwidth in GB/s or N/A",
            or_not_available(gigabytes_per_second),
        )?
        .remove(0);
        seen[position] = true;
    }
    if let Some(missing) = seen.iter().position(|seen| !seen) {
        return Err(ParseError::Unexpected {
            line: header_line,
            expected: format!(
                "a \"{direction}\" row for {:?} in \"{title}\"",
                devices[missing]
            ),
            found: "none".into(),
        });
    }
    Ok(Some((devices, matrix)))
}

/// Parses the output of `TransferBench p2p`.
pub fn parse(text: &str) -> Result<TransferBenchReport, ParseError> {
    let lines = numbered(text);
    let version = lines.iter().find_map(|(_, line)| {
        line.trim()
            .strip_prefix("TransferBench v")
            .map(|version| version.trim().to_string())
    });
    let (devices, unidirectional) =
        table(&lines, UNIDIRECTIONAL, "->")?.ok_or(ParseError::MissingSection {
            section: UNIDIRECTIONAL,
            lines: lines.len(),
        })?;
    let bidirectional = match table(&lines, BIDIRECTIONAL, "<->")? {
        Some((columns, matrix)) if columns == devices => Some(matrix),
        Some(_) => {
            return Err(ParseError::Unexpected {
                line: lines
                    .iter()
                    .find(|(_, text)| text.contains(BIDIRECTIONAL))
                    .map_or(0, |(line, _)| *line + 1),
                expected: "the devices of the unidirectional table".into(),
                found: "other devices".into(),
            })
        }
        None => None,
    };
    Ok(TransferBenchReport {
        version,
        devices,
        unidirectional,
        bidirectional,
    })
}
