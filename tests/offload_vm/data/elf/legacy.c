/* A legacy `maps` section definition (struct bpf_map_def) and a 16-bit key hash map. */
#include "bpf.h"

struct bpf_map_def {
    u32 type, key_size, value_size, max_entries, map_flags;
};

struct bpf_map_def SEC("maps") seen = {
    .type = 9, /* lru hash */
    .key_size = 2,
    .value_size = 4,
    .max_entries = 2,
};

SEC("prog")
int remember(unsigned short *port)
{
    unsigned short key = *port;
    u32 *hits = bpf_map_lookup_elem(&seen, &key), one = 1;
    if (hits) {
        *hits += 1;
        return *hits;
    }
    bpf_map_update_elem(&seen, &key, &one, 0);
    return 1;
}
