// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for facts Rust for Linux 7.3 cannot reach: static inlines and macros (NUMA
 * queries, pci_domain_nr, IOMMU domain type) and the PCI P2PDMA calls, which the Rust
 * bindings expose only by accident of include order.
 */

#include <linux/cpumask.h>
#include <linux/iommu.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/topology.h>

#include "shim.h"

/* How many NUMA nodes are online (their ids need not be 0..count: see next_online_node). */
unsigned int hsa_p2p_numa_node_count(void)
{
	return num_online_nodes();
}

unsigned int hsa_p2p_numa_node_cpus(int node)
{
	return cpumask_weight(cpumask_of_node(node));
}

u64 hsa_p2p_numa_node_memory(int node)
{
	return (u64)node_present_pages(node) << PAGE_SHIFT;
}

unsigned int hsa_p2p_numa_distance(int from, int to)
{
	return node_distance(from, to);
}

/* 0: no IOMMU translation, 1: identity (passthrough), 2: DMA remapping. */
int hsa_p2p_iommu_mode(struct pci_dev *pdev)
{
	struct iommu_domain *domain = iommu_get_domain_for_dev(&pdev->dev);

	if (!domain)
		return 0;
	if (domain->type == IOMMU_DOMAIN_IDENTITY)
		return 1;
	return 2;
}

u32 hsa_p2p_pci_domain(struct pci_dev *pdev)
{
	return pci_domain_nr(pdev->bus);
}

/*
 * pci_p2pdma_distance() for @client reaching @provider's memory; negative when the PCI core
 * refuses the pair. Not verbose: refusals are expected here and reported through sysfs, not
 * as kernel warnings.
 */
int hsa_p2p_p2pdma_distance(struct pci_dev *provider, struct pci_dev *client)
{
	return pci_p2pdma_distance(provider, &client->dev, false);
}

/*
 * Makes @pdev a P2PDMA provider (device-managed: released at unbind), so that
 * pcim_p2pdma_provider() and pci_p2pdma_distance() work for its BARs. Not
 * pci_p2pdma_add_resource(): that would also hand the whole BAR to the P2PDMA genpool, a
 * second allocator (pci_alloc_p2pmem) over the VRAM this module allocates itself.
 */
int hsa_p2p_p2pdma_init(struct pci_dev *pdev)
{
	return pcim_p2pdma_init(pdev);
}

/* The first online NUMA node after @node (-1: the first), or -1 when there is none. */
int hsa_p2p_next_online_node(int node)
{
	int next = node < 0 ? first_online_node : next_online_node(node);

	return next < MAX_NUMNODES ? next : -1;
}
