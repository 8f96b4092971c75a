/*
 * ovl_ceph_int.h - what ovl_ceph.c (the ovl_io: handles and file
 * operations) and ovl_ceph_admin.c (markers: mkdir, discard, purge)
 * share.  Not an API for other files: ovl_ceph.h is.
 */
#ifndef PRISTINE_OVL_CEPH_INT_H
#define PRISTINE_OVL_CEPH_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "storage/ovl_ceph.h"

/* Most bytes of an overlay directory name DIR (without its NUL): every
 * name made from it (DIR.INST.NAME) then fits OC_OID_MAX. */
#define OC_DIR_MAX 191
/* Most bytes of a file name inside DIR. */
#define OC_FILE_MAX 31
/* DIR "." INST "." NAME and a NUL. */
#define OC_OID_MAX (OC_DIR_MAX + 1 + 16 + 1 + OC_FILE_MAX + 1)
/* The data file's name in DIR: an RBD image, every other name an object. */
#define OC_DATA "data"
/* The marker's xattr holding the live INST (16 hex digits). */
#define OC_INST_XATTR "inst"

enum oc_kind {
	OC_FREE = 0,    /* unused slot */
	OC_PARENT,      /* DIR's parent: fsync only */
	OC_DIR,         /* the marker: DIR and the INST read at open */
	OC_OBJ,         /* DIR.INST.NAME, a RADOS object */
	OC_DATA_IMG,    /* DIR.INST.data, an RBD image */
};

/* One open "file"; its fd is its index in the table. */
struct oc_handle {
	enum oc_kind kind;
	char dir[OC_DIR_MAX + 1];
	char inst[17];
	char name[OC_FILE_MAX + 1];     /* follows renames */
	rbd_image_t img;                /* OC_DATA_IMG */
	bool locked;                    /* img's exclusive lock is ours */
};

struct ovl_ceph {
	struct ovl_io io;               /* ctx = this */
	struct rbd_cluster *cl;         /* borrowed */
	rados_ioctx_t rio;              /* the pool, FULL_TRY */
	char pool[RBD_POOL_MAX];
	char index[OC_OID_MAX];
	pthread_mutex_t mu;             /* the table and the free-space cache */
	struct oc_handle *h;
	size_t nh;
	uint64_t free_bytes;            /* fs_free's cache */
	time_t free_at;                 /* when it was read; 0 = never */
};

/* Whether dir may name an overlay directory here: RBD_OWN_PREFIX first,
 * at most OC_DIR_MAX bytes, printable, no '/' and no spaces. */
bool oc_dir_valid(const char *dir);

/* DIR's live INST (16 hex digits and a NUL) from its marker into inst:
 * 0, -ENOENT (no marker), -EBADMSG (not 16 hex digits) or -errno. */
int oc_marker_inst(struct ovl_ceph *c, const char *dir, char inst[17]);

/* "DIR.INST.NAME" into buf (OC_OID_MAX bytes). */
void oc_oid(char *buf, const char *dir, const char *inst, const char *name);

/* The io's mkdirat (ovl_ceph.h): index entry, then the marker made
 * exclusively with a new INST.  0, -EEXIST, -EINVAL or -errno. */
int oc_mkdir(struct ovl_ceph *c, const char *dir);

/* -EDQUOT (a pool quota) as -ENOSPC, the one "no space" the overlay
 * knows; every other value unchanged. */
int oc_space_err(int rc);

#endif
