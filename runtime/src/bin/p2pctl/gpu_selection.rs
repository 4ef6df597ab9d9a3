//! `--gpus A,B,…`: the GPUs a view shows, in the order given.

use anyhow::{bail, Result};

use hsa_p2p_runtime::node_names::resolve_node;
use hsa_p2p_runtime::views::ViewInput;

/// Restricts `input` to the GPUs `names` (all GPUs when empty); a name that is no GPU is an
/// error.
pub fn select_gpus(input: &mut ViewInput<'_>, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    input.gpus = names
        .iter()
        .map(|name| {
            let node = resolve_node(input.topology, input.labels, name)?;
            match input.topology.node(node) {
                Some(found) if found.is_gpu() => Ok(node),
                _ => bail!("--gpus {name}: node {node} is not a GPU"),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(())
}
