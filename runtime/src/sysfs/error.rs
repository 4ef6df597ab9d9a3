//! Why a sysfs topology could not be read: always with the path, and the line when a file's text
//! is at fault.

use std::io;
use std::path::PathBuf;

use hsa_p2p_core::properties::ParseError;

/// A KFD-style sysfs tree that could not be read as a consistent topology.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The root is not a topology directory at all.
    #[error("{root}: not a KFD topology (no `generation_id` file or `nodes/` directory); is the driver loaded?")]
    NotATopology {
        /// The directory that was given.
        root: PathBuf,
    },
    /// A file the format requires is absent.
    #[error("{path}: missing (every {what} must have it)")]
    MissingFile {
        /// The absent file.
        path: PathBuf,
        /// What kind of directory needs it.
        what: &'static str,
    },
    /// A file or directory exists but could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file is not valid UTF-8 text.
    #[error("{path}: not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// A file's text is malformed.
    #[error("{path}:{error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in the file and why.
        error: FileParseError,
    },
    /// A numbered directory (node, link, bank) has a name that is not a number.
    #[error("{path}: directory name is not a number")]
    BadDirectoryName {
        /// The directory.
        path: PathBuf,
    },
    /// Numbered directories are not 0..n.
    #[error("{path}: entries are not numbered 0 to {} without gaps (found {found:?})", .count.saturating_sub(1))]
    NumberingGap {
        /// The parent directory.
        path: PathBuf,
        /// How many entries there are.
        count: usize,
        /// The numbers found.
        found: Vec<u32>,
    },
    /// A `*_count` key disagrees with the directories present.
    #[error("{path}: `{key}` says {declared} but {}", entries_exist(*.found))]
    CountMismatch {
        /// The node's properties file.
        path: PathBuf,
        /// The count key.
        key: &'static str,
        /// What the key says.
        declared: u32,
        /// How many directories there are.
        found: usize,
    },
    /// A link inside node N's directory whose `node_from` is not N.
    #[error("{path}: node_from is {node_from} but the link is in node {node}'s directory")]
    MisplacedLink {
        /// The link's properties file.
        path: PathBuf,
        /// The node whose directory holds it.
        node: u32,
        /// What the link says.
        node_from: u32,
    },
    /// A link to a node that does not exist.
    #[error("{path}: node_to {node_to} names no node (the topology has nodes 0 to {})", .nodes.saturating_sub(1))]
    DanglingLink {
        /// The link's properties file.
        path: PathBuf,
        /// The missing node.
        node_to: u32,
        /// How many nodes exist.
        nodes: usize,
    },
    /// A p2p link duplicates an io_link of the same pair: the kernel only adds p2p links for
    /// pairs without a direct link.
    #[error(
        "{path}: p2p link {node_from}->{node_to} duplicates a direct io_link of the same pair"
    )]
    DuplicatesIoLink {
        /// The p2p link's properties file.
        path: PathBuf,
        /// Accessor.
        node_from: u32,
        /// Owner.
        node_to: u32,
    },
    /// A peer link (GPU to GPU) that starts or ends at a CPU node, or similar type confusion.
    #[error("{path}: {message}")]
    Inconsistent {
        /// The offending file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `generation_id` kept changing while the tree was read (GPUs being added or removed).
    #[error("{root}: generation_id changed during each of {attempts} reads; the topology is being updated, try again")]
    Unstable {
        /// The topology root.
        root: PathBuf,
        /// How many reads were tried.
        attempts: u32,
    },
}

/// A [`ParseError`] shown as `:LINE: reason` (or `: reason` for whole-file errors) after a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileParseError(pub ParseError);

impl std::fmt::Display for FileParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // ParseError renders as "line N: reason"; paths read better as "file:N: reason".
        match self.0.line {
            Some(line) => {
                let reason = ParseError {
                    line: None,
                    ..self.0
                };
                write!(f, "{line}: {reason}")
            }
            None => write!(f, " {}", self.0),
        }
    }
}

/// "1 entry exists", "3 entries exist".
fn entries_exist(count: usize) -> String {
    match count {
        1 => "1 entry exists".to_string(),
        n => format!("{n} entries exist"),
    }
}
