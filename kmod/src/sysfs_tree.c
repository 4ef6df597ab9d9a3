// SPDX-License-Identifier: GPL-2.0
/*
 * Read-only sysfs directories whose files hold pre-rendered text.
 *
 * Rust for Linux 7.3 has no sysfs/kobject abstraction, so this is the smallest C surface that
 * lets the Rust side publish a KFD-format topology where user space expects one (sysfs). The
 * Rust side renders every file's text (with the shared core crate's writers) and hands it over;
 * this file only owns kobjects and attributes. Callers serialise all calls on one tree.
 */

#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "shim.h"

struct hsa_p2p_sysfs_file {
	struct kobj_attribute attr;
	struct list_head entry;
	char name[32];
	size_t len;
	char content[];
};

struct hsa_p2p_sysfs_dir {
	struct kobject *kobj;
	struct list_head files;
	struct list_head children;
	struct list_head sibling;
};

static ssize_t hsa_p2p_sysfs_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct hsa_p2p_sysfs_file *file = container_of(attr, struct hsa_p2p_sysfs_file, attr);

	return sysfs_emit(buf, "%.*s", (int)file->len, file->content);
}

/* Creates directory @name under @parent, or under /sys/kernel when @parent is NULL. */
struct hsa_p2p_sysfs_dir *hsa_p2p_sysfs_dir_create(struct hsa_p2p_sysfs_dir *parent,
						   const char *name)
{
	struct hsa_p2p_sysfs_dir *dir = kzalloc(sizeof(*dir), GFP_KERNEL);

	if (!dir)
		return NULL;
	INIT_LIST_HEAD(&dir->files);
	INIT_LIST_HEAD(&dir->children);
	INIT_LIST_HEAD(&dir->sibling);
	dir->kobj = kobject_create_and_add(name, parent ? parent->kobj : kernel_kobj);
	if (!dir->kobj) {
		kfree(dir);
		return NULL;
	}
	if (parent)
		list_add_tail(&dir->sibling, &parent->children);
	return dir;
}

/* Adds read-only file @name holding a copy of @content (less than a page). */
int hsa_p2p_sysfs_file_create(struct hsa_p2p_sysfs_dir *dir, const char *name,
			      const char *content, size_t len)
{
	struct hsa_p2p_sysfs_file *file;
	int ret;

	if (len >= PAGE_SIZE || strlen(name) >= sizeof(file->name))
		return -E2BIG;
	file = kzalloc(struct_size(file, content, len), GFP_KERNEL);
	if (!file)
		return -ENOMEM;
	strscpy(file->name, name, sizeof(file->name));
	memcpy(file->content, content, len);
	file->len = len;
	sysfs_attr_init(&file->attr.attr);
	file->attr.attr.name = file->name;
	file->attr.attr.mode = 0444;
	file->attr.show = hsa_p2p_sysfs_show;
	ret = sysfs_create_file(dir->kobj, &file->attr.attr);
	if (ret) {
		kfree(file);
		return ret;
	}
	list_add_tail(&file->entry, &dir->files);
	return 0;
}

/*
 * Removes @dir with all its files and sub-directories. sysfs_remove_file() waits for running
 * show() calls, so the text can be freed right after.
 */
void hsa_p2p_sysfs_dir_destroy(struct hsa_p2p_sysfs_dir *dir)
{
	struct hsa_p2p_sysfs_dir *child, *next_child;
	struct hsa_p2p_sysfs_file *file, *next_file;

	if (!dir)
		return;
	/* Each child unlinks itself from this list. */
	list_for_each_entry_safe(child, next_child, &dir->children, sibling)
		hsa_p2p_sysfs_dir_destroy(child);
	list_for_each_entry_safe(file, next_file, &dir->files, entry) {
		sysfs_remove_file(dir->kobj, &file->attr.attr);
		list_del(&file->entry);
		kfree(file);
	}
	list_del(&dir->sibling);
	kobject_put(dir->kobj);
	kfree(dir);
}
