//! Where the GPUs' VRAM BARs sit on the bus: at their `bar_address`, or from
//! [`DEFAULT_BAR_WINDOW`] up in spec order, each aligned to 1 GiB (well inside a 44-bit DMA mask,
//! as firmware with Above 4G Decoding places them).
//!
//! Every step is checked: a size near 2^64 must not wrap and put one GPU's BAR on another's
//! (which the rules would then see as a peer in reach), and the error names the spec field.

use super::{Gpu, Spec};

/// Where BARs without an explicit `bar_address` are placed from.
pub const DEFAULT_BAR_WINDOW: u64 = 128 << 30;
const BAR_ALIGNMENT: u64 = 1 << 30;

impl Gpu {
    /// The field the BAR size comes from, for messages.
    fn bar_field(&self) -> String {
        match self.bar {
            Some(bar) => format!("bar = {:?}", bar.to_string()),
            None => format!(
                "vram = {:?} (the BAR size, as no `bar` is given)",
                self.vram.to_string()
            ),
        }
    }
}

impl Spec {
    /// The bus address of each GPU's BAR, in spec order; an error names the GPU and the field
    /// when a BAR does not fit below 2^64 or overlaps another GPU's.
    pub fn bar_addresses(&self) -> Result<Vec<u64>, String> {
        let mut next = DEFAULT_BAR_WINDOW;
        let mut placed: Vec<(u64, u64)> = Vec::with_capacity(self.gpus.len());
        for gpu in &self.gpus {
            let name = &gpu.id;
            let size = gpu.bar_size().0;
            let (base, end) = match gpu.bar_address {
                Some(base) => {
                    let end = base.checked_add(size).ok_or_else(|| {
                        format!(
                            "gpu {name:?}: bar_address = {base:#x} + {} ends beyond 2^64",
                            gpu.bar_field()
                        )
                    })?;
                    (base, end)
                }
                None => {
                    let base = next;
                    let too_large = || {
                        format!(
                            "gpu {name:?}: {}: the BAR placed at {base:#x} does not fit below \
                             2^64",
                            gpu.bar_field()
                        )
                    };
                    let end = base.checked_add(size).ok_or_else(too_large)?;
                    // The next BAR's base may be 2^64 exactly when nothing follows.
                    next = size
                        .checked_next_multiple_of(BAR_ALIGNMENT)
                        .and_then(|span| base.checked_add(span))
                        .unwrap_or(u64::MAX);
                    (base, end)
                }
            };
            if let Some(other) = placed
                .iter()
                .position(|&(other_base, other_end)| base < other_end && other_base < end)
            {
                return Err(format!(
                    "gpu {name:?}: its BAR {base:#x}..{end:#x} ({}) overlaps gpu {:?}'s",
                    gpu.bar_field(),
                    self.gpus[other].id
                ));
            }
            placed.push((base, end));
        }
        Ok(placed.into_iter().map(|(base, _)| base).collect())
    }
}
