//! Hot-plug slots as the kernel shows them: `/sys/bus/pci/slots/<name>/address` names the
//! `domain:bus:device` a hot-plug controller (pciehp) serves, whether a card is in it or not;
//! and the surprise removal of a card from an emulated slot, behind pciehp's back.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The PCI Express capability's id.
const CAP_ID_EXP: u8 = 0x10;
/// Slot Control's offset in the PCI Express capability.
const SLOT_CONTROL: u64 = 0x18;
/// Slot Control: Hot-Plug Interrupt Enable.
const HOTPLUG_INTERRUPT: u16 = 0x0020;
/// Slot Control: Power Indicator Control "off" (both bits).
const POWER_INDICATOR_OFF: u16 = 0x0300;
/// Slot Control: Power Controller Control, 1 = power off.
const POWER_OFF: u16 = 0x0400;

/// The function-0 addresses (`0000:03:00.0`) of every hot-plug slot under `root`, sorted.
pub fn hotplug_addresses(root: &Path) -> Vec<String> {
    let mut addresses: Vec<String> = std::fs::read_dir(root.join("sys/bus/pci/slots"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|slot| std::fs::read_to_string(slot.path().join("address")).ok())
        .map(|address| format!("{}.0", address.trim()))
        .collect();
    addresses.sort();
    addresses
}

/// The sysfs directory of the PCI device at `address` under `root`.
pub fn device_dir(root: &Path, address: &str) -> PathBuf {
    root.join("sys/bus/pci/devices").join(address)
}

/// The PCI address of the port above the device at `address` (its sysfs parent).
pub fn port_of(root: &Path, address: &str) -> Result<String, String> {
    let dir = std::fs::canonicalize(device_dir(root, address))
        .map_err(|error| format!("{address} is not in sysfs: {error}"))?;
    dir.parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{address} has no parent port"))
}

/// The offset of the PCI Express capability in `config` (a device's config space).
fn express_capability(config: &[u8]) -> Option<u64> {
    let mut offset = usize::from(*config.get(0x34)?) & !3;
    // The list is at most 48 entries long in 256 bytes; a loop in a broken one ends here.
    for _ in 0..48 {
        if offset == 0 {
            return None;
        }
        if *config.get(offset)? == CAP_ID_EXP {
            return Some(offset as u64);
        }
        offset = usize::from(*config.get(offset + 1)?) & !3;
    }
    None
}

/// The port's config file (open for writing), Slot Control's offset in it and its value.
fn slot_control(root: &Path, port: &str) -> Result<(std::fs::File, u64, u16), String> {
    let path = device_dir(root, port).join("config");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let mut config = [0u8; 256];
    file.read_exact_at(&mut config, 0)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let capability = express_capability(&config)
        .ok_or_else(|| format!("{port} has no PCI Express capability"))?;
    let at = capability + SLOT_CONTROL;
    let control = u16::from_le_bytes([config[at as usize], config[at as usize + 1]]);
    Ok((file, at, control))
}

/// Whether the slot of `port` is off: power off and power indicator off, where pciehp leaves
/// a slot it disabled. A card added before then could be taken for one being removed (QEMU
/// detaches a card from a slot whose power and indicator go off).
pub fn slot_is_off(root: &Path, port: &str) -> Result<bool, String> {
    let (_, _, control) = slot_control(root, port)?;
    Ok(control & POWER_OFF != 0 && control & POWER_INDICATOR_OFF == POWER_INDICATOR_OFF)
}

/// Pulls the card out of the slot of `port` (its PCI address) as a surprise: QEMU detaches a
/// card at once when its slot's power is cut (Power Controller Control off, power indicator
/// off: `pcie_cap_slot_write_config`) and reports the slot empty (Presence Detect Changed),
/// so this writes the port's Slot Control through sysfs, in the sequence that leaves pciehp
/// nothing to tell it was a power cut: hot-plug interrupts off, power off (the card goes),
/// power back on, interrupts on again. Only then is pciehp told (the pending Presence Detect
/// Changed), finds a powered slot without its card and takes its surprise-removal path:
/// the devices are marked disconnected before their drivers are removed. (Were the power
/// still off when it looked, it would take the slot for already disabled and leave the
/// driver bound.)
pub fn pull_card(root: &Path, port: &str) -> Result<(), String> {
    let (file, at, control) = slot_control(root, port)?;
    let quiet = control & !HOTPLUG_INTERRUPT;
    for value in [
        quiet,
        quiet | POWER_OFF | POWER_INDICATOR_OFF,
        quiet,
        control,
    ] {
        file.write_all_at(&value.to_le_bytes(), at)
            .map_err(|error| format!("cannot write {port}'s Slot Control: {error}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_express_capability_is_found_along_the_list() {
        let mut config = [0u8; 256];
        config[0x34] = 0x40;
        config[0x40] = 0x01; // power management, next at 0x60
        config[0x41] = 0x60;
        config[0x60] = CAP_ID_EXP;
        assert_eq!(express_capability(&config), Some(0x60));
        config[0x60] = 0x05; // MSI, end of list
        assert_eq!(express_capability(&config), None);
        config[0x61] = 0x40; // a loop
        assert_eq!(express_capability(&config), None);
    }

    #[test]
    fn slots_and_ports_are_read_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let slot = root.path().join("sys/bus/pci/slots/3");
        std::fs::create_dir_all(&slot).unwrap();
        std::fs::write(slot.join("address"), "0000:03:00\n").unwrap();
        assert_eq!(hotplug_addresses(root.path()), ["0000:03:00.0"]);
        let device = root
            .path()
            .join("sys/devices/pci0000:00/0000:00:02.0/0000:03:00.0");
        std::fs::create_dir_all(&device).unwrap();
        let devices = root.path().join("sys/bus/pci/devices");
        std::fs::create_dir_all(&devices).unwrap();
        std::os::unix::fs::symlink(&device, devices.join("0000:03:00.0")).unwrap();
        assert_eq!(
            port_of(root.path(), "0000:03:00.0").unwrap(),
            "0000:00:02.0"
        );
        assert!(port_of(root.path(), "0000:09:00.0").is_err());
    }
}
