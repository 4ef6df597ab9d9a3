/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims of the hsa_p2p module; their Rust declarations are in shim.rs.
 */
#ifndef HSA_P2P_SHIM_H
#define HSA_P2P_SHIM_H

#include <linux/types.h>

struct pci_dev;
struct hsa_p2p_sysfs_dir;

/* sysfs_tree.c */
struct hsa_p2p_sysfs_dir *hsa_p2p_sysfs_dir_create(struct hsa_p2p_sysfs_dir *parent,
						   const char *name);
int hsa_p2p_sysfs_file_create(struct hsa_p2p_sysfs_dir *dir, const char *name,
			      const char *content, size_t len);
void hsa_p2p_sysfs_dir_destroy(struct hsa_p2p_sysfs_dir *dir);

/* platform_shim.c */
unsigned int hsa_p2p_numa_node_count(void);
unsigned int hsa_p2p_numa_node_cpus(int node);
u64 hsa_p2p_numa_node_memory(int node);
unsigned int hsa_p2p_numa_distance(int from, int to);
int hsa_p2p_iommu_mode(struct pci_dev *pdev);
u32 hsa_p2p_pci_domain(struct pci_dev *pdev);
int hsa_p2p_p2pdma_distance(struct pci_dev *provider, struct pci_dev *client);
int hsa_p2p_p2pdma_add_bar(struct pci_dev *pdev, int bar);

#endif /* HSA_P2P_SHIM_H */
