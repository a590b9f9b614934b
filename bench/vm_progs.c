/*
 * The benchmark workloads of bench/vm.py, one source for both sides: compiled by
 * `clang -O2 -target bpf` into programs for our VM, and by `gcc -O2 -DNATIVE` into the native
 * baseline. Only map access differs (a helper call in eBPF, an array index natively).
 */
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

struct candidate {
    u32 latency_us;
    u32 flags;
    u32 ip4;
    u32 port;
};

struct policy_ctx {
    u32 want_flags;
    u32 chosen;
    u32 ip4;
    u32 port;
};

#define NCAND 16

#ifdef NATIVE
#define SEC(name)
#define PROG(name) __attribute__((noinline)) u64 native_##name
extern struct candidate native_candidates[NCAND];
#define CANDIDATE(i) (&native_candidates[i])
#define BARRIER(x) __asm__ volatile("" : "+r"(x))
#else
#define SEC(name) __attribute__((section(name), used))
#define PROG(name) SEC(#name) u64 prog_##name
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
struct {
    __uint(type, 2);
    __uint(max_entries, NCAND);
    __type(key, u32);
    __type(value, struct candidate);
} candidates SEC(".maps");
static inline struct candidate *candidate_at(u32 i)
{
    return bpf_map_lookup_elem(&candidates, &i);
}
#define CANDIDATE(i) candidate_at(i)
#define BARRIER(x) __asm__ volatile("" : "+r"(x))
#endif

PROG(empty)(void *ctx)
{
    (void)ctx;
    return 0;
}

/* sum of 1..1000; the barrier keeps both compilers from replacing the loop by n(n+1)/2 */
PROG(sum)(void *ctx)
{
    u64 sum = 0;
    (void)ctx;
    for (u64 i = 1; i <= 1000; i++) {
        BARRIER(i);
        sum += i;
    }
    return sum;
}

/* FNV-1a over the 64 bytes of the context */
PROG(hash)(u8 *ctx)
{
    u64 h = 14695981039346656037ull;
    for (int i = 0; i < 64; i++) {
        h ^= ctx[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* the connect policy: among 16 candidates with all wanted flags, the lowest latency */
PROG(policy)(struct policy_ctx *ctx)
{
    u32 best = 0xffffffff, best_latency = 0xffffffff;
    for (u32 i = 0; i < NCAND; i++) {
        struct candidate *c = CANDIDATE(i);
        if (!c)
            break;
        if ((c->flags & ctx->want_flags) == ctx->want_flags && c->latency_us < best_latency) {
            best_latency = c->latency_us;
            best = i;
        }
    }
    if (best == 0xffffffff)
        return 0;
    {
        struct candidate *c = CANDIDATE(best);
        if (!c)
            return 0;
        ctx->chosen = best;
        ctx->ip4 = c->ip4;
        ctx->port = c->port;
    }
    return 1;
}
