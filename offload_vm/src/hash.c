/* Hash and LRU hash maps: chained buckets of entry indices, a free list, LRU by use stamps.
 * Indices are checked before use, so a corrupt shared image can make lookups fail but can
 * never make them read outside the storage or loop forever. */
#include "maps.h"

static uint32_t hash_key(const uint8_t *key, uint32_t n)
{
    uint32_t h = 2166136261u;
    while (n--)
        h = (h ^ *key++) * 16777619u;
    return h ^ (h >> 15);
}

static struct fovm_hentry *entry_at(const struct fovm_map *m, uint32_t idx1)
{
    if (idx1 == 0 || idx1 > m->info.max_entries)
        return NULL;
    return (struct fovm_hentry *)(m->data + (size_t)(idx1 - 1) * m->estride);
}

static uint32_t bucket_of(const struct fovm_map *m, const void *key)
{
    return hash_key((const uint8_t *)key, m->info.key_size) & (m->nbuckets - 1);
}

/* Finds key; *prevp (may be NULL) gets the link that points at the entry. */
static struct fovm_hentry *find_link(const struct fovm_map *m, const void *key,
                                     uint32_t **prevp)
{
    uint32_t *link = &m->buckets[bucket_of(m, key)], steps;
    for (steps = 0; steps <= m->info.max_entries; steps++) {
        struct fovm_hentry *e = entry_at(m, *(volatile uint32_t *)link);
        if (!e)
            return NULL;
        if (e->used && fovm_equal(fovm_hkey(e), key, m->info.key_size)) {
            if (prevp)
                *prevp = link;
            return e;
        }
        link = &e->next;
    }
    return NULL;
}

struct fovm_hentry *fovm_hash_find(const struct fovm_map *m, const void *key)
{
    return find_link(m, key, NULL);
}

/* The least recently used entry, unlinked from its bucket; its index + 1 or 0. */
static uint32_t evict(struct fovm_map *m)
{
    uint32_t i, best = 0, *link = NULL;
    uint64_t oldest = ~(uint64_t)0;
    struct fovm_hentry *e;
    for (i = 1; i <= m->info.max_entries; i++) {
        e = entry_at(m, i);
        if (e->used && e->stamp < oldest) {
            oldest = e->stamp;
            best = i;
        }
    }
    e = entry_at(m, best);
    if (!e || !find_link(m, fovm_hkey(e), &link))
        return 0;
    *link = e->next;
    e->used = 0;
    m->hdr->count--;
    return best;
}

static int insert(struct fovm_map *m, const void *key, const void *value, fovm_error *err)
{
    uint32_t idx = m->hdr->free_head, b = bucket_of(m, key);
    struct fovm_hentry *e = entry_at(m, idx);
    if (e) {
        m->hdr->free_head = e->next;
    } else if (m->info.type == FOVM_MAP_LRU_HASH && (idx = evict(m)) != 0) {
        e = entry_at(m, idx);
    } else {
        return fovm_fail(err, FOVM_E_FULL, -1, "map %s is full (%u entries)", m->info.name,
                         m->info.max_entries);
    }
    fovm_copy(fovm_hkey(e), key, m->info.key_size);
    fovm_copy(fovm_hval(m, e), value, m->info.value_size);
    e->stamp = fovm_tick(m->hdr);
    e->used = 1;
    e->next = m->buckets[b];
    m->buckets[b] = idx;
    m->hdr->count++;
    return FOVM_OK;
}

int fovm_hash_update(struct fovm_map *m, const void *key, const void *value, uint64_t flags,
                     fovm_error *err)
{
    struct fovm_hentry *e;
    int rc = fovm_write_begin(m, err);
    if (rc)
        return rc;
    e = find_link(m, key, NULL);
    if (e && flags == FOVM_NOEXIST) {
        rc = fovm_fail(err, FOVM_E_EXIST, -1, "key exists in map %s", m->info.name);
    } else if (e) {
        fovm_copy(fovm_hval(m, e), value, m->info.value_size);
        e->stamp = fovm_tick(m->hdr);
    } else if (flags == FOVM_EXIST) {
        rc = fovm_fail(err, FOVM_E_NOENT, -1, "no such key in map %s", m->info.name);
    } else {
        rc = insert(m, key, value, err);
    }
    fovm_write_end(m);
    return rc;
}

int fovm_hash_delete(struct fovm_map *m, const void *key, fovm_error *err)
{
    uint32_t *link = NULL, idx;
    struct fovm_hentry *e;
    int rc = fovm_write_begin(m, err);
    if (rc)
        return rc;
    e = find_link(m, key, &link);
    if (!e) {
        fovm_write_end(m);
        return fovm_fail(err, FOVM_E_NOENT, -1, "no such key in map %s", m->info.name);
    }
    idx = *link;
    *link = e->next;
    e->used = 0;
    e->next = m->hdr->free_head;
    m->hdr->free_head = idx;
    m->hdr->count--;
    fovm_write_end(m);
    return FOVM_OK;
}

/* The key after `key` in bucket order (the first when key is NULL or absent). */
int fovm_hash_next(const struct fovm_map *m, const void *key, void *next)
{
    uint32_t b = 0, steps = 0, idx;
    struct fovm_hentry *e = key ? find_link(m, key, NULL) : NULL;
    if (e) {
        b = bucket_of(m, key);
        idx = e->next;
    } else {
        idx = m->buckets[0];
    }
    for (;;) {
        while ((e = entry_at(m, idx)) != NULL && steps++ <= m->info.max_entries) {
            if (e->used) {
                fovm_copy(next, fovm_hkey(e), m->info.key_size);
                return FOVM_OK;
            }
            idx = e->next;
        }
        if (++b >= m->nbuckets)
            return FOVM_E_NOENT;
        idx = m->buckets[b];
    }
}
