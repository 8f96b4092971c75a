/*
 * boot_resolve.h - the boot endpoint's resolve hook served by the lab's
 * registry (boot_resolve.c): boot/ may use lab/, lab/ never uses boot/.
 */
#ifndef PRISTINE_BOOT_RESOLVE_H
#define PRISTINE_BOOT_RESOLVE_H

struct boot_request;
struct boot_answer;

/*
 * The struct boot_hooks resolve callback; ctx is a struct registry.
 * Finds (or, by the enroll policy, enrolls) the PC that asks, applies
 * the reset a boot means for it, and fills ans with its script or with a
 * message saying why it gets none.  Takes the registry lock.  Returns 0.
 */
int registry_boot_resolve(void *ctx, const struct boot_request *rq, struct boot_answer *ans);

#endif
