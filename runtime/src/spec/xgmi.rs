//! XGMI hives: the link table a hive's wiring gives its members, and its checks.

use hsa_p2p_core::facts::{XgmiFacts, XgmiLinkTable, XgmiWiring, XGMI_MAX_HIVE};

use super::{HiveWiring, Spec, XgmiHive};

/// Most hops amdgpu can report between two members: the PSP table's `num_hops` has 3 bits
/// (`amdgpu_xgmi_get_hops_count`).
const MAX_XGMI_HOPS: u32 = 7;

impl XgmiHive {
    fn name(&self) -> String {
        format!("xgmi_hive {:#x}", self.id)
    }

    /// The link count of every pair of members (by hive position), for `links` wiring.
    fn link_table(&self, spec: &Spec, members: &[usize]) -> Result<XgmiLinkTable, String> {
        let mut table: XgmiLinkTable = [[0; XGMI_MAX_HIVE]; XGMI_MAX_HIVE];
        for link in &self.links {
            let position = |id: &String| {
                members
                    .iter()
                    .position(|&index| spec.gpus[index].id == *id)
                    .ok_or_else(|| {
                        format!(
                            "{}: link.gpus names {id:?}, which is not a GPU of this hive",
                            self.name()
                        )
                    })
            };
            let (a, b) = (position(&link.gpus[0])?, position(&link.gpus[1])?);
            let pair = format!("{}: link {:?}", self.name(), link.gpus);
            if a == b {
                return Err(format!("{pair}: link.gpus names one GPU twice"));
            }
            let count = u8::try_from(link.count)
                .ok()
                .filter(|count| *count > 0)
                .ok_or_else(|| format!("{pair}: link.count must be 1..=255"))?;
            if table[a][b] != 0 {
                return Err(format!("{pair}: the pair is listed twice"));
            }
            table[a][b] = count;
            table[b][a] = count;
        }
        Ok(table)
    }

    /// Checks the hive's fields and wiring: every member reachable within amdgpu's 7 hops.
    pub(super) fn check(&self, spec: &Spec) -> Result<(), String> {
        let name = self.name();
        let members = spec.hive_members(self.id);
        if members.len() > XGMI_MAX_HIVE {
            return Err(format!(
                "{name}: {} members, at most {XGMI_MAX_HIVE} are supported",
                members.len()
            ));
        }
        match (self.wiring, self.links.is_empty(), self.links_per_peer) {
            (HiveWiring::Links, true, _) => {
                return Err(format!(
                    "{name}: wiring = \"links\" needs [[xgmi_hive.link]] entries"
                ))
            }
            (HiveWiring::Links, false, Some(_)) => {
                return Err(format!(
                    "{name}: links_per_peer applies to \"full\" and \"ring\" wiring; give each \
                     link's count instead"
                ))
            }
            (HiveWiring::Full | HiveWiring::Ring, false, _) => {
                return Err(format!(
                    "{name}: [[xgmi_hive.link]] entries need wiring = \"links\""
                ))
            }
            (_, _, Some(links)) if !(1..=255).contains(&links) => {
                return Err(format!("{name}: links_per_peer must be 1..=255"))
            }
            _ => {}
        }
        let table = self.link_table(spec, &members)?;
        let size = members.len() as u32;
        for position in 0..size {
            let facts = XgmiFacts::member(self.id, position, size, 0, self.wiring(&table));
            for (peer, entry) in facts.peers.iter().enumerate().take(members.len()) {
                let hops = u32::from(entry.num_hops);
                let pair = || {
                    format!(
                        "{name}: {:?} and {:?}",
                        spec.gpus[members[position as usize]].id, spec.gpus[members[peer]].id
                    )
                };
                if peer != position as usize && hops == 0 {
                    return Err(format!("{} are not connected by any path of links", pair()));
                }
                if hops > MAX_XGMI_HOPS {
                    return Err(format!(
                        "{} are {hops} hops apart; amdgpu reports at most {MAX_XGMI_HOPS}",
                        pair()
                    ));
                }
            }
        }
        Ok(())
    }

    fn wiring<'a>(&self, table: &'a XgmiLinkTable) -> XgmiWiring<'a> {
        let links = self.links_per_peer.unwrap_or(1).min(255) as u8;
        match self.wiring {
            HiveWiring::Full => XgmiWiring::Full(links),
            HiveWiring::Ring => XgmiWiring::Ring(links),
            HiveWiring::Links => XgmiWiring::Links(table),
        }
    }
}

impl Spec {
    /// The XGMI facts of GPU `index` (spec order), or `None` outside any hive. The per-link
    /// rate is the hive's `link_bandwidth_mbs`, else amdgpu's for the GPU's generation.
    pub fn xgmi_facts(&self, index: usize) -> Option<XgmiFacts> {
        let gpu = self.gpus.get(index)?;
        let hive = self.hive(gpu.xgmi_hive?)?;
        let members = self.hive_members(hive.id);
        let position = members.iter().position(|&m| m == index)?;
        let table = hive.link_table(self, &members).ok()?;
        let rate = hive
            .link_bandwidth_mbs
            .unwrap_or_else(|| hsa_p2p_core::facts::xgmi_link_rate_mbs(gpu.gfx_target_version));
        Some(XgmiFacts::member(
            hive.id,
            position as u32,
            members.len() as u32,
            rate,
            hive.wiring(&table),
        ))
    }
}
