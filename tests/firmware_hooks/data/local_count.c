/* Test policy: a process-local map counts this process's connects to FROM_PORT; the n-th
 * (from 0) goes to the port in row n % NPORTS of the store's `ports` map. */
#include <freeoffload/policy.h>

#define NPORTS 3

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, fo_u32);
    __type(value, fo_u64);
} local_connects SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, NPORTS);
    __type(key, fo_u32);
    __type(value, fo_u32);
} ports SEC(".maps");

FO_CONNECT_POLICY(local_count)
{
    fo_u32 zero = 0;
    if (ctx->dst_port != FROM_PORT)
        return FO_PASS;
    fo_u64 *count = bpf_map_lookup_elem(&local_connects, &zero);
    if (!count)
        return FO_PASS;
    fo_u32 row = (fo_u32)(__sync_fetch_and_add(count, 1) % NPORTS);
    fo_u32 *port = bpf_map_lookup_elem(&ports, &row);
    if (!port || *port == 0)
        return FO_PASS;
    ctx->dst_port = *port;
    return FO_REWRITE;
}
