/*
 * chain.h - image versions as frozen layers, resolved once.
 *
 * A version of a golden image is a ROOT (the raw base file, or a file a
 * flatten wrote) with zero or more FROZEN LAYERS on top.  A frozen layer
 * is a closed overlay directory (docs/overlay-format.md: a draft that was
 * committed): its data file and map are never written again.
 *
 * ovl_layer_* opens such a directory read-only.  chain_open() resolves a
 * root plus layers (bottom first) into one per-block source map: for each
 * G-block, "root", "layer k" or "zeros".  Reads then look up the map once
 * and pread from the source at the same offset (every layer's data file
 * is identity-mapped), so a read costs the same whatever the depth.
 *
 * The chain is a struct backend (read-only: write/unmap give -EROFS), so a
 * client's overlay sits on it unchanged.
 *
 * Threading: reads may come from many threads at once.  chain_replace()
 * swaps what a chain reads from (flatten: the same content, new sources)
 * while reads go on; it waits for reads in progress, so when it returns
 * the old root and layers are no longer used and may be closed.
 *
 * A layer never changes once open, so one open layer may sit in any
 * number of chains at once (version N+1's chain shares version N's
 * layers), read from any number of threads.  Close it only when no chain
 * uses it any more (closed or replaced).
 *
 * G: every layer of one chain has the same G (from its info file).  A
 * draft overlay over a chain must therefore be created with
 * overlay_opts.block_size = chain_block_size(chain), or the layer it
 * becomes will not fit the next chain (-EINVAL).
 *
 * RAM: the resolved map costs 9 bytes per 4096 G-blocks of disk (16 MiB
 * at G=4K: 576 bytes per GiB) plus 4 KiB for every such stretch whose
 * blocks do not all come from one source: at most a byte per block
 * (256 KiB per GiB at G=4K), and next to nothing for layers that touch
 * little or whole stretches.  Each open layer also keeps its own overlay
 * map (docs/overlay-format.md: 4 KiB per touched 64 MiB at G=4K).
 * The layout and read path: docs/overlay-format.md, "Frozen layers and
 * version chains".
 */
#ifndef PRISTINE_CHAIN_H
#define PRISTINE_CHAIN_H

#include <stdint.h>

#include "storage/backend.h"

/* Most frozen layers one chain may have between its root and the top. */
#define CHAIN_MAX_LAYERS 250u

struct ovl_layer;

/*
 * Open the closed overlay in dir read-only as a frozen layer: its map
 * (checkpoint plus log records replayed; every CRC verified) and its data
 * file (O_RDONLY).  size and base_id are checked as overlay_open does
 * (-ESTALE on a mismatch; base_id NULL = size only).  Nothing in dir is
 * ever written, renamed or deleted: a torn log tail is ignored (not cut
 * off), a log older than the map is left in place.  Only the data file
 * stays open.  Returns 0 and *out (release with ovl_layer_close), or
 * -EBADMSG (corrupt, details logged; also a missing info/data/log in an
 * overlay that was used), -ESTALE, -ENOENT (dir missing, or no overlay
 * in it at all), -EINVAL (size 0, base_id over 255 bytes), other -errno.
 */
int ovl_layer_open(const char *dir, uint64_t size, const char *base_id, struct ovl_layer **out);
void ovl_layer_close(struct ovl_layer *l);          /* NULL is a no-op */
uint32_t ovl_layer_block_size(const struct ovl_layer *l);   /* G */
/* Bytes of data the layer holds (blocks PRESENT x G). */
uint64_t ovl_layer_bytes(const struct ovl_layer *l);

/*
 * Resolve root + layers[0..n-1] (bottom first; n <= CHAIN_MAX_LAYERS,
 * n = 0 allowed, layers may then be NULL) into a read-only backend named
 * name (NULL: "chain").  root and the layers are borrowed: they must
 * outlive the chain (or until chain_replace); the array itself is not
 * kept.  root may be any backend (a raw file, another chain).  Every
 * layer must have root->size and one common G.  Returns 0 and *out
 * (release with backend_close, which closes neither root nor layers), or
 * -EINVAL (root NULL or of size 0, a NULL layer, a layer of another size
 * or G) / -E2BIG (n > CHAIN_MAX_LAYERS) / -ENOMEM.
 *
 * The backend: read as resolved, one root read / pread / memset per run
 * of blocks with the same source; write and unmap -EROFS, read_only set,
 * flush 0; block_status: a block from a layer is mapped, zeros (a layer
 * unmapped it) are not, a block from the root is what root says (mapped
 * if root cannot tell); resident: the root's resident for blocks from the
 * root (-EOPNOTSUPP if root has none), the page cache of a layer's data
 * file for its blocks, and zeros count as held.  A range past the end is
 * -EINVAL.
 */
int chain_open(struct backend *root, struct ovl_layer *const *layers, unsigned n,
	       const char *name, struct backend **out);

/*
 * Make chain read from root + layers instead (same rules as chain_open;
 * root must also have the chain's size, and G may differ from before).
 * The caller promises the content is the same (e.g. a flattened copy).
 * The new map is built first; then reads in progress are waited for
 * (new reads wait meanwhile; the locks prefer the replace, so it is not
 * starved) and the sources are swapped.  Must not be called from inside
 * a read of the same chain.  0 (the old root and layers are no longer
 * used) or -errno (then nothing changed).
 */
int chain_replace(struct backend *chain, struct backend *root, struct ovl_layer *const *layers,
		  unsigned n);

/* RAM held by the chain's resolved map, bytes (for status and tests). */
uint64_t chain_map_bytes(const struct backend *chain);

/* G of the chain's layers, 0 when it has none (any G fits then; 0 is
 * also overlay_opts' "default").  Give it to a draft over the chain. */
uint32_t chain_block_size(const struct backend *chain);

#endif
