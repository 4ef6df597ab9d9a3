// SPDX-License-Identifier: GPL-2.0
/*
 * Read-only sysfs directories whose files hold pre-rendered text, and a generation_id file
 * whose readers wait out updates.
 *
 * Rust for Linux 7.3 has no sysfs/kobject abstraction, so this is the smallest C surface that
 * lets the Rust side publish a KFD-format topology where user space expects one (sysfs). The
 * Rust side renders every file's text (with the shared core crate's writers) and hands it over;
 * this file only owns kobjects and attributes. Callers serialise all calls on one tree.
 *
 * Every directory is removed with kobject_del() before its last kobject_put(): the sysfs name
 * is free when kobject_del() returns, while the kobject itself may be released much later
 * (CONFIG_DEBUG_KOBJECT_RELEASE delays it on purpose), so a republish can reuse the names.
 */

#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/mutex.h>
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

/*
 * generation_id: a reader waits while an update is in progress, so the value it gets was
 * current at a moment when the tree was complete. A reader that reads generation_id, the tree,
 * then generation_id again and sees the same value therefore read one complete tree: an update
 * overlapping its reads began after its first read, and its second read waits for that update
 * to end and gets the new value.
 */
struct hsa_p2p_sysfs_generation {
	struct kobj_attribute attr;
	struct kobject *kobj;
	/* Held by the writer from update_begin to update_end. */
	struct mutex update;
	u64 value;
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
 * Removes every file and sub-directory of @dir, keeping @dir. sysfs_remove_file() waits for
 * running show() calls, so the text can be freed right after.
 */
void hsa_p2p_sysfs_dir_clear(struct hsa_p2p_sysfs_dir *dir)
{
	struct hsa_p2p_sysfs_dir *child, *next_child;
	struct hsa_p2p_sysfs_file *file, *next_file;

	/* Each child unlinks itself from this list. */
	list_for_each_entry_safe(child, next_child, &dir->children, sibling)
		hsa_p2p_sysfs_dir_destroy(child);
	list_for_each_entry_safe(file, next_file, &dir->files, entry) {
		sysfs_remove_file(dir->kobj, &file->attr.attr);
		list_del(&file->entry);
		kfree(file);
	}
}

/* Removes @dir with all its files and sub-directories. */
void hsa_p2p_sysfs_dir_destroy(struct hsa_p2p_sysfs_dir *dir)
{
	if (!dir)
		return;
	hsa_p2p_sysfs_dir_clear(dir);
	list_del(&dir->sibling);
	kobject_del(dir->kobj);
	kobject_put(dir->kobj);
	kfree(dir);
}

static ssize_t hsa_p2p_sysfs_generation_show(struct kobject *kobj, struct kobj_attribute *attr,
					     char *buf)
{
	struct hsa_p2p_sysfs_generation *generation =
		container_of(attr, struct hsa_p2p_sysfs_generation, attr);
	u64 value;
	int ret;

	ret = mutex_lock_interruptible(&generation->update);
	if (ret)
		return ret;
	value = generation->value;
	mutex_unlock(&generation->update);
	return sysfs_emit(buf, "%llu\n", value);
}

/*
 * Adds file generation_id holding @value to @dir. Its own sysfs_attr_init() call site gives it
 * its own lockdep class: its show() takes the update mutex, under which the writer removes the
 * other files (never this one).
 */
struct hsa_p2p_sysfs_generation *
hsa_p2p_sysfs_generation_create(struct hsa_p2p_sysfs_dir *dir, u64 value)
{
	struct hsa_p2p_sysfs_generation *generation = kzalloc(sizeof(*generation), GFP_KERNEL);

	if (!generation)
		return NULL;
	mutex_init(&generation->update);
	generation->value = value;
	generation->kobj = dir->kobj;
	sysfs_attr_init(&generation->attr.attr);
	generation->attr.attr.name = "generation_id";
	generation->attr.attr.mode = 0444;
	generation->attr.show = hsa_p2p_sysfs_generation_show;
	if (sysfs_create_file(dir->kobj, &generation->attr.attr)) {
		mutex_destroy(&generation->update);
		kfree(generation);
		return NULL;
	}
	return generation;
}

/* Readers of generation_id wait from here ... */
void hsa_p2p_sysfs_update_begin(struct hsa_p2p_sysfs_generation *generation)
{
	mutex_lock(&generation->update);
}

/* ... to here, and then read @value. */
void hsa_p2p_sysfs_update_end(struct hsa_p2p_sysfs_generation *generation, u64 value)
{
	generation->value = value;
	mutex_unlock(&generation->update);
}

/* Removes generation_id; no update may be in progress. */
void hsa_p2p_sysfs_generation_destroy(struct hsa_p2p_sysfs_generation *generation)
{
	sysfs_remove_file(generation->kobj, &generation->attr.attr);
	mutex_destroy(&generation->update);
	kfree(generation);
}
