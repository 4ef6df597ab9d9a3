// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of the peer-memory part of hsa_p2p (the misc device): what Rust for Linux 7.3
 * cannot reach. The P2PDMA provider API and the DMA mapping calls are static inlines or take
 * structures the Rust side only holds by pointer; VM_PFNMAP has no VmaNew setter and
 * pgprot_writecombine() is a macro on most architectures; unmap_mapping_range() has no Rust
 * abstraction; fatal_signal_pending() is a static inline (Task only offers signal_pending());
 * the kernel crate has no eventfd abstraction, and eventfd_signal() is a static inline;
 * alloc_workqueue() is a variadic macro and the crate has no owned workqueue.
 */

#include <linux/delay.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/sched/signal.h>
#include <linux/unaligned.h>
#include <linux/workqueue.h>

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
 * no P2PDMA provider, -EIO when the DMA mapping fails. The provider is devm-allocated by the
 * owner's binding: the caller keeps the owner from unbinding until this returns. @hold_ms is
 * the delay_map_peer_ms fault point (0 outside tests): a sleep between taking the provider and
 * using it, the window an unbind of the owner must not fall into.
 */
int hsa_p2p_map_peer(struct pci_dev *owner, struct pci_dev *accessor, int bar, u64 offset,
		     u64 size, int map_type, unsigned int hold_ms, u64 *address)
{
	struct p2pdma_provider *provider;
	phys_addr_t phys = pci_resource_start(owner, bar) + offset;
	dma_addr_t dma;

	if (!rcu_access_pointer(owner->p2pdma))
		return -EXDEV;
	provider = pcim_p2pdma_provider(owner, bar);
	if (!provider)
		return -EXDEV;
	if (hold_ms)
		msleep(hold_ms);
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
 * How many CPUs are online (the copy engines never outnumber them); num_online_cpus() is a
 * static inline.
 */
unsigned int hsa_p2p_online_cpus(void)
{
	return num_online_cpus();
}

/* Whether @task, which submitted a copy that a worker moves a part of, has been killed. */
bool hsa_p2p_task_fatal_signal_pending(struct task_struct *task)
{
	return fatal_signal_pending(task);
}

/*
 * Removes every user mapping of file offsets [@offset, @offset + @len) made through @file's
 * address space (all processes): later accesses fault with SIGBUS.
 */
void hsa_p2p_zap_file_range(struct file *file, u64 offset, u64 len)
{
	unmap_mapping_range(file->f_mapping, offset, len, 1);
}

/* Bytes moved per burst: one cache line, through eight 64-bit registers. */
#define HSA_P2P_BURST 64

/*
 * Reads @len bytes of I/O memory at @src into kernel memory at @to. Loads from @src are
 * naturally aligned (single bytes until @src is 8-byte aligned); a burst is eight loads, then
 * eight stores, so that the two sides alternate once per cache line, not once per word. The
 * bursts are written out so that the values stay in registers: a loop over an array becomes a
 * string copy through the stack, which an emulator runs element by element.
 */
static void hsa_p2p_read_block(u8 *to, const void __iomem *src, size_t len)
{
	for (; len && !IS_ALIGNED((unsigned long)src, 8); len--)
		*to++ = __raw_readb(src++);
	for (; len >= HSA_P2P_BURST; len -= HSA_P2P_BURST) {
		u64 w0 = __raw_readq(src), w1 = __raw_readq(src + 8);
		u64 w2 = __raw_readq(src + 16), w3 = __raw_readq(src + 24);
		u64 w4 = __raw_readq(src + 32), w5 = __raw_readq(src + 40);
		u64 w6 = __raw_readq(src + 48), w7 = __raw_readq(src + 56);

		put_unaligned(w0, (u64 *)to);
		put_unaligned(w1, (u64 *)(to + 8));
		put_unaligned(w2, (u64 *)(to + 16));
		put_unaligned(w3, (u64 *)(to + 24));
		put_unaligned(w4, (u64 *)(to + 32));
		put_unaligned(w5, (u64 *)(to + 40));
		put_unaligned(w6, (u64 *)(to + 48));
		put_unaligned(w7, (u64 *)(to + 56));
		src += HSA_P2P_BURST;
		to += HSA_P2P_BURST;
	}
	for (; len; len--)
		*to++ = __raw_readb(src++);
}

/* Writes @len bytes of kernel memory at @from to I/O memory at @dst, like the above. */
static void hsa_p2p_write_block(void __iomem *dst, const u8 *from, size_t len)
{
	for (; len && !IS_ALIGNED((unsigned long)dst, 8); len--)
		__raw_writeb(*from++, dst++);
	for (; len >= HSA_P2P_BURST; len -= HSA_P2P_BURST) {
		u64 w0 = get_unaligned((const u64 *)from);
		u64 w1 = get_unaligned((const u64 *)(from + 8));
		u64 w2 = get_unaligned((const u64 *)(from + 16));
		u64 w3 = get_unaligned((const u64 *)(from + 24));
		u64 w4 = get_unaligned((const u64 *)(from + 32));
		u64 w5 = get_unaligned((const u64 *)(from + 40));
		u64 w6 = get_unaligned((const u64 *)(from + 48));
		u64 w7 = get_unaligned((const u64 *)(from + 56));

		__raw_writeq(w0, dst);
		__raw_writeq(w1, dst + 8);
		__raw_writeq(w2, dst + 16);
		__raw_writeq(w3, dst + 24);
		__raw_writeq(w4, dst + 32);
		__raw_writeq(w5, dst + 40);
		__raw_writeq(w6, dst + 48);
		__raw_writeq(w7, dst + 56);
		dst += HSA_P2P_BURST;
		from += HSA_P2P_BURST;
	}
	for (; len; len--)
		__raw_writeb(*from++, dst++);
}

/*
 * Copies @len bytes from one I/O mapping to another (two ioremapped BARs): the direct path.
 * Correct at any byte offset and size, and never an unaligned MMIO access (some architectures
 * trap them).
 *
 * The data goes through @bounce (@bounce_len bytes of kernel memory, the copy engine's): a block
 * is read from @src whole, then written to @dst whole, like a DMA engine's read and write
 * bursts. Interleaving the two BARs' accesses instead (memcpy_toio's rep movs, or even one cache
 * line at a time) is slow wherever the two mappings' addresses alias in the CPU's translation
 * cache: under QEMU TCG, whose software TLB is direct-mapped, two buffers at the same offset of
 * two BARs (what two first allocations get) missed on every cache line and copied at a third of
 * the speed of other placements. With a block, the BARs alternate once per block; see
 * docs/performance.md for the measurements that chose this.
 */
void hsa_p2p_copy_io(void __iomem *dst, const void __iomem *src, size_t len, u8 *bounce,
		     size_t bounce_len)
{
	while (len) {
		size_t block = min(len, bounce_len);

		hsa_p2p_read_block(bounce, src, block);
		hsa_p2p_write_block(dst, bounce, block);
		src += block;
		dst += block;
		len -= block;
	}
	/* The stores are posted; order them before whatever the caller does next. */
	wmb();
}

/*
 * Takes a reference to the eventfd context of the caller's file descriptor @fd into @ctx:
 * 0, -EBADF when @fd is not open, -EINVAL when its file is not an eventfd. A kernel built
 * without CONFIG_EVENTFD has no eventfd at all, so there every open file is "not an eventfd"
 * (its stub eventfd_ctx_fdget() would answer -ENOSYS, which the ABI does not know).
 */
int hsa_p2p_eventfd_get(int fd, struct eventfd_ctx **ctx)
{
#ifdef CONFIG_EVENTFD
	struct eventfd_ctx *got = eventfd_ctx_fdget(fd);

	if (IS_ERR(got))
		return PTR_ERR(got);
	*ctx = got;
	return 0;
#else
	CLASS(fd, f)(fd);

	return fd_empty(f) ? -EBADF : -EINVAL;
#endif
}

/* Adds 1 to the counter of @ctx (any context; wakes its pollers). */
void hsa_p2p_eventfd_signal(struct eventfd_ctx *ctx)
{
	eventfd_signal(ctx);
}

/* Drops the reference hsa_p2p_eventfd_get() took. */
void hsa_p2p_eventfd_put(struct eventfd_ctx *ctx)
{
	eventfd_ctx_put(ctx);
}

/* An unbound workqueue named @name (copy_queues.rs), or NULL. */
struct workqueue_struct *hsa_p2p_unbound_wq_alloc(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND, 0, name);
}

/* Drains and frees a workqueue of hsa_p2p_unbound_wq_alloc(). */
void hsa_p2p_wq_destroy(struct workqueue_struct *wq)
{
	destroy_workqueue(wq);
}
