//! The tables of `p2pctl matrix`: which rows and columns each has and what goes in a cell.
//! Tables of KFD link properties (type, weight, bandwidth, flags) include the CPU nodes, as
//! rocm_bandwidth_test shows them; the GPU-to-GPU views (access, hops, path) do not.

use hsa_p2p_core::compose::XGMI_WEIGHT_PER_HOP;
use hsa_p2p_core::link::{LinkProperties, LinkType};
use hsa_p2p_core::topology::Topology;
use serde::Serialize;

use super::flags::{flags_code, FLAGS_LEGEND};
use super::path_class::{Attachment, PathClass, PATH_LEGEND};
use super::{Cell, Placement};
use crate::peers::peer_pair;
use crate::report::labels::pci_address;
use crate::report::Labels;

/// A table of `p2pctl matrix --table`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// May the row GPU access the column GPU's VRAM (P2P)?
    Access,
    /// amdkfd's link type between nodes.
    Type,
    /// amdkfd's link weight between nodes.
    Weight,
    /// amdkfd's link max bandwidth (MB/s) between nodes.
    Bandwidth,
    /// Hops between GPUs (rocm-smi --showtopohops).
    Hops,
    /// PCIe path class between GPUs (nvidia-smi topo -m), with CPU and NUMA affinity.
    Path,
    /// Coherency and atomics flags of the links between nodes.
    Flags,
    /// Per GPU: PCI address, render minor, NUMA node, CPU affinity, XGMI hive.
    Gpus,
}

impl TableKind {
    /// Every table, in output order.
    pub const ALL: [TableKind; 8] = [
        TableKind::Access,
        TableKind::Type,
        TableKind::Weight,
        TableKind::Bandwidth,
        TableKind::Hops,
        TableKind::Path,
        TableKind::Flags,
        TableKind::Gpus,
    ];

    /// The name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Access => "access",
            TableKind::Type => "type",
            TableKind::Weight => "weight",
            TableKind::Bandwidth => "bandwidth",
            TableKind::Hops => "hops",
            TableKind::Path => "path",
            TableKind::Flags => "flags",
            TableKind::Gpus => "gpus",
        }
    }
}

/// One row: its label and cells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ViewRow {
    /// Row label.
    pub label: String,
    /// One cell per column.
    pub cells: Vec<Cell>,
}

/// A table with its legend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ViewTable {
    /// Which table.
    pub kind: TableKind,
    /// Heading.
    pub title: String,
    /// The top-left header (what the rows are).
    pub corner: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<ViewRow>,
    /// What the values and symbols mean.
    pub legend: Vec<String>,
}

/// What every table is built from.
pub struct ViewInput<'a> {
    /// The topology.
    pub topology: &'a Topology,
    /// Node names.
    pub labels: &'a Labels,
    /// Facts beyond the tree.
    pub placement: &'a Placement,
    /// The GPU nodes to show, in order.
    pub gpus: Vec<u32>,
}

impl ViewInput<'_> {
    /// The shown GPUs followed by every CPU node.
    pub fn gpus_and_cpus(&self) -> Vec<u32> {
        let cpus = self.topology.nodes.iter().filter(|n| !n.is_gpu());
        self.gpus
            .iter()
            .copied()
            .chain(cpus.map(|n| n.id))
            .collect()
    }

    /// The NUMA node of GPU `gpu`: the CPU node its io_link leads to.
    pub fn numa_node(&self, gpu: u32) -> Option<u32> {
        let node = self.topology.node(gpu)?;
        node.io_links
            .iter()
            .map(|link| link.node_to)
            .find(|&to| self.topology.node(to).is_some_and(|n| !n.is_gpu()))
    }

    fn matrix(
        &self,
        kind: TableKind,
        title: &str,
        nodes: &[u32],
        cell: impl Fn(u32, u32) -> Cell,
    ) -> ViewTable {
        ViewTable {
            kind,
            title: title.to_string(),
            corner: "from\\to".to_string(),
            columns: nodes.iter().map(|&n| self.labels.name(n)).collect(),
            rows: nodes
                .iter()
                .map(|&from| ViewRow {
                    label: self.labels.name(from),
                    cells: nodes
                        .iter()
                        .map(|&to| {
                            if from == to {
                                Cell::Diagonal
                            } else {
                                cell(from, to)
                            }
                        })
                        .collect(),
                })
                .collect(),
            legend: Vec::new(),
        }
    }
}

/// The link `from` -> `to` user space reads: an io_link, else a p2p_link.
pub fn link_between(topology: &Topology, from: u32, to: u32) -> Option<&LinkProperties> {
    topology
        .io_link(from, to)
        .or_else(|| topology.p2p_link(from, to))
}

/// Hops between GPUs as rocm_smi_lib's `rsmi_topo_get_link_type` counts them: 1 over a direct
/// io_link (XGMI), else 2 through one CPU node, 3 through two CPU nodes joined by an io_link,
/// 4 otherwise. `None` when a GPU's CPU node is not known.
pub fn hops(
    topology: &Topology,
    from_numa: Option<u32>,
    to_numa: Option<u32>,
    from: u32,
    to: u32,
) -> Option<u64> {
    if topology.io_link(from, to).is_some() {
        return Some(1);
    }
    let (a, b) = (from_numa?, to_numa?);
    Some(if a == b {
        2
    } else if topology.io_link(a, b).is_some() {
        3
    } else {
        4
    })
}

/// Builds table `kind`.
pub fn build_table(kind: TableKind, input: &ViewInput<'_>) -> ViewTable {
    let topology = input.topology;
    let link_cell = |from: u32, to: u32, value: &dyn Fn(&LinkProperties) -> Cell| {
        link_between(topology, from, to).map_or(Cell::NoLink, value)
    };
    let mut table = match kind {
        TableKind::Access => {
            let mut table = input.matrix(
                kind,
                "Access (Y = the row GPU may access the column GPU's VRAM)",
                &input.gpus,
                |from, to| {
                    let access = peer_pair(topology, from, to).has_access();
                    Cell::Text(if access { "Y" } else { "N" }.to_string())
                },
            );
            table.legend.push(
                "Y = P2P allowed, N = not allowed (`p2pctl why ROW COLUMN` says why)".to_string(),
            );
            table
        }
        TableKind::Type => {
            let mut table = input.matrix(kind, "Link type", &input.gpus_and_cpus(), |f, t| {
                link_cell(f, t, &|link| Cell::Text(link.link_type.name().to_string()))
            });
            table.legend.push(
                "amdkfd's link type (PCIE, XGMI, QPI = CPU<->CPU); GPU<->GPU PCIe links are the \
                 kernel's p2p_links"
                    .to_string(),
            );
            table
        }
        TableKind::Weight => {
            let mut table = input.matrix(kind, "Link weight", &input.gpus_and_cpus(), |f, t| {
                link_cell(f, t, &|link| Cell::Number(link.weight.into()))
            });
            table.legend.push(
                "amdkfd's weight (lower = closer): GPU<->CPU PCIe 20; a PCIe peer link sums the \
                 links on its path (+ the CPU<->CPU weight across CPU nodes); XGMI 15 per hop; \
                 CPU<->CPU = NUMA distance"
                    .to_string(),
            );
            table
        }
        TableKind::Bandwidth => {
            let mut table = input.matrix(
                kind,
                "Max bandwidth (MB/s)",
                &input.gpus_and_cpus(),
                |f, t| link_cell(f, t, &|link| Cell::Number(link.max_bandwidth.into())),
            );
            table.legend.push(
                "amdkfd's max_bandwidth in MB/s; 0 = not reported (`p2pctl why ROW COLUMN` says \
                 why for that link)"
                    .to_string(),
            );
            table
        }
        TableKind::Hops => {
            let mut table = input.matrix(kind, "Hops", &input.gpus, |from, to| {
                hops(
                    topology,
                    input.numa_node(from),
                    input.numa_node(to),
                    from,
                    to,
                )
                .map_or(Cell::Unknown, Cell::Number)
            });
            table.legend.push(
                "rocm-smi --showtopohops: 1 = direct (XGMI) link, 2 = through one CPU node, \
                 3 = through two linked CPU nodes, 4 = further"
                    .to_string(),
            );
            table
        }
        TableKind::Path => path_table(input),
        TableKind::Flags => {
            let mut table = input.matrix(
                kind,
                "Link flags (coherency/atomics)",
                &input.gpus_and_cpus(),
                |f, t| link_cell(f, t, &|link| Cell::Text(flags_code(link.flags))),
            );
            table
                .legend
                .extend(FLAGS_LEGEND.iter().map(|l| l.to_string()));
            table
        }
        TableKind::Gpus => gpus_table(input),
    };
    add_symbol_legend(&mut table);
    table
}

/// The path class between GPUs `from` and `to`; `None` when the facts do not settle it.
pub fn pair_class(input: &ViewInput<'_>, from: u32, to: u32) -> Option<PathClass> {
    if let Some(link) = input.topology.io_link(from, to) {
        if link.link_type == LinkType::Xgmi {
            let direct = link.weight <= XGMI_WEIGHT_PER_HOP;
            let links = input
                .placement
                .gpu(from)
                .xgmi_links
                .get(&to)
                .copied()
                .filter(|_| direct);
            return Some(PathClass::Xgmi { links });
        }
    }
    let path = *input.placement.pcie_paths.get(&(from, to))?;
    let (a, b) = (input.placement.gpu(from), input.placement.gpu(to));
    PathClass::of_pcie(
        path,
        &Attachment {
            host_bridge: a.host_bridge.as_deref(),
            numa_node: input.numa_node(from),
        },
        &Attachment {
            host_bridge: b.host_bridge.as_deref(),
            numa_node: input.numa_node(to),
        },
    )
}

fn path_table(input: &ViewInput<'_>) -> ViewTable {
    let title = "Path class (nvidia-smi topo -m)";
    let mut table = input.matrix(TableKind::Path, title, &input.gpus, |from, to| {
        pair_class(input, from, to).map_or(Cell::Unknown, |class| Cell::Text(class.to_string()))
    });
    table.columns.push("CPU Affinity".to_string());
    table.columns.push("NUMA Affinity".to_string());
    for (row, &gpu) in table.rows.iter_mut().zip(&input.gpus) {
        let (place, numa) = (input.placement.gpu(gpu), input.numa_node(gpu));
        row.cells
            .push(place.cpulist.map_or(Cell::Unknown, Cell::Text));
        row.cells
            .push(numa.map_or(Cell::Unknown, |n| Cell::Number(n.into())));
    }
    table
        .legend
        .extend(PATH_LEGEND.iter().map(|line| line.to_string()));
    table
}

fn gpus_table(input: &ViewInput<'_>) -> ViewTable {
    let columns = ["node", "PCI", "render", "NUMA", "CPU Affinity", "XGMI hive"];
    let rows = input
        .gpus
        .iter()
        .filter_map(|&gpu| input.topology.node(gpu))
        .map(|node| {
            let place = input.placement.gpu(node.id);
            ViewRow {
                label: input.labels.name(node.id),
                cells: vec![
                    Cell::Number(node.id.into()),
                    pci_address(node).map_or(Cell::Unknown, Cell::Text),
                    place
                        .render_minor
                        .map_or(Cell::Unknown, |m| Cell::Text(format!("renderD{m}"))),
                    input
                        .numa_node(node.id)
                        .map_or(Cell::Unknown, |n| Cell::Number(n.into())),
                    place.cpulist.map_or(Cell::Unknown, Cell::Text),
                    match node.properties.hive_id {
                        0 => Cell::NotApplicable,
                        hive => Cell::Text(format!("{hive:#x}")),
                    },
                ],
            }
        })
        .collect();
    ViewTable {
        kind: TableKind::Gpus,
        title: "GPUs".to_string(),
        corner: "GPU".to_string(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
        legend: vec![
            "render = /dev/dri/renderD<minor> (drm_render_minor); NUMA = the GPU's CPU node"
                .to_string(),
            "XGMI hive = hive_id (n/a: not in a hive)".to_string(),
        ],
    }
}

/// Explains the special symbols the table uses, after its own lines.
fn add_symbol_legend(table: &mut ViewTable) {
    let mut seen: Vec<Cell> = Vec::new();
    for cell in table.rows.iter().flat_map(|row| &row.cells) {
        if cell.legend().is_some() && !seen.contains(cell) {
            seen.push(cell.clone());
        }
    }
    seen.sort_by_key(|cell| match cell {
        Cell::Diagonal => 0,
        Cell::NoLink => 1,
        Cell::NotApplicable => 2,
        _ => 3,
    });
    table.legend.extend(seen.iter().filter_map(Cell::legend));
}
