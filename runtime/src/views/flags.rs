//! A link's coherency and atomics flags as a short code for the `flags` table.

use hsa_p2p_core::link::LinkFlags;

/// `C` (coherent) or `NC`, then `/` and the atomics the link carries (`A` both sizes, `A32`,
/// `A64`, `noA` none); `unset` when the ENABLED bit is clear (user space then ignores the
/// other bits); `noP2P` when the link forbids peer DMA.
pub fn flags_code(flags: LinkFlags) -> String {
    if !flags.contains(LinkFlags::ENABLED) {
        return "unset".to_string();
    }
    let coherency = if flags.contains(LinkFlags::NON_COHERENT) {
        "NC"
    } else {
        "C"
    };
    let atomics = match (
        flags.contains(LinkFlags::NO_ATOMICS_32),
        flags.contains(LinkFlags::NO_ATOMICS_64),
    ) {
        (false, false) => "A",
        (false, true) => "A32",
        (true, false) => "A64",
        (true, true) => "noA",
    };
    let peer = if flags.contains(LinkFlags::NO_PEER_TO_PEER_DMA) {
        ",noP2P"
    } else {
        ""
    };
    format!("{coherency}/{atomics}{peer}")
}

/// The legend of [`flags_code`].
pub const FLAGS_LEGEND: [&str; 3] = [
    "C = coherent, NC = non-coherent; A = 32- and 64-bit atomics, A32/A64 = only those, noA = none",
    "noP2P = NO_PEER_TO_PEER_DMA set (ROCr skips the link)",
    "unset = ENABLED clear: the other bits are not valid (ROCr ignores them)",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_kfd_flags_read_as_documented() {
        // kfd-topology.md: GPU<->GPU p2p 3 (or 15), XGMI 1, CPU<->CPU 0.
        assert_eq!(flags_code(LinkFlags(3)), "NC/A");
        assert_eq!(flags_code(LinkFlags(15)), "NC/noA");
        assert_eq!(flags_code(LinkFlags(1)), "C/A");
        assert_eq!(flags_code(LinkFlags(0)), "unset");
        assert_eq!(flags_code(LinkFlags(1 | 16)), "C/A,noP2P");
        assert_eq!(flags_code(LinkFlags(1 | 8)), "C/A32");
    }
}
