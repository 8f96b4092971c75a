/*
 * atomicfile.h - the one way a small state file is replaced: a temporary
 * file beside it, the whole content written and checked, fsync, rename
 * over the old file, fsync of the directory.  A reader sees the old file
 * or the new one, never a mix; after a 0 return the new one survives a
 * crash.
 */
#ifndef PRISTINE_ATOMICFILE_H
#define PRISTINE_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Replace dir/name with the len bytes at data, created with mode (0600
 * for anything that may hold a secret).  The temporary file is
 * dir/name.tmp; it is removed on every failure.  Returns 0, or -errno of
 * the first step that failed (-EIO for a write that moved nothing,
 * -ENAMETOOLONG for a path that does not fit); on failure after the
 * rename (the directory fsync) the new content is in place but not known
 * to be durable, and the error is still returned.  Logs nothing: the
 * caller names the file in its own message.
 */
int atomicfile_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode);

/* fsync the directory dir, so that a rename or a new entry in it
 * survives a crash.  0 or -errno. */
int atomicfile_sync_dir(const char *dir);

/* atomicfile_write of a NUL-terminated text, mode 0600. */
int atomicfile_write_text(const char *dir, const char *name, const char *text);

#endif
