//! ACS redirect from a bridge's extended configuration space (what the kernel's
//! `pci_bridge_has_acs_redir` checks).
//!
//! sysfs `config` shows all 4 KiB only to root; shorter reads (non-root: 64 or 256 bytes) hold no
//! extended capabilities, and the state is then unknown.

const EXTENDED_START: usize = 0x100;
const ACS_CAPABILITY_ID: u16 = 0x000d;
/// PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC.
const REDIRECT_BITS: u16 = (1 << 2) | (1 << 3) | (1 << 5);

fn u32_at(config: &[u8], offset: usize) -> Option<u32> {
    let bytes = config.get(offset..offset + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn u16_at(config: &[u8], offset: usize) -> Option<u16> {
    let bytes = config.get(offset..offset + 2)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

/// `Some(true)` when the ACS capability has a redirect bit enabled, `Some(false)` when there is
/// none (or no ACS capability), `None` when the extended config space was not readable.
pub fn redirect_enabled(config: &[u8]) -> Option<bool> {
    let mut offset = EXTENDED_START;
    u32_at(config, offset)?;
    // The list is at most (4096 - 256) / 4 entries long; bounding the walk defeats loops.
    for _ in 0..960 {
        let header = u32_at(config, offset)?;
        if header == 0 || header == u32::MAX {
            return Some(false);
        }
        if header as u16 == ACS_CAPABILITY_ID {
            let control = u16_at(config, offset + 6)?;
            return Some(control & REDIRECT_BITS != 0);
        }
        let next = (header >> 20) as usize & !3;
        if next < EXTENDED_START {
            return Some(false);
        }
        offset = next;
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_acs(control: u16) -> Vec<u8> {
        let mut config = vec![0u8; 4096];
        // AER at 0x100 -> ACS at 0x148 -> end.
        config[0x100..0x104]
            .copy_from_slice(&(0x0001u32 | (1 << 16) | (0x148 << 20)).to_le_bytes());
        config[0x148..0x14c].copy_from_slice(&(0x000du32 | (1 << 16)).to_le_bytes());
        config[0x14e..0x150].copy_from_slice(&control.to_le_bytes());
        config
    }

    #[test]
    fn finds_redirect_bits_in_the_capability_list() {
        assert_eq!(redirect_enabled(&config_with_acs(0x001d)), Some(true));
        assert_eq!(redirect_enabled(&config_with_acs(0x0011)), Some(false));
        assert_eq!(redirect_enabled(&[0u8; 256]), None);
        assert_eq!(redirect_enabled(&vec![0u8; 4096]), Some(false));
    }
}
