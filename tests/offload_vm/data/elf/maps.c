/* BTF maps from a program: counts calls per key in a hash, reads a config array,
 * writes the result into the context. */
#include "bpf.h"

struct {
    __uint(type, 1); /* hash */
    __uint(max_entries, 16);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");

struct {
    __uint(type, 2); /* array */
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, u32);
} config SEC(".maps");

struct ctx {
    u32 key;
    u32 out;
    u64 count;
};

SEC("count")
int count_calls(struct ctx *ctx)
{
    u32 zero = 0, key = ctx->key;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &key);
    u32 *mult = bpf_map_lookup_elem(&config, &zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &key, &one, 1);
    n = bpf_map_lookup_elem(&counts, &key);
    ctx->count = n ? *n : 0;
    ctx->out = mult ? *mult * key : 0;
    return n ? 1 : 0;
}

SEC("remove")
int remove_key(struct ctx *ctx)
{
    u32 key = ctx->key;
    return bpf_map_delete_elem(&counts, &key) == 0;
}
