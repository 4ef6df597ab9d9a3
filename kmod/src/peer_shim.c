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

/* pci_upstream_bridge() (a static inline): @pdev's parent bridge, or NULL at a root bus. */
struct pci_dev *hsa_p2p_upstream_bridge(struct pci_dev *pdev)
{
	return pci_upstream_bridge(pdev);
}

/*
 * pci_bridge_has_acs_redir() of drivers/pci/p2pdma.c (static there, so reproduced): whether
 * @pdev's ACS control register redirects peer-to-peer requests or completions upstream (RR,
 * CR) or forces egress control (EC). map_type.rs walks the upstream chains with it the way
 * calc_map_type_and_dist() does, because 7.3 exports neither that nor pci_p2pdma_map_type().
 */
bool hsa_p2p_bridge_has_acs_redir(struct pci_dev *pdev)
{
	u16 ctrl;

	if (!pdev->acs_cap)
		return false;
	if (pci_read_config_word(pdev, pdev->acs_cap + PCI_ACS_CTRL, &ctrl))
		return false;
	return ctrl & (PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC);
}

/*
 * Maps @size bytes at @offset of @owner's BAR @bar for DMA by @accessor with @map_type, the
 * P2PDMA core's decision for the pair (map_type.rs): HSA_P2P_MAP_BUS_ADDR (a common switch,
 * no ACS redirect) gives the PCI bus address; HSA_P2P_MAP_THRU_HOST_BRIDGE gives a DMA mapping
 * of the BAR for the accessor (dma_map_resource: an IOVA under IOMMU remapping, the physical
 * address otherwise). Stores the address in @address and returns 0, or -EXDEV when @owner is
 * no P2PDMA provider, -EIO when the DMA mapping fails.
 */
int hsa_p2p_map_peer(struct pci_dev *owner, struct pci_dev *accessor, int bar, u64 offset,
		     u64 size, int map_type, u64 *address)
{
	struct p2pdma_provider *provider;
	phys_addr_t phys = pci_resource_start(owner, bar) + offset;
	dma_addr_t dma;

	if (!rcu_access_pointer(owner->p2pdma))
		return -EXDEV;
	provider = pcim_p2pdma_provider(owner, bar);
	if (!provider)
		return -EXDEV;
	switch (map_type) {
	case HSA_P2P_MAP_BUS_ADDR:
		*address = pci_p2pdma_bus_addr_map(provider, phys);
		return 0;
	case HSA_P2P_MAP_THRU_HOST_BRIDGE:
		dma = dma_map_resource(&accessor->dev, phys, size, DMA_BIDIRECTIONAL, 0);
		if (dma_mapping_error(&accessor->dev, dma))
			return -EIO;
		*address = dma;
		return 0;
	default:
		return -EXDEV;
	}
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
