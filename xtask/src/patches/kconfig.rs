//! The edits of existing kernel files that hook the sample into the build and the maintainers
//! list: a `config SAMPLE_RUST_HSA_P2P` entry in `samples/rust/Kconfig`, an `obj-` line in
//! `samples/rust/Makefile` (both right after the PCI driver sample's), and a MAINTAINERS entry
//! in alphabetical order.

use anyhow::{bail, Result};

use super::layout::{KCONFIG_SYMBOL, SAMPLE_DIR};

/// The Kconfig entry (tabs as in the kernel; help text of at least four lines for checkpatch).
pub fn kconfig_entry() -> String {
    format!(
        "config {KCONFIG_SYMBOL}\n\
         \ttristate \"PCIe peer-to-peer between GPUs (hsa_p2p)\"\n\
         \tdepends on PCI && PCI_P2PDMA && SYSFS\n\
         \thelp\n\
         \t  This option builds the Rust hsa_p2p sample: a PCI driver that binds\n\
         \t  emulated GPUs (QEMU ivshmem-plain devices carrying a descriptor\n\
         \t  page), asks the PCI peer-to-peer DMA core which pairs may reach each\n\
         \t  other's VRAM BAR, and publishes the result as a KFD-style topology\n\
         \t  with p2p_links under /sys/kernel/hsa_p2p/topology.\n\
         \n\
         \t  To compile this as a module, choose M here:\n\
         \t  the module will be called hsa_p2p.\n\
         \n\
         \t  If unsure, say N.\n\n"
    )
}

/// Inserts the entry before the `config` that follows `config SAMPLE_RUST_DRIVER_PCI`.
pub fn add_kconfig_entry(kconfig: &str) -> Result<String> {
    insert_after_block(
        kconfig,
        "config SAMPLE_RUST_DRIVER_PCI",
        "config ",
        &kconfig_entry(),
    )
}

/// Adds `obj-$(CONFIG_SAMPLE_RUST_HSA_P2P) += hsa_p2p/` after the PCI driver sample's line.
pub fn add_makefile_line(makefile: &str) -> Result<String> {
    let anchor = "obj-$(CONFIG_SAMPLE_RUST_DRIVER_PCI)";
    let mut out = String::new();
    let mut added = false;
    for line in makefile.lines() {
        out.push_str(line);
        out.push('\n');
        if !added && line.starts_with(anchor) {
            // Align with the anchor's value column (tabs of 8).
            let lhs = format!("obj-$(CONFIG_{KCONFIG_SYMBOL})");
            let column = line
                .find("+=")
                .map_or(lhs.len() + 1, |c| visual_column(line, c));
            out.push_str(&lhs);
            out.push_str(&tabs_to(lhs.len(), column));
            out.push_str("+= hsa_p2p/\n");
            added = true;
        }
    }
    if !added {
        bail!("samples/rust/Makefile has no {anchor} line to add the sample after");
    }
    Ok(out)
}

/// The display column of byte `index` of `line` with tabs of 8.
fn visual_column(line: &str, index: usize) -> usize {
    line[..index].chars().fold(0, |column, c| {
        if c == '\t' {
            (column / 8 + 1) * 8
        } else {
            column + 1
        }
    })
}

/// Tabs from column `from` to `to` (at least one).
fn tabs_to(from: usize, to: usize) -> String {
    let mut column = from;
    let mut tabs = String::new();
    while column < to || tabs.is_empty() {
        tabs.push('\t');
        column = (column / 8 + 1) * 8;
    }
    tabs
}

/// The MAINTAINERS entry; `maintainer` is the placeholder identity.
pub fn maintainers_entry(maintainer: &str) -> String {
    format!(
        "HSA P2P RUST SAMPLE DRIVER\n\
         M:\t{maintainer}\n\
         L:\trust-for-linux@vger.kernel.org\n\
         S:\tMaintained\n\
         F:\t{SAMPLE_DIR}/\n"
    )
}

/// Inserts `entry` (a title line plus fields) before the first entry whose title sorts after
/// it. Entries are blank-line separated blocks whose second line is a `X:\t` field.
pub fn add_maintainers_entry(maintainers: &str, entry: &str) -> Result<String> {
    let title = entry.lines().next().unwrap_or_default();
    let lines: Vec<&str> = maintainers.lines().collect();
    let is_entry_start = |i: usize| {
        (i == 0 || lines[i - 1].is_empty())
            && !lines[i].is_empty()
            && lines.get(i + 1).is_some_and(|next| is_field(next))
    };
    let position = (0..lines.len())
        .filter(|&i| is_entry_start(i))
        // Skip the explanatory header: real entries start with an upper-case title.
        .filter(|&i| {
            lines[i]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .find(|&i| lines[i] > title);
    let Some(position) = position else {
        bail!("no MAINTAINERS entry sorts after {title:?}: cannot place the new entry");
    };
    let mut out: Vec<String> = lines[..position].iter().map(|l| l.to_string()).collect();
    out.extend(entry.lines().map(str::to_owned));
    out.push(String::new());
    out.extend(lines[position..].iter().map(|l| l.to_string()));
    Ok(out.join("\n") + "\n")
}

fn is_field(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() > 2 && bytes[0].is_ascii_uppercase() && bytes[1] == b':' && bytes[2] == b'\t'
}

/// Inserts `text` before the first line starting with `next_prefix` after the line starting
/// with `anchor`.
fn insert_after_block(text: &str, anchor: &str, next_prefix: &str, insert: &str) -> Result<String> {
    let start = if text.starts_with(&format!("{anchor}\n")) {
        0
    } else {
        let Some(index) = text.find(&format!("\n{anchor}\n")) else {
            bail!("`{anchor}` not found");
        };
        index + 1
    };
    let after = start + anchor.len();
    let Some(next) = text[after..]
        .find(&format!("\n{next_prefix}"))
        .map(|i| after + i + 1)
    else {
        bail!("no entry follows `{anchor}`");
    };
    Ok(format!("{}{insert}{}", &text[..next], &text[next..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_kconfig_entry_after_the_pci_sample() {
        let kconfig = "menuconfig SAMPLES_RUST\n\tbool \"x\"\n\nconfig SAMPLE_RUST_DRIVER_PCI\n\
                       \ttristate \"PCI\"\n\thelp\n\t  PCI.\n\nconfig SAMPLE_RUST_DRIVER_PLATFORM\n\
                       \ttristate \"P\"\n";
        let edited = add_kconfig_entry(kconfig).unwrap();
        let pci = edited.find("config SAMPLE_RUST_DRIVER_PCI").unwrap();
        let ours = edited.find("config SAMPLE_RUST_HSA_P2P").unwrap();
        let platform = edited.find("config SAMPLE_RUST_DRIVER_PLATFORM").unwrap();
        assert!(pci < ours && ours < platform);
        assert!(edited.contains("\t  If unsure, say N.\n\nconfig SAMPLE_RUST_DRIVER_PLATFORM"));
    }

    #[test]
    fn adds_the_makefile_line_aligned() {
        let makefile = "obj-$(CONFIG_SAMPLE_RUST_DRIVER_PCI)\t\t+= rust_driver_pci.o\n\
                        obj-$(CONFIG_SAMPLE_RUST_SOC)\t\t\t+= rust_soc.o\n";
        let edited = add_makefile_line(makefile).unwrap();
        let line = edited.lines().nth(1).unwrap();
        assert!(
            line.starts_with("obj-$(CONFIG_SAMPLE_RUST_HSA_P2P)\t"),
            "{line:?}"
        );
        let anchor = edited.lines().next().unwrap();
        assert_eq!(
            visual_column(line, line.find("+=").unwrap()),
            visual_column(anchor, anchor.find("+=").unwrap())
        );
        assert!(add_makefile_line("obj-y += x.o\n").is_err());
    }

    #[test]
    fn places_the_maintainers_entry_alphabetically() {
        let maintainers = "List of maintainers\n===================\n\nDescriptions:\n\tM: x\n\n\
                           HPET DRIVER\nM:\tA <a@b>\nS:\tMaintained\n\n\
                           HTE SUBSYSTEM\nM:\tB <b@c>\nS:\tMaintained\n";
        let edited = add_maintainers_entry(maintainers, &maintainers_entry("Me <me@x>")).unwrap();
        let hpet = edited.find("HPET DRIVER").unwrap();
        let ours = edited.find("HSA P2P RUST SAMPLE DRIVER").unwrap();
        let hte = edited.find("HTE SUBSYSTEM").unwrap();
        assert!(hpet < ours && ours < hte);
        assert!(edited.contains("F:\tsamples/rust/hsa_p2p/\n\nHTE SUBSYSTEM"));
    }
}
