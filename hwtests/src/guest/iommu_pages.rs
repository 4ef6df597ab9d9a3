//! The Intel IOMMU's page tables as the kernel shows them in debugfs
//! (`/sys/kernel/debug/iommu/intel/<device>/domain_translation_struct`, from
//! `CONFIG_INTEL_IOMMU_DEBUGFS`): which physical address a device's IOVA translates to, on the
//! kernel's own word rather than the module's.
//!
//! Each present leaf is one line (drivers/iommu/intel/debugfs.c, `dump_page_info`): the IOVA
//! page frame number, `|`, then the entries of the walk from PML5E down to the leaf: five of
//! them for a 4 KiB page, four for a 2 MiB and three for a 1 GiB superpage.

use std::path::{Path, PathBuf};

use hsa_p2p_core::facts::PciAddress;

/// 4 KiB VT-d pages.
const VTD_PAGE_SHIFT: u32 = 12;
/// Each level translates 9 more bits.
const VTD_STRIDE_SHIFT: u32 = 9;
/// The address bits of a leaf entry (51:12).
const ENTRY_ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The dump of `device`'s page tables below `root` (the machine's `/`).
pub fn dump_path(root: &Path, device: PciAddress) -> PathBuf {
    root.join("sys/kernel/debug/iommu/intel")
        .join(device.to_string())
        .join("domain_translation_struct")
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim().strip_prefix("0x")?, 16).ok()
}

/// The physical address `iova` translates to in the dump `text`; `None` when no leaf maps it.
pub fn translate(text: &str, iova: u64) -> Option<u64> {
    text.lines().find_map(|line| {
        let (pfn, entries) = line.split_once('|')?;
        let start = hex(pfn)?.checked_shl(VTD_PAGE_SHIFT)?;
        let entries: Vec<u64> = entries.split_whitespace().filter_map(hex).collect();
        // Levels walked below the leaf: none for a 4 KiB page (five entries), one for a 2 MiB
        // superpage, two for a 1 GiB one.
        let skipped = 5usize.checked_sub(entries.len()).filter(|&n| n <= 2)?;
        let page_size = 1u64 << (VTD_PAGE_SHIFT + VTD_STRIDE_SHIFT * skipped as u32);
        let offset = iova
            .checked_sub(start)
            .filter(|&offset| offset < page_size)?;
        let leaf = entries.last()?;
        Some((leaf & ENTRY_ADDRESS_MASK & !(page_size - 1)) + offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump as the 7.3 kernel prints it: a 4 KiB page at IOVA 0xfffff000 mapping
    /// 0x8_0000_3000 (read/write bits set), and a 2 MiB superpage at IOVA 0xffc00000.
    const DUMP: &str = "Device 0000:03:00.0 @0x10b4c000\n\
        IOVA_PFN\t\tPML5E\t\t\tPML4E\t\t\tPDPE\t\t\tPDE\t\t\tPTE\n\
        0x00000000ffc00 |\t0x0000000000000000\t0x0000000010b4d003\t0x0000000010b4e003\t0x0000000900000083\n\
        0x00000000fffff |\t0x0000000000000000\t0x0000000010b4d003\t0x0000000010b4e003\t0x0000000010b4f003\t0x0000000800003003\n";

    #[test]
    fn translates_a_4k_page_and_a_superpage() {
        assert_eq!(translate(DUMP, 0xffff_f000), Some(0x8_0000_3000));
        assert_eq!(translate(DUMP, 0xffff_f123), Some(0x8_0000_3123));
        assert_eq!(translate(DUMP, 0xffc0_0000), Some(0x9_0000_0000));
        assert_eq!(translate(DUMP, 0xffd0_0010), Some(0x9_0010_0010));
    }

    #[test]
    fn an_unmapped_iova_has_no_translation() {
        assert_eq!(translate(DUMP, 0xffe0_0000), None);
        assert_eq!(translate(DUMP, 0x1000), None);
        assert_eq!(
            translate("DMA Remapping is not enabled on dmar0\n", 0x1000),
            None
        );
    }

    #[test]
    fn the_dump_is_per_device() {
        let address = PciAddress {
            domain: 0,
            bus: 3,
            device: 0,
            function: 0,
        };
        assert_eq!(
            dump_path(Path::new("/"), address),
            Path::new("/sys/kernel/debug/iommu/intel/0000:03:00.0/domain_translation_struct")
        );
    }
}
