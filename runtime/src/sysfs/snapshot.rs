//! One pass over a sysfs tree: every file read once, parsed, and the counts cross-checked
//! against the directories found.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hsa_p2p_core::gate::PeerDenial;
use hsa_p2p_core::link::LinkProperties;
use hsa_p2p_core::properties::{
    parse_link_properties, parse_mem_bank_properties, parse_node_properties, parse_peer_denial,
    parse_single_value, parse_system_properties, ParseError,
};
use hsa_p2p_core::topology::{Node, Topology};

use super::error::{FileParseError, ReadError};

/// Reads the tree under `root` once, without consistency checks across nodes.
pub(super) fn read_snapshot(root: &Path) -> Result<Topology, ReadError> {
    let generation_id = read_value(&root.join("generation_id"), "topology")?;
    let system_path = root.join("system_properties");
    // Old kernels and some container views lack system_properties; nothing depends on it.
    let system = match read_optional_text(&system_path)? {
        Some(text) => parse(&system_path, &text, parse_system_properties)?,
        None => Default::default(),
    };
    let nodes_dir = root.join("nodes");
    let nodes = numbered_entries(&nodes_dir)?
        .into_iter()
        .map(|(id, dir)| read_node(id, &dir))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Topology {
        generation_id,
        system,
        nodes,
    })
}

fn read_node(id: u32, dir: &Path) -> Result<Node, ReadError> {
    const WHAT: &str = "node directory";
    let gpu_id = read_value(&dir.join("gpu_id"), WHAT)?;
    let gpu_id = u32::try_from(gpu_id).map_err(|_| ReadError::Inconsistent {
        path: dir.join("gpu_id"),
        message: format!("gpu_id {gpu_id} does not fit in 32 bits"),
    })?;
    let name = read_required_text(&dir.join("name"), WHAT)?
        .trim_end_matches('\n')
        .to_string();
    let properties_path = dir.join("properties");
    let text = read_required_text(&properties_path, WHAT)?;
    let (properties, counts) = parse(&properties_path, &text, parse_node_properties)?;

    let mem_banks = read_records(&dir.join("mem_banks"), parse_mem_bank_properties)?;
    let io_links = read_records(&dir.join("io_links"), parse_link_properties)?;
    let p2p_links: Vec<(PathBuf, LinkProperties)> =
        read_records(&dir.join("p2p_links"), parse_link_properties)?;
    let p2p_denials: Vec<(PathBuf, PeerDenial)> =
        read_records(&dir.join("p2p_denials"), parse_peer_denial)?;

    let check_count = |key: &'static str, declared: u32, found: usize| {
        if declared as usize == found {
            Ok(())
        } else {
            Err(ReadError::CountMismatch {
                path: properties_path.clone(),
                key,
                declared,
                found,
            })
        }
    };
    check_count("io_links_count", counts.io_links, io_links.len())?;
    check_count("mem_banks_count", counts.mem_banks, mem_banks.len())?;
    match counts.p2p_links {
        Some(declared) => check_count("p2p_links_count", declared, p2p_links.len())?,
        None if !p2p_links.is_empty() => {
            return Err(ReadError::Inconsistent {
                path: properties_path,
                message: format!(
                    "no p2p_links_count key, yet {} p2p_links directories exist",
                    p2p_links.len()
                ),
            })
        }
        None => {}
    }
    for (path, link) in io_links.iter().chain(&p2p_links) {
        if link.node_from != id {
            return Err(ReadError::MisplacedLink {
                path: path.clone(),
                node: id,
                node_from: link.node_from,
            });
        }
    }
    for (path, denial) in &p2p_denials {
        if denial.node_from != id {
            return Err(ReadError::MisplacedLink {
                path: path.clone(),
                node: id,
                node_from: denial.node_from,
            });
        }
    }
    Ok(Node {
        id,
        gpu_id,
        name,
        properties,
        reports_p2p_links: counts.p2p_links.is_some(),
        mem_banks: mem_banks.into_iter().map(|(_, bank)| bank).collect(),
        io_links: io_links.into_iter().map(|(_, link)| link).collect(),
        p2p_links: p2p_links.into_iter().map(|(_, link)| link).collect(),
        p2p_denials: p2p_denials.into_iter().map(|(_, denial)| denial).collect(),
    })
}

/// The properties file of entry `index` of a node's `dir` (`io_links`, `p2p_links`, …).
pub(super) fn entry_file(root: &Path, node: u32, dir: &str, index: usize) -> PathBuf {
    root.join(format!("nodes/{node}/{dir}/{index}/properties"))
}

/// `DIR/N/properties` for every numbered entry of `dir` (absent `dir` = no entries).
fn read_records<T>(
    dir: &Path,
    parse_text: fn(&str) -> Result<T, ParseError>,
) -> Result<Vec<(PathBuf, T)>, ReadError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    numbered_entries(dir)?
        .into_iter()
        .map(|(_, entry)| {
            let path = entry.join("properties");
            let text = read_required_text(&path, "link or memory bank directory")?;
            let record = parse(&path, &text, parse_text)?;
            Ok((path, record))
        })
        .collect()
}

/// The entries of `dir` named 0..n, sorted numerically; gaps and non-numeric names are errors.
fn numbered_entries(dir: &Path) -> Result<Vec<(u32, PathBuf)>, ReadError> {
    let io_error = |source| ReadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let number = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
            .ok_or_else(|| ReadError::BadDirectoryName { path: path.clone() })?;
        entries.push((number, path));
    }
    entries.sort_by_key(|(number, _)| *number);
    let contiguous = entries
        .iter()
        .enumerate()
        .all(|(index, (number, _))| *number as usize == index);
    if !contiguous {
        return Err(ReadError::NumberingGap {
            path: dir.to_path_buf(),
            count: entries.len(),
            found: entries.iter().map(|(number, _)| *number).collect(),
        });
    }
    Ok(entries)
}

fn parse<T>(
    path: &Path,
    text: &str,
    parse_text: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, ReadError> {
    parse_text(text).map_err(|error| ReadError::Parse {
        path: path.to_path_buf(),
        error: FileParseError(error),
    })
}

fn read_value(path: &Path, what: &'static str) -> Result<u64, ReadError> {
    let text = read_required_text(path, what)?;
    parse(path, &text, parse_single_value)
}

fn read_required_text(path: &Path, what: &'static str) -> Result<String, ReadError> {
    read_optional_text(path)?.ok_or_else(|| ReadError::MissingFile {
        path: path.to_path_buf(),
        what,
    })
}

fn read_optional_text(path: &Path) -> Result<Option<String>, ReadError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ReadError::NotText {
                path: path.to_path_buf(),
            }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReadError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}
