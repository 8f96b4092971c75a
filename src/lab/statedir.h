/*
 * statedir.h - the layout of the state directory, in one place, and the
 * only two ways anything leaves its place in it: to the trash (space
 * reclaimed in the background) and to quarantine (kept for the admin,
 * never deleted).
 *
 *   STATE/clients.json                  the client records
 *   STATE/overlays/<escaped initiator>/ a client's overlay
 *   STATE/disks/IMAGE/<escaped initiator>/  a PC's overlay on IMAGE, one of
 *                                       its extra disks (lab/xdisk.h)
 *   STATE/images/NAME/image.json        an image's versions
 *   STATE/images/NAME/layers/L<n>/      a version's frozen layer, or the draft
 *   STATE/images/NAME/flat-v<n>.raw     a version's flattened root file
 *   STATE/images/NAME/bootset-v<n>      a version's boot set (lab/bootsets.h)
 *   STATE/imported/NAME.raw             an imported source
 *   STATE/trash/                        discarded things, purged in the background
 *   STATE/quarantine/                   overlays that cannot be trusted
 *   STATE/pristined.sock                the admin socket (default)
 *   STATE/pristined.lock                held (flock) by the daemon that owns
 *                                       STATE; holds its PID, for messages only
 *   STATE/ceph-instance                 its Ceph client address: the exclusive
 *                                       locks a successor may break (rbd.h)
 *
 * Every path function writes into out (len bytes) and returns 0, or
 * -ENAMETOOLONG when the path does not fit (out is then unusable).  No
 * locks; the registry lock serialises the callers.
 */
#ifndef PRISTINE_STATEDIR_H
#define PRISTINE_STATEDIR_H

#include <stddef.h>

#define STATEDIR_CLIENTS "clients.json"
#define STATEDIR_IMAGE_FILE "image.json"
/* A version's boot set file in its image's directory (printf format of v). */
#define STATEDIR_BOOTSET_FMT "bootset-v%u"
#define STATEDIR_SOCKET "pristined.sock"
#define STATEDIR_LOCK "pristined.lock"
#define STATEDIR_CEPH_INSTANCE "ceph-instance"

/* The top-level folders of the state directory. */
enum statedir_sub { SD_OVERLAYS, SD_IMAGES, SD_TRASH, SD_QUARANTINE, SD_IMPORTED, SD_DISKS };

/*
 * Take STATE's lock for the caller's life: open (create, 0600)
 * STATE/pristined.lock, take an exclusive flock without waiting, write
 * our PID into it.  One daemon per state directory: the lock must be
 * taken before anything in STATE is read, created or moved.  The lock
 * goes with the process (the kernel drops it on exit or death, so a
 * dead daemon's file never blocks), and the descriptor is close-on-exec
 * so that children (qemu-img) do not hold it.  The file is 0600 in a
 * 0700 directory: a user who cannot open it cannot lock it either.  A
 * symlink, anything but a regular file, or a file with several hard
 * links is refused (root writes into it).
 *
 * Returns the descriptor (>= 0; the caller keeps it open while it owns
 * STATE and may close it at exit), -EWOULDBLOCK when another process
 * holds the lock (*holder: the PID its file names, 0 if unreadable), or
 * -errno (logged).  Logs nothing on -EWOULDBLOCK.
 */
int statedir_lock(const char *state, long *holder);

/* Create STATE's folders that are missing (0700).  0 or -errno (logged). */
int statedir_prepare(const char *state);
/* Create one directory (0700) if missing.  0 or -errno (logged). */
int statedir_mkdir(const char *path);

/* STATE/<sub>. */
int statedir_sub(char *out, size_t len, const char *state, enum statedir_sub sub);
/* STATE/<file> (STATEDIR_CLIENTS, STATEDIR_SOCKET). */
int statedir_file(char *out, size_t len, const char *state, const char *file);
/* STATE/overlays/<escaped initiator>. */
int statedir_overlay(char *out, size_t len, const char *state, const char *initiator);
/* STATE/disks/<image>, or STATE/disks/<image>/<escaped initiator> when
 * initiator is not NULL: a PC's overlay on an extra disk. */
int statedir_xdisk(char *out, size_t len, const char *state, const char *image,
		   const char *initiator);
/* STATE/images/<name>. */
int statedir_image(char *out, size_t len, const char *state, const char *name);
/* IMGDIR/layers/<layer>, or IMGDIR/layers when layer is NULL. */
int statedir_layer(char *out, size_t len, const char *imgdir, const char *layer);
/* IMGDIR/flat-v<v>.raw, with ".tmp" appended when tmp. */
int statedir_flat(char *out, size_t len, const char *imgdir, unsigned v, int tmp);
/* STATE/imported/<name>.raw, with ".tmp" appended when tmp. */
int statedir_imported(char *out, size_t len, const char *state, const char *name, int tmp);

/*
 * The directory name of an initiator's overlay: lower-case letters,
 * digits, '.', '-' and ':' stay, every other byte becomes %XX.
 * Reversible: statedir_unescape gives the name back (0, or -1 when in is
 * not such a name or not a valid iSCSI name).
 */
void statedir_escape(const char *initiator, char *out, size_t len);
int statedir_unescape(const char *in, char *out, size_t len);

/*
 * Move path (a file or a directory nothing uses any more) into
 * STATE/trash as "<label>.<unique>" (label: what it was, e.g.
 * "overlay-<dir name>", "image-win10-L3"), then fsync the directory it
 * left and the trash, so the move survives a crash.  Constant time.
 * 0, -ENOENT when path does not exist, or -errno.  Logs nothing.
 */
int statedir_trash(const char *state, const char *path, const char *label);
/*
 * Move path aside into STATE/quarantine as "<its name>.<unix time>" (a
 * PC's overlay on an extra disk: "disk-<image>-<its name>.<unix time>"),
 * never deleting it; the new path in to (tolen bytes, may be NULL).
 * 0 or -errno.  Logs nothing.
 */
int statedir_quarantine(const char *state, const char *path, char *to, size_t tolen);

#endif
