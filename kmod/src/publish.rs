// SPDX-License-Identifier: GPL-2.0

//! The topology in KFD format under `/sys/kernel/hsa_p2p/topology`.
//!
//! The shared core's builder hands the records to [`KernelTopology`]; [`publish`] renders every
//! file with the core's writers — the same text `p2pctl predict --emit-sysfs` writes on the host.

use core::fmt::{self, Write};

use kernel::alloc::{flags::GFP_KERNEL, AllocError, KVec};
use kernel::prelude::*;
use kernel::str::{CStr, CString};

use crate::builder::{NodeKind, NodeRecord, TopologySink};
use crate::gate::PeerDenial;
use crate::gpu_id::GfxName;
use crate::link::LinkProperties;
use crate::node::{NodeCounts, SystemProperties};
use crate::properties::{
    write_link_properties, write_mem_bank_properties, write_node_properties, write_peer_denial,
    write_system_properties,
};
use crate::sysfs::{SubDir, TopologyDir};

struct PublishedNode {
    record: NodeRecord,
    io_links: KVec<LinkProperties>,
    p2p_links: KVec<LinkProperties>,
    denials: KVec<PeerDenial>,
}

/// The peer-access verdicts of a built topology, by `gpu_id`.
pub(crate) struct PeerTable {
    /// (GPU index in bind order, `gpu_id`).
    pub(crate) gpu_ids: KVec<(usize, u32)>,
    /// (accessor, owner) pairs with a p2p link.
    pub(crate) links: KVec<(u32, u32)>,
    /// (accessor, owner, reason bits) of the published denials.
    pub(crate) denials: KVec<(u32, u32, u32)>,
}

impl PeerTable {
    pub(crate) const fn new() -> Self {
        Self {
            gpu_ids: KVec::new(),
            links: KVec::new(),
            denials: KVec::new(),
        }
    }
}

/// A built topology, held until it is rendered.
pub(crate) struct KernelTopology {
    nodes: KVec<PublishedNode>,
}

impl KernelTopology {
    pub(crate) const fn new() -> Self {
        Self { nodes: KVec::new() }
    }

    fn node_mut(&mut self, id: u32) -> Option<&mut PublishedNode> {
        self.nodes.iter_mut().find(|node| node.record.id == id)
    }

    /// Who may reach whom, by `gpu_id`, for the misc device.
    pub(crate) fn peer_table(&self) -> Result<PeerTable, AllocError> {
        let gpu_id_of = |node_id: u32| {
            self.nodes
                .iter()
                .find(|node| node.record.id == node_id)
                .map_or(0, |node| node.record.gpu_id)
        };
        let mut table = PeerTable {
            gpu_ids: KVec::new(),
            links: KVec::new(),
            denials: KVec::new(),
        };
        for node in self.nodes.iter() {
            if let NodeKind::Gpu(index) = node.record.kind {
                table
                    .gpu_ids
                    .push((index, node.record.gpu_id), GFP_KERNEL)?;
            }
            for link in node.p2p_links.iter() {
                let (from, to) = (gpu_id_of(link.node_from), gpu_id_of(link.node_to));
                // Indirect GPU -> CPU links have no owner GPU.
                if from != 0 && to != 0 {
                    table.links.push((from, to), GFP_KERNEL)?;
                }
            }
            for denial in node.denials.iter() {
                table.denials.push(
                    (
                        gpu_id_of(denial.node_from),
                        gpu_id_of(denial.node_to),
                        denial.reasons.bits(),
                    ),
                    GFP_KERNEL,
                )?;
            }
        }
        Ok(table)
    }

    /// Number of p2p links in the whole topology.
    pub(crate) fn p2p_link_count(&self) -> usize {
        self.nodes.iter().map(|node| node.p2p_links.len()).sum()
    }
}

impl TopologySink for KernelTopology {
    type Error = AllocError;

    fn add_node(&mut self, node: &NodeRecord) -> Result<(), AllocError> {
        let node = PublishedNode {
            record: *node,
            io_links: KVec::new(),
            p2p_links: KVec::new(),
            denials: KVec::new(),
        };
        self.nodes.push(node, GFP_KERNEL)
    }

    fn add_io_link(&mut self, link: &LinkProperties) -> Result<(), AllocError> {
        match self.node_mut(link.node_from) {
            Some(node) => node.io_links.push(*link, GFP_KERNEL),
            None => Ok(()),
        }
    }

    fn add_p2p_link(&mut self, link: &LinkProperties) -> Result<(), AllocError> {
        match self.node_mut(link.node_from) {
            Some(node) => node.p2p_links.push(*link, GFP_KERNEL),
            None => Ok(()),
        }
    }

    fn add_peer_denial(&mut self, denial: &PeerDenial) -> Result<(), AllocError> {
        match self.node_mut(denial.node_from) {
            Some(node) => node.denials.push(*denial, GFP_KERNEL),
            None => Ok(()),
        }
    }
}

/// The text of one file, grown on the heap.
struct Text(KVec<u8>);

impl Write for Text {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0
            .extend_from_slice(text.as_bytes(), GFP_KERNEL)
            .map_err(|_| fmt::Error)
    }
}

fn write_file(
    dir: SubDir<'_>,
    name: &CStr,
    render: impl FnOnce(&mut Text) -> fmt::Result,
) -> Result {
    let mut text = Text(KVec::new());
    render(&mut text).map_err(|_| ENOMEM)?;
    dir.file(name, &text.0)
}

fn numbered(index: usize) -> Result<CString> {
    CString::try_from_fmt(fmt!("{index}"))
}

fn publish_links(node_dir: SubDir<'_>, kind: &CStr, links: &[LinkProperties]) -> Result {
    let dir = node_dir.dir(kind)?;
    for (index, link) in links.iter().enumerate() {
        let link_dir = dir.dir(&numbered(index)?)?;
        write_file(link_dir, c"properties", |text| {
            write_link_properties(text, link)
        })?;
    }
    Ok(())
}

fn publish_node(nodes_dir: SubDir<'_>, node: &PublishedNode) -> Result {
    let record = &node.record;
    let dir = nodes_dir.dir(&numbered(record.id as usize)?)?;
    write_file(dir, c"gpu_id", |text| writeln!(text, "{}", record.gpu_id))?;
    write_file(dir, c"name", |text| match record.kind {
        NodeKind::Cpu => writeln!(text),
        NodeKind::Gpu(_) => writeln!(text, "{}", GfxName(record.properties.gfx_target_version)),
    })?;
    let counts = NodeCounts {
        mem_banks: 1,
        caches: 0,
        io_links: node.io_links.len() as u32,
        p2p_links: Some(node.p2p_links.len() as u32),
    };
    write_file(dir, c"properties", |text| {
        write_node_properties(text, &record.properties, &counts)
    })?;
    let bank_dir = dir.dir(c"mem_banks")?.dir(c"0")?;
    write_file(bank_dir, c"properties", |text| {
        write_mem_bank_properties(text, &record.mem_bank)
    })?;
    publish_links(dir, c"io_links", &node.io_links)?;
    publish_links(dir, c"p2p_links", &node.p2p_links)?;
    let denials_dir = dir.dir(c"p2p_denials")?;
    for (index, denial) in node.denials.iter().enumerate() {
        let denial_dir = denials_dir.dir(&numbered(index)?)?;
        write_file(denial_dir, c"properties", |text| {
            write_peer_denial(text, denial)
        })?;
    }
    Ok(())
}

/// Publishes `topology` as generation `generation` of `/sys/kernel/hsa_p2p/topology`: the
/// first call creates the tree, later ones replace its nodes in place (see [`TopologyDir`] for
/// why readers never see a half-built tree).
pub(crate) fn publish(
    tree: &mut Option<TopologyDir>,
    topology: &KernelTopology,
    generation: u64,
) -> Result {
    let fill = |nodes: SubDir<'_>| {
        topology
            .nodes
            .iter()
            .try_for_each(|node| publish_node(nodes, node))
    };
    match tree {
        Some(tree) => tree.update(generation, fill),
        None => {
            let mut properties = Text(KVec::new());
            write_system_properties(&mut properties, &SystemProperties::default())
                .map_err(|_| ENOMEM)?;
            *tree = Some(TopologyDir::new(
                c"hsa_p2p",
                &properties.0,
                generation,
                fill,
            )?);
            Ok(())
        }
    }
}
