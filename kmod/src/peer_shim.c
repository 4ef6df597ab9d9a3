// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of the peer-memory part of hsa_p2p (the misc device): what Rust for Linux 7.3
 * cannot reach. The P2PDMA provider API and the DMA mapping calls are static inlines or take
 * structures the Rust side only holds by pointer; VM_PFNMAP has no VmaNew setter and
 * pgprot_writecombine() is a macro on most architectures; unmap_mapping_range() has no Rust
 * abstraction; fatal_signal_pending() is a static inline (Task only offers signal_pending()).
 */

#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/sched/signal.h>

#include "shim.h"

/* Sets @pdev's streaming and coherent DMA masks to @bits (clamped to 64). */
int hsa_p2p_set_dma_mask(struct pci_dev *pdev, unsigned int bits)
{
	return dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(min(bits, 64U)));
}

/*
 * Whether @a and @b have a PCI bridge in common, so that traffic between them turns around
 * in a switch and never reaches the host bridge. This is the part of the P2PDMA core's
 * calc_map_type_and_dist() that tells PCI_P2PDMA_MAP_BUS_ADDR from
 * PCI_P2PDMA_MAP_THRU_HOST_BRIDGE (pci_p2pdma_map_type() is not exported to modules); the
 * core's verdict itself (ACS, whitelist) is pci_p2pdma_distance().
 */
static bool hsa_p2p_share_bridge(struct pci_dev *a, struct pci_dev *b)
{
	struct pci_dev *up_a, *up_b;

	for (up_a = pci_upstream_bridge(a); up_a; up_a = pci_upstream_bridge(up_a))
		for (up_b = pci_upstream_bridge(b); up_b; up_b = pci_upstream_bridge(up_b))
			if (up_a == up_b)
				return true;
	return false;
}

/*
 * Maps @size bytes at @offset of @owner's BAR @bar for DMA by @accessor, the way the PCI P2PDMA
 * core says the two reach each other: through a switch the peer uses the PCI bus address;
 * through a whitelisted host bridge it needs a DMA mapping (dma_map_resource). Returns
 * HSA_P2P_MAP_BUS_ADDR or HSA_P2P_MAP_THRU_HOST_BRIDGE and stores the address in @address, or
 * -EXDEV when the P2PDMA core refuses the pair, -EIO when the DMA mapping fails. Not verbose:
 * the caller has already checked the pair against the published topology.
 */
int hsa_p2p_map_peer(struct pci_dev *owner, struct pci_dev *accessor, int bar, u64 offset,
		     u64 size, u64 *address)
{
	struct p2pdma_provider *provider;
	phys_addr_t phys = pci_resource_start(owner, bar) + offset;
	dma_addr_t dma;

	if (!rcu_access_pointer(owner->p2pdma))
		return -EXDEV;
	if (pci_p2pdma_distance(owner, &accessor->dev, false) < 0)
		return -EXDEV;
	provider = pcim_p2pdma_provider(owner, bar);
	if (!provider)
		return -EXDEV;
	if (hsa_p2p_share_bridge(owner, accessor)) {
		*address = phys + provider->bus_offset;
		return HSA_P2P_MAP_BUS_ADDR;
	}
	dma = dma_map_resource(&accessor->dev, phys, size, DMA_BIDIRECTIONAL, 0);
	if (dma_mapping_error(&accessor->dev, dma))
		return -EIO;
	*address = dma;
	return HSA_P2P_MAP_THRU_HOST_BRIDGE;
}

/* Undoes hsa_p2p_map_peer() (only host-bridge mappings hold a DMA mapping). */
void hsa_p2p_unmap_peer(struct pci_dev *accessor, int map_type, u64 address, u64 size)
{
	if (map_type == HSA_P2P_MAP_THRU_HOST_BRIDGE)
		dma_unmap_resource(&accessor->dev, address, size, DMA_BIDIRECTIONAL, 0);
}

/*
 * Makes @vma (being set up by mmap) a page-frame mapping (its PTEs are inserted by the fault
 * handler with vmf_insert_pfn()) with write-combining page protection: the BAR is I/O memory,
 * never cacheable.
 */
void hsa_p2p_vma_pfnmap_wc(struct vm_area_struct *vma)
{
	vm_flags_set(vma, VM_PFNMAP);
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
}

/* Whether the current task has been killed (copies and zeroing stop between chunks). */
bool hsa_p2p_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/*
 * Removes every user mapping of file offsets [@offset, @offset + @len) made through @file's
 * address space (all processes): later accesses fault with SIGBUS.
 */
void hsa_p2p_zap_file_range(struct file *file, u64 offset, u64 len)
{
	unmap_mapping_range(file->f_mapping, offset, len, 1);
}

/*
 * Copies @len bytes from one I/O mapping to another (two ioremapped BARs): the direct path.
 *
 * The copy moves cache-line bursts through CPU registers: eight 64-bit loads from @src, then
 * eight stores to @dst, like a DMA engine's read and write bursts, without touching system
 * memory. Interleaving single loads and stores (memcpy_toio's rep movs) makes every access
 * alternate between the two mappings; when both BARs are mapped at addresses that alias in the
 * emulator's software TLB (QEMU TCG, identical offsets in two 64 MiB-aligned mappings), every
 * access misses, and the copy runs at a tenth of the staged path's speed.
 */
void hsa_p2p_copy_io(void __iomem *dst, const void __iomem *src, size_t len)
{
	u64 a, b, c, d, e, f, g, h;

	while (len >= 64) {
		a = __raw_readq(src);
		b = __raw_readq(src + 8);
		c = __raw_readq(src + 16);
		d = __raw_readq(src + 24);
		e = __raw_readq(src + 32);
		f = __raw_readq(src + 40);
		g = __raw_readq(src + 48);
		h = __raw_readq(src + 56);
		__raw_writeq(a, dst);
		__raw_writeq(b, dst + 8);
		__raw_writeq(c, dst + 16);
		__raw_writeq(d, dst + 24);
		__raw_writeq(e, dst + 32);
		__raw_writeq(f, dst + 40);
		__raw_writeq(g, dst + 48);
		__raw_writeq(h, dst + 56);
		src += 64;
		dst += 64;
		len -= 64;
	}
	while (len) {
		__raw_writeb(__raw_readb(src), dst);
		src++;
		dst++;
		len--;
	}
	/* The stores are posted; order them before whatever the caller does next. */
	wmb();
}
