/*
 * freeoffload policy SDK: what an offload policy (C compiled by clang -target bpf) sees.
 *
 * A policy is called for every connect() a hooked program makes, with a pointer to a
 * struct fo_connect_ctx. It may rewrite the destination fields in place and return
 * FO_REWRITE, or return FO_PASS to leave the call exactly as the program made it.
 *
 * A policy is one function in SEC("connect") (FO_CONNECT_POLICY below), its maps in
 * SEC(".maps") declared with __uint/__type, and helpers numbered as in Linux:
 *
 *     #include <freeoffload/policy.h>
 *     FO_CONNECT_POLICY(my_policy)
 *     {
 *         if (ctx->dst_port == 80) { ctx->dst_port = 8080; return FO_REWRITE; }
 *         return FO_PASS;
 *     }
 *
 * Build and sign with `freeoffload policy compile my_policy.c -o my_policy.fop --key KEY`;
 * `freeoffload policy include-dir` prints the directory holding this header.
 */
#ifndef FREEOFFLOAD_POLICY_H
#define FREEOFFLOAD_POLICY_H

#ifndef __FO_TYPES_DEFINED
#define __FO_TYPES_DEFINED
typedef unsigned char fo_u8;
typedef unsigned short fo_u16;
typedef unsigned int fo_u32;
typedef unsigned long long fo_u64;
#endif

/* Return codes of a policy. */
#define FO_PASS 0    /* leave the call unchanged */
#define FO_REWRITE 1 /* connect to the destination now in the context */

/* Address families, as in Linux. */
#define FO_AF_INET 2
#define FO_AF_INET6 10

/* Socket types and protocols, as in Linux (for fo_connect_ctx.sock_type and .protocol). */
#define FO_SOCK_STREAM 1
#define FO_SOCK_DGRAM 2
#define FO_IPPROTO_TCP 6
#define FO_IPPROTO_UDP 17

/* Task types (the atomic task that models the task) and task flags. */
#define FO_TASK_NONE 0 /* the program runs with no task file */
#define FO_TASK_CPU 1
#define FO_TASK_IO 2
#define FO_TASK_TYPES 4       /* size of the per-Type arrays in struct fo_candidate */
#define FO_TASK_SENSITIVE 0x1 /* may only run on nodes with Security */
#define FO_TASK_URGENT 0x2    /* wants the lowest-latency capable edge */

/* Context flags. */
#define FO_CTX_V4MAPPED 0x1 /* family is FO_AF_INET6 but the address is IPv4-mapped (::ffff:a.b.c.d);
                               dst_ip4 holds the IPv4 address */

/* The context of one connect() call. 64 bytes; every field is in host byte order except the
 * addresses, which are in network byte order as on the wire. */
struct fo_connect_ctx {
    fo_u32 family;     /* FO_AF_INET or FO_AF_INET6: the destination's family (may be rewritten) */
    fo_u32 sock_type;  /* SOCK_STREAM 1, SOCK_DGRAM 2 (read only) */
    fo_u32 protocol;   /* IPPROTO_TCP 6, IPPROTO_UDP 17, 0 when the socket did not say (read only) */
    fo_u32 pid;        /* process id of the caller (read only) */
    fo_u32 dst_ip4;    /* IPv4 destination, network byte order (may be rewritten) */
    fo_u32 dst_port;   /* destination port, host byte order (may be rewritten) */
    fo_u8 dst_ip6[16]; /* IPv6 destination, network byte order (may be rewritten) */
    fo_u32 flags;      /* FO_CTX_* (read only) */
    fo_u32 task_type;  /* FO_TASK_NONE, FO_TASK_CPU or FO_TASK_IO (read only) */
    fo_u32 task_flags; /* FO_TASK_SENSITIVE | FO_TASK_URGENT (read only) */
    fo_u32 demand_cpu_milli;   /* the task's CPU demand in thousandths of a core (read only) */
    fo_u32 demand_memory_mib;  /* the task's memory demand in MiB (read only) */
    fo_u32 demand_storage_mib; /* the task's storage demand in MiB (read only) */
};

/* ---- The candidates map: one row per node a task may go to ------------------------------
 * Filled by the edge or center from its CR-map (Python: freeoffload.topology.candidates,
 * candidate_rows + pack_candidates), seen from one requesting node. Row i is the value of
 * key i (fo_u32) of an array map; unused rows are all zero (flags without FO_CAND_VALID). */

#define FO_MAX_CANDIDATES 64 /* max_entries of the candidates map */
#define FO_PLACED_HINT FO_MAX_CANDIDATES /* the local_placed key after the rows' (see below) */

#define FO_CAND_VALID 0x1  /* the row describes a node (zero rows are unused slots) */
#define FO_CAND_ONLINE 0x2 /* the node is online */
#define FO_CAND_SECURE 0x4 /* the node has Security: it may run sensitive tasks */
#define FO_CAND_FULL 0x8   /* memory or storage is over-committed: the node takes no task */

#define FO_ROLE_EDGE 1
#define FO_ROLE_CLOUD 2

#define FO_LEVEL_GROUP 0 /* the node is in the requesting node's group */
#define FO_LEVEL_OTHER 1 /* the node is an edge of another group */
#define FO_LEVEL_CLOUD 2 /* the node is a cloud node */

/* One candidate node. 128 bytes, every field fo_u32 or bytes, so the layout has no padding.
 * Addresses are in network byte order, everything else in host byte order. The *_rank fields
 * are dense ranks over the rows of one map (0 = best; equal values share a rank), so that a
 * policy compares exactly what the CR-map side compared, without floating point, as long as
 * the map is all it knows. `stamp` names the computation the row came from: a policy that
 * keeps real-time state of its own per row (e.g. the demand it has placed there since, see
 * struct fo_placed) starts that state afresh when the row's stamp changes. */
struct fo_candidate {
    fo_u32 flags;            /* FO_CAND_VALID | FO_CAND_ONLINE | FO_CAND_SECURE | FO_CAND_FULL */
    fo_u32 family;           /* FO_AF_INET or FO_AF_INET6: the family of the address below */
    fo_u32 ip4;              /* the node's task-service IPv4 address, network byte order */
    fo_u32 port;             /* the node's task-service port, host byte order */
    fo_u8 ip6[16];           /* the node's IPv6 address when family is FO_AF_INET6 */
    fo_u32 role;             /* FO_ROLE_EDGE or FO_ROLE_CLOUD */
    fo_u32 level;            /* FO_LEVEL_GROUP, FO_LEVEL_OTHER or FO_LEVEL_CLOUD */
    fo_u32 latency_us;       /* shortest-path latency from the requesting node, microseconds */
    fo_u32 headroom_milli;   /* free share of the node's CPU, thousandths (1000 = idle) */
    fo_u32 capable;          /* bit (1 << type) set when the node has a Capability for type */
    fo_u32 free_cpu_milli;   /* free CPU in thousandths of a core (rounded down) */
    fo_u32 free_memory_mib;  /* free memory in MiB (rounded down) */
    fo_u32 free_storage_mib; /* free storage in MiB (rounded down) */
    fo_u32 capability_us[FO_TASK_TYPES]; /* per type: the measured atomic task time, us
                                            (unscaled: power = capability / headroom) */
    fo_u32 latency_rank;              /* rank of the path latency (0 = lowest) */
    fo_u32 headroom_rank;             /* rank of the headroom (0 = most headroom) */
    fo_u32 power_rank[FO_TASK_TYPES]; /* per type: rank of the power (0 = strongest) */
    fo_u32 name_rank;                 /* rank of the node's Name: the last tie-break */
    fo_u32 cpu_milli;                 /* the node's whole CPU (cores), thousandths */
    fo_u32 stamp;                     /* nonzero; new whenever the rows are computed anew */
    fo_u32 key;                       /* this row's own key in the map (row i: i) */
    fo_u32 reserved[2];               /* zero */
};

/* What one process has placed on a candidate since the candidate's row was computed: the
 * value of the selection policy's process-local map (FO_PLACED_MAP), key = the row's key.
 * Valid only while `stamp` equals the row's stamp; a row with a new stamp (fresh data from
 * the center) starts from nothing placed. 16 bytes. */
struct fo_placed {
    fo_u32 stamp;       /* the candidate row's stamp these counts belong to */
    fo_u32 cpu_milli;   /* the Demand placed there: CPU, thousandths of a core */
    fo_u32 memory_mib;  /* Memory, MiB */
    fo_u32 storage_mib; /* Storage, MiB */
};

/* ---- Addresses ------------------------------------------------------------------------------
 * One destination of either family, as a map key or value (the redirect table uses it). For
 * FO_AF_INET the address is ip[0..3] (network byte order) and ip[4..15] are zero. 24 bytes. */
struct fo_addr {
    fo_u32 family; /* FO_AF_INET or FO_AF_INET6 */
    fo_u32 port;   /* host byte order */
    fo_u8 ip[16];  /* network byte order; IPv4 in the first 4 bytes, the rest zero */
};

/* The context's destination as a struct fo_addr; an IPv4-mapped IPv6 destination reads as
 * the IPv4 address it maps (FO_AF_INET), so one IPv4 rule covers both kinds of socket. */
static inline __attribute__((always_inline)) void
fo_ctx_addr(const struct fo_connect_ctx *ctx, struct fo_addr *a)
{
    __builtin_memset(a, 0, sizeof(*a));
    a->port = ctx->dst_port;
    if (ctx->family == FO_AF_INET || (ctx->flags & FO_CTX_V4MAPPED)) {
        a->family = FO_AF_INET;
        __builtin_memcpy(a->ip, &ctx->dst_ip4, 4);
    } else {
        a->family = ctx->family;
        __builtin_memcpy(a->ip, ctx->dst_ip6, 16);
    }
}

/* Points the context at `a`. An IPv4 destination on an IPv6 socket is connected to as
 * ::ffff:a.b.c.d by the hook. */
static inline __attribute__((always_inline)) void
fo_ctx_set_addr(struct fo_connect_ctx *ctx, const struct fo_addr *a)
{
    ctx->family = a->family;
    ctx->dst_port = a->port;
    if (a->family == FO_AF_INET) {
        __builtin_memcpy(&ctx->dst_ip4, a->ip, 4);
        __builtin_memset(ctx->dst_ip6, 0, 16);
    } else {
        ctx->dst_ip4 = 0;
        __builtin_memcpy(ctx->dst_ip6, a->ip, 16);
    }
}

/* What follows is for policies only (clang -target bpf defines __bpf__); host C code that
 * includes this header for the structs above sees none of it. */
#if defined(__bpf__) || defined(FO_POLICY_SOURCE)

/* ---- Maps, BTF style (clang -g emits the definition; our loader and libbpf read it) ------ */
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name
#define __array(name, val) __typeof__(val) *name[]

#ifndef BPF_MAP_TYPE_HASH
#define BPF_MAP_TYPE_HASH 1     /* key -> value, any key */
#define BPF_MAP_TYPE_ARRAY 2    /* fo_u32 index -> value, every index exists */
#define BPF_MAP_TYPE_LRU_HASH 9 /* hash that evicts the least recently used key when full */
#endif
#ifndef BPF_ANY
#define BPF_ANY 0     /* update: create or replace */
#define BPF_NOEXIST 1 /* update: create only */
#define BPF_EXIST 2   /* update: replace only */
#endif

/* The candidates map, declared with the one schema the CR-map side packs:
 *     FO_CANDIDATES_MAP;
 * at file scope declares `candidates`. */
#define FO_CANDIDATES_MAP                                  \
    struct {                                               \
        __uint(type, BPF_MAP_TYPE_ARRAY);                  \
        __uint(max_entries, FO_MAX_CANDIDATES);            \
        __type(key, fo_u32);                               \
        __type(value, struct fo_candidate);                \
    } candidates SEC(".maps")

/* The demand this process has placed on each candidate, process-local (a map named local_*:
 * never in the store, zeroed in each process for each policy generation, see the hook's
 * README):
 *     FO_PLACED_MAP;
 * at file scope declares `local_placed`, one struct fo_placed per candidates key, and one
 * more, key FO_PLACED_HINT, that the policy may use as it likes (select_target.c: nonzero
 * while CPU may be placed on a current row). */
#define FO_PLACED_MAP                                      \
    struct {                                               \
        __uint(type, BPF_MAP_TYPE_ARRAY);                  \
        __uint(max_entries, FO_MAX_CANDIDATES + 1);        \
        __type(key, fo_u32);                               \
        __type(value, struct fo_placed);                   \
    } local_placed SEC(".maps")

/* A policy's entry point: FO_CONNECT_POLICY(name) { ... } with `ctx` in scope. */
#define FO_CONNECT_POLICY(fn) SEC("connect") int fn(struct fo_connect_ctx *ctx)

/* ---- Helpers, numbered as in Linux ---------------------------------------------------------
 * map_lookup_elem returns a pointer into the map's value (NULL when the key is absent); the
 * update and delete helpers return 0 or a negative error. */
static void *(*const bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*const bpf_map_update_elem)(void *map, const void *key, const void *value,
                                         fo_u64 flags) = (void *)2;
static long (*const bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
/* Monotonic time in nanoseconds. */
static fo_u64 (*const bpf_ktime_get_ns)(void) = (void *)5;
/* Debug print (only with FREEOFFLOAD_HOOK_DEBUG=1 or a dry run): fmt, its size, up to 3 args. */
static long (*const bpf_trace_printk)(const char *fmt, fo_u32 fmt_size, ...) = (void *)6;
/* A pseudo-random 32-bit number. */
static fo_u32 (*const bpf_get_prandom_u32)(void) = (void *)7;

#endif /* __bpf__ */

/* ---- Byte order ----------------------------------------------------------------------------- */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FO_IP4(a, b, c, d) \
    ((fo_u32)(((fo_u32)(a) << 24) | ((fo_u32)(b) << 16) | ((fo_u32)(c) << 8) | (fo_u32)(d)))
#else
/* An IPv4 address a.b.c.d as the network-byte-order fo_u32 the context holds. */
#define FO_IP4(a, b, c, d) \
    ((fo_u32)(((fo_u32)(d) << 24) | ((fo_u32)(c) << 16) | ((fo_u32)(b) << 8) | (fo_u32)(a)))
#endif

/* Points the context at a candidate's address and port (both families). */
static inline __attribute__((always_inline)) void
fo_set_destination(struct fo_connect_ctx *ctx, const struct fo_candidate *c)
{
    ctx->family = c->family;
    ctx->dst_ip4 = c->ip4;
    ctx->dst_port = c->port;
    __builtin_memcpy(ctx->dst_ip6, c->ip6, sizeof(ctx->dst_ip6));
}

#ifdef __cplusplus
static_assert(sizeof(struct fo_connect_ctx) == 64, "fo_connect_ctx is 64 bytes");
static_assert(sizeof(struct fo_candidate) == 128, "fo_candidate is 128 bytes");
static_assert(sizeof(struct fo_addr) == 24, "fo_addr is 24 bytes");
static_assert(sizeof(struct fo_placed) == 16, "fo_placed is 16 bytes");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct fo_connect_ctx) == 64, "fo_connect_ctx is 64 bytes");
_Static_assert(sizeof(struct fo_candidate) == 128, "fo_candidate is 128 bytes");
_Static_assert(sizeof(struct fo_addr) == 24, "fo_addr is 24 bytes");
_Static_assert(sizeof(struct fo_placed) == 16, "fo_placed is 16 bytes");
#else /* C99: a negative array size stops the build when a layout is wrong */
typedef char fo_check_ctx_size[sizeof(struct fo_connect_ctx) == 64 ? 1 : -1];
typedef char fo_check_candidate_size[sizeof(struct fo_candidate) == 128 ? 1 : -1];
typedef char fo_check_addr_size[sizeof(struct fo_addr) == 24 ? 1 : -1];
typedef char fo_check_placed_size[sizeof(struct fo_placed) == 16 ? 1 : -1];
#endif

#endif /* FREEOFFLOAD_POLICY_H */
