/* Shared by the built-in probes. The loader defines FO_SCOPE_ID and FO_SCOPE_LEVEL (the cgroup v2
 * id and depth of the scope) when the collector is limited to one cgroup and its descendants. */
#ifndef FO_PROBE_H
#define FO_PROBE_H

static __always_inline int fo_in_scope(void)
{
#ifdef FO_SCOPE_ID
    return bpf_get_current_ancestor_cgroup_id(FO_SCOPE_LEVEL) == FO_SCOPE_ID;
#else
    return 1;
#endif
}

/* log2 bucket of a value: bucket b counts values in [2^b, 2^(b+1)), bucket 0 also counts 0. */
static __always_inline u32 fo_log2(u64 v)
{
    u32 r = 0, shift;
    shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
    shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
    shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
    shift = (v > 0xF) << 2; v >>= shift; r |= shift;
    shift = (v > 0x3) << 1; v >>= shift; r |= shift;
    r |= (v >> 1);
    return r;
}

#define FO_BUCKETS 40

/* The LRU hash tables are per-CPU LRU (BPF_F_NO_COMMON_LRU): no shared list lock on every
 * update, which halves the cost of the sched_switch program on this machine. */

/* The value of a sum_count map: a sum of observations and how many there were. */
struct sum_count {
    u64 sum;
    u64 count;
};

#endif
