/* Disk: requests, bytes and latency per device and operation, from block:block_rq_issue to
 * block:block_rq_complete. Tracepoint arguments only; with a scope, only requests issued by
 * tasks of the scope's cgroup (direct and synchronous I/O: writeback runs in kernel threads). */
#include "fo_probe.h"

struct disk_req {
    u32 dev;
    u32 _pad;
    u64 sector;
};

struct disk_key {
    u32 dev;
    u32 op;       /* 0 read, 1 write, 2 other (discard, flush) */
};

struct disk_bucket {
    u32 dev;
    u32 bucket;   /* log2 of microseconds */
};

BPF_F_TABLE("lru_hash", struct disk_req, u64, disk_started, 8192, BPF_F_NO_COMMON_LRU);
BPF_HASH(disk_requests_total, struct disk_key, u64, 1024);
BPF_HASH(disk_bytes_total, struct disk_key, u64, 1024);
BPF_HASH(disk_latency_seconds, struct disk_bucket, u64, 4096);

static __always_inline void add_requests(struct disk_key *key, u64 amount)
{
    u64 zero = 0, *slot = disk_requests_total.lookup_or_try_init(key, &zero);
    if (slot)
        __sync_fetch_and_add(slot, amount);
}

static __always_inline void add_bytes(struct disk_key *key, u64 amount)
{
    u64 zero = 0, *slot = disk_bytes_total.lookup_or_try_init(key, &zero);
    if (slot)
        __sync_fetch_and_add(slot, amount);
}

static __always_inline void add_latency(struct disk_bucket *key, u64 amount)
{
    u64 zero = 0, *slot = disk_latency_seconds.lookup_or_try_init(key, &zero);
    if (slot)
        __sync_fetch_and_add(slot, amount);
}

static __always_inline u32 op_of(const char *rwbs)
{
    #pragma unroll
    for (int i = 0; i < 4; i++) {
        char c = rwbs[i];
        if (c == 'R')
            return 0;
        if (c == 'W')
            return 1;
        if (c == 0)
            break;
    }
    return 2;
}

TRACEPOINT_PROBE(block, block_rq_issue)
{
    struct disk_req req = {.dev = args->dev, .sector = args->sector};
    u64 now;
    if (!fo_in_scope())
        return 0;
    now = bpf_ktime_get_ns();
    disk_started.update(&req, &now);
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_complete)
{
    struct disk_req req = {.dev = args->dev, .sector = args->sector};
    struct disk_key key = {.dev = args->dev};
    struct disk_bucket hist = {.dev = args->dev};
    u64 *start = disk_started.lookup(&req);
    u64 delta;
    if (!start)
        return 0;
    delta = bpf_ktime_get_ns() - *start;
    disk_started.delete(&req);
    key.op = op_of(args->rwbs);
    add_requests(&key, 1);
    add_bytes(&key, (u64)args->nr_sector << 9);
    hist.bucket = fo_log2(delta / 1000);
    if (hist.bucket >= FO_BUCKETS)
        hist.bucket = FO_BUCKETS - 1;
    add_latency(&hist, 1);
    return 0;
}
