/*
 * The policy store: where a device keeps its installed offload policy and the policy's maps,
 * shared with every hooked program (default /run/freeoffload, FREEOFFLOAD_STORE overrides).
 *
 *   DIR/generation        64 bytes: "FOSTORE1", then a native-endian uint64 generation. Hooked
 *                         programs map it read-only and compare it on every connect().
 *   DIR/lock              writers hold flock(LOCK_EX) on it; readers never lock.
 *   DIR/gen-N/policy.o    the ELF object of generation N (clang -target bpf)
 *   DIR/gen-N/meta        text: "name NAME", "version V", "section S|-", one "map NAME TYPE
 *                         KEY_SIZE VALUE_SIZE MAX_ENTRIES" line per map
 *   DIR/gen-N/maps/NAME   the map's storage (fovm_map_attach_storage), updated in place
 *
 * A map whose name starts with "local_" (FOHOOK_LOCAL_PREFIX) is process-local: state of each
 * hooked process, not store data. The store keeps no file for it (its meta line reads
 * "local NAME TYPE ..." instead of "map ..."), map updates and reads refuse it, and the hook
 * leaves it in the VM's own zeroed memory: fresh for each generation a process loads (and in
 * a forked child), writable by the policy, lookups point into it so that atomic adds work
 * across the process's threads.
 *
 * Generation N without a gen-N directory means "no policy". A writer builds gen-N.tmp, renames
 * it to gen-N, then stores N in DIR/generation; it keeps the two generations before N (a
 * program still loading one of them finds it) and removes older ones.
 *
 * These functions are for the writer (libfreeoffload_store.so, used by Python's PolicyStore);
 * every one takes the store lock, returns a fohook_status and fills the caller's fohook_err.
 */
#ifndef FOHOOK_STORE_H
#define FOHOOK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fohook.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FOHOOK_STORE_MAGIC "FOSTORE1"
#define FOHOOK_STORE_MAX_MAPS 16
#define FOHOOK_LOCAL_PREFIX "local_" /* process-local maps (see above) */
/* install flag: carry the rows of same-named, same-shaped maps (not .rodata/.data/.bss) over
 * from the generation being replaced, so that a new policy version keeps its candidates. */
#define FOHOOK_STORE_KEEP_MAPS 0x1

/* Create DIR (mode 0755) and an empty store at generation 0 when absent. */
FOHOOK_API int fohook_store_init(const char *dir, fohook_err *err);
/* The current generation (0 for a store never written). */
FOHOOK_API int fohook_store_generation(const char *dir, uint64_t *gen, fohook_err *err);
/* Verify the ELF object in the VM (section NULL: its first program), lay out its maps as
 * files, publish it as the next generation. *gen (may be NULL) receives the generation and
 * `meta` (may be NULL) the text of its meta file, NUL-terminated, cut at meta_size - 1. */
FOHOOK_API int fohook_store_install(const char *dir, const char *name, uint32_t version,
                                    const void *elf, size_t len, const char *section,
                                    unsigned flags, uint64_t *gen, char *meta, size_t meta_size,
                                    fohook_err *err);
/* Publish "no policy" as the next generation. */
FOHOOK_API int fohook_store_remove(const char *dir, fohook_err *err);
/* Write `count` rows (keys and values packed back to back) into a map of the installed
 * policy, in place: hooked programs see each row on their next lookup. */
FOHOOK_API int fohook_store_update(const char *dir, const char *map, const void *keys,
                                   size_t key_size, const void *values, size_t value_size,
                                   size_t count, fohook_err *err);
FOHOOK_API int fohook_store_delete(const char *dir, const char *map, const void *key,
                                   size_t key_size, fohook_err *err);
/* Copy up to `capacity` rows of a map into keys/values; *count receives how many there are
 * in all (call again with more room when *count > capacity). */
FOHOOK_API int fohook_store_items(const char *dir, const char *map, void *keys,
                                  size_t key_size, void *values, size_t value_size,
                                  size_t capacity, size_t *count, fohook_err *err);

#ifdef __cplusplus
}
#endif
#endif /* FOHOOK_STORE_H */
