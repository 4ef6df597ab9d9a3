// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of the peer-memory part of hsa_p2p (the misc device): what Rust for Linux 7.3
 * cannot reach. The P2PDMA provider API and the DMA mapping calls are static inlines or take
 * structures the Rust side only holds by pointer; VM_PFNMAP has no VmaNew setter and
 * pgprot_writecombine() is a macro on most architectures; unmap_mapping_range() has no Rust
 * abstraction; fatal_signal_pending() is a static inline (Task only offers signal_pending()).
 */

#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/sched/signal.h>

#include "shim.h"

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
 * the caller has already checked the pair against the published topology. The provider is
 * devm-allocated by the owner's binding: the caller keeps the owner from unbinding until this
 * returns. @hold_ms is the delay_map_peer_ms fault point (0 outside tests): a sleep between
 * taking the provider and using it, the window an unbind of the owner must not fall into.
 */
int hsa_p2p_map_peer(struct pci_dev *owner, struct pci_dev *accessor, int bar, u64 offset,
		     u64 size, unsigned int hold_ms, u64 *address)
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
	if (hold_ms)
		msleep(hold_ms);
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
 * Correct at any byte offset and size, and never an unaligned MMIO access (some architectures
 * trap them): single bytes until the source is 8-byte aligned, then bursts, then single bytes.
 *
 * A burst moves a cache line through CPU registers: eight aligned 64-bit loads from @src, then
 * eight stores to @dst (aligned 64-bit stores when @dst is aligned too, memcpy_toio() from the
 * registers' copy otherwise), like a DMA engine's read and write bursts, without touching the
 * bounce path. Interleaving single loads and stores (memcpy_toio's rep movs) makes every access
 * alternate between the two mappings; when both BARs are mapped at addresses that alias in the
 * emulator's software TLB (QEMU TCG, identical offsets in two 64 MiB-aligned mappings), every
 * access misses, and the copy runs at a tenth of the staged path's speed.
 */
void hsa_p2p_copy_io(void __iomem *dst, const void __iomem *src, size_t len)
{
	u64 burst[8];
	int i;

	while (len && !IS_ALIGNED((unsigned long)src, 8)) {
		__raw_writeb(__raw_readb(src), dst);
		src++;
		dst++;
		len--;
	}
	while (len >= sizeof(burst)) {
		for (i = 0; i < 8; i++)
			burst[i] = __raw_readq(src + 8 * i);
		if (IS_ALIGNED((unsigned long)dst, 8)) {
			for (i = 0; i < 8; i++)
				__raw_writeq(burst[i], dst + 8 * i);
		} else {
			memcpy_toio(dst, burst, sizeof(burst));
		}
		src += sizeof(burst);
		dst += sizeof(burst);
		len -= sizeof(burst);
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
