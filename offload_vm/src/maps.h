/* Map storage internals shared by maps.c, hash.c and mapstore.c. */
#ifndef FOVM_MAPS_H
#define FOVM_MAPS_H

#include "fovm_int.h"

#define FOVM_MAP_MAGIC 0x4d564f46u /* "FOVM" */
#define FOVM_MAP_VERSION 2u /* 2: the header counts an array's rows in use */
#define FOVM_MAP_HDR 64u
/* Waiting for a writer (which may be preempted mid-update in another process): a few spins,
 * then yielding the CPU. Hosts wait long; programs give up sooner and see no entry, so a
 * writer that died mid-update cannot stall every hooked call for long. */
#define FOVM_SPINS_BEFORE_YIELD 64u
#define FOVM_HOST_TRIES 200000u
#define FOVM_PROG_TRIES 2000u

/* A hash entry: next (index + 1, 0 ends the chain), used flag, LRU stamp, key, value. */
struct fovm_hentry {
    uint32_t next;
    uint32_t used;
    uint64_t stamp;
};

/* seqlock and writers' lock (in the storage, so they work across processes) */
FOVM_INTERNAL int fovm_write_begin(struct fovm_map *m, fovm_error *err);
FOVM_INTERNAL void fovm_write_end(struct fovm_map *m);
FOVM_INTERNAL uint32_t fovm_read_begin(const struct fovm_map *m);
FOVM_INTERNAL int fovm_read_retry(const struct fovm_map *m, uint32_t seq);

/* layout */
FOVM_INTERNAL uint64_t fovm_map_layout(const fovm_map_info *info, struct fovm_map *m);
FOVM_INTERNAL void fovm_map_bind(struct fovm_map *m, void *mem);
FOVM_INTERNAL void fovm_map_format(struct fovm_map *m, void *mem, uint64_t total);
FOVM_INTERNAL int fovm_map_check_info(const fovm_map_info *info, fovm_error *err);

/* hash maps (hash.c); callers hold the seqlock (read) or the lock (write) */
FOVM_INTERNAL struct fovm_hentry *fovm_hash_find(const struct fovm_map *m, const void *key);
FOVM_INTERNAL int fovm_hash_update(struct fovm_map *m, const void *key, const void *value,
                                   uint64_t flags, fovm_error *err);
FOVM_INTERNAL int fovm_hash_delete(struct fovm_map *m, const void *key, fovm_error *err);
FOVM_INTERNAL int fovm_hash_next(const struct fovm_map *m, const void *key, void *next);

static inline uint8_t *fovm_hkey(struct fovm_hentry *e) { return (uint8_t *)(e + 1); }
static inline uint8_t *fovm_hval(const struct fovm_map *m, struct fovm_hentry *e)
{
    return (uint8_t *)(e + 1) + m->kstride;
}

/* The next LRU use stamp (programs on many threads tick it at once). */
static inline uint64_t fovm_tick(struct fovm_map_hdr *h)
{
#if FOVM_ATOMICS
    return __atomic_add_fetch(&h->clock, 1, __ATOMIC_RELAXED);
#else
    return ++h->clock;
#endif
}

/* Copy of a value under the seqlock, so another process's writes never show torn. */
FOVM_INTERNAL int fovm_map_read(const struct fovm_map *m, const void *key, void *value,
                                 uint32_t tries);
FOVM_INTERNAL void fovm_relax(uint32_t attempt);

#endif /* FOVM_MAPS_H */
