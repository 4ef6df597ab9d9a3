/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shims of the hsa_p2p module; their Rust declarations are in shim.rs.
 */
#ifndef HSA_P2P_SHIM_H
#define HSA_P2P_SHIM_H

#include <linux/types.h>

struct pci_dev;
struct file;
struct vm_area_struct;
struct eventfd_ctx;
struct workqueue_struct;
struct hsa_p2p_sysfs_dir;
struct hsa_p2p_sysfs_generation;

/* sysfs_tree.c */
struct hsa_p2p_sysfs_dir *hsa_p2p_sysfs_dir_create(struct hsa_p2p_sysfs_dir *parent,
						   const char *name);
int hsa_p2p_sysfs_file_create(struct hsa_p2p_sysfs_dir *dir, const char *name,
			      const char *content, size_t len);
void hsa_p2p_sysfs_dir_clear(struct hsa_p2p_sysfs_dir *dir);
void hsa_p2p_sysfs_dir_destroy(struct hsa_p2p_sysfs_dir *dir);
struct hsa_p2p_sysfs_generation *
hsa_p2p_sysfs_generation_create(struct hsa_p2p_sysfs_dir *dir, u64 value);
void hsa_p2p_sysfs_update_begin(struct hsa_p2p_sysfs_generation *generation);
void hsa_p2p_sysfs_update_end(struct hsa_p2p_sysfs_generation *generation, u64 value);
void hsa_p2p_sysfs_generation_destroy(struct hsa_p2p_sysfs_generation *generation);

/* platform_shim.c */
unsigned int hsa_p2p_numa_node_count(void);
unsigned int hsa_p2p_numa_node_cpus(int node);
u64 hsa_p2p_numa_node_memory(int node);
unsigned int hsa_p2p_numa_distance(int from, int to);
int hsa_p2p_iommu_mode(struct pci_dev *pdev);
u32 hsa_p2p_pci_domain(struct pci_dev *pdev);
int hsa_p2p_p2pdma_distance(struct pci_dev *provider, struct pci_dev *client);
int hsa_p2p_p2pdma_init(struct pci_dev *pdev);
int hsa_p2p_next_online_node(int node);

/* peer_shim.c */
#define HSA_P2P_MAP_BUS_ADDR 1
#define HSA_P2P_MAP_THRU_HOST_BRIDGE 2
struct pci_dev *hsa_p2p_upstream_bridge(struct pci_dev *pdev);
bool hsa_p2p_bridge_has_acs_redir(struct pci_dev *pdev);
int hsa_p2p_map_peer(struct pci_dev *owner, struct pci_dev *accessor, int bar, u64 offset,
		     u64 size, int map_type, unsigned int hold_ms, u64 *address);
void hsa_p2p_unmap_peer(struct pci_dev *accessor, int map_type, u64 address, u64 size);
void hsa_p2p_vma_pfnmap_wc(struct vm_area_struct *vma);
bool hsa_p2p_fatal_signal_pending(void);
bool hsa_p2p_task_fatal_signal_pending(struct task_struct *task);
unsigned int hsa_p2p_online_cpus(void);
void hsa_p2p_zap_file_range(struct file *file, u64 offset, u64 len);
void hsa_p2p_copy_io(void __iomem *dst, const void __iomem *src, size_t len, u8 *bounce,
		     size_t bounce_len);
int hsa_p2p_eventfd_get(int fd, struct eventfd_ctx **ctx);
void hsa_p2p_eventfd_signal(struct eventfd_ctx *ctx);
void hsa_p2p_eventfd_put(struct eventfd_ctx *ctx);
struct workqueue_struct *hsa_p2p_unbound_wq_alloc(const char *name);
void hsa_p2p_wq_destroy(struct workqueue_struct *wq);

#endif /* HSA_P2P_SHIM_H */
