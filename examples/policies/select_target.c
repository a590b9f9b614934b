/* The offload target selection of the CR-map issue, over the `candidates` map, with the
 * demand this process has placed since the rows were computed (real-time state at the device).
 *
 * For a task-bearing connect() to one of the candidate nodes, choose the node the task goes to
 * and point the connection there:
 *   S = online nodes with a Capability for the task's Type whose free CPU, Memory and Storage,
 *       less what this process has already sent there, cover its Demand, and with Security
 *       when the task is Sensitive;
 *   Sensitive and not Urgent: the cloud in S with the lowest path latency;
 *   Urgent (Sensitive or not): the edge in S with the lowest path latency (ties: the stronger);
 *   neither: the edge in S with the most headroom (ties: stronger, then lower latency);
 *   edges of the requester's group first, then other groups, then the cloud; last tie: name.
 *   S empty: of the nodes that pass every test but free CPU, the one whose CPU would be least
 *   committed relative to its size (CPU is time-shared: over-committing it slows a node down
 *   in proportion to its size; memory and storage are not shared that way); none: pass.
 * Each choice adds the task's Demand to the chosen row's count in `local_placed` (state of
 * this process only), so a burst of tasks fills the best node's free capacity, then the next
 * ones in the rule's order, as the algorithm would if the map were updated after every task.
 * A row with a new stamp (fresh data from the center, which already measures what was sent
 * before) starts from nothing placed.
 * Headroom and power are the rows' (their dense ranks: exactly what topology.select_target
 * compares) while nothing is placed on any current row, else computed from free CPU less the
 * placed demand (fixed point, 2^-20).
 * The scan over the rows has no branch that depends on a row (masks instead), so the
 * kernel's verifier (the --kernel path runs this same object) follows one path per row.
 * The rows come from freeoffload.topology.candidates (candidate_rows). Connections to anything
 * that is not a candidate, and programs without a task, pass.
 */
#include <freeoffload/policy.h>

FO_CANDIDATES_MAP;
FO_PLACED_MAP;

#define NONE 0xffffffffu
#define Q 20                                 /* fixed point: 1.0 = 1 << Q */
#define ONE (1ull << Q)
#define MIN_HEADROOM_Q (ONE / 100 + 1)       /* topology's MIN_HEADROOM, 0.01 */
#define BARRIER(x) asm volatile("" : "+r"(x)) /* clang must not turn a mask into a branch */

/* ---- masks: all ones or zero, computed without a branch, of values below 2^63 (all here:
 * fo_u32 fields, their sums, the keys below KEY_MAX): a subtraction and the sign bit, three
 * instructions where a full 64-bit comparison takes nine ---- */
#define KEY_MAX ((1ull << 63) - 1) /* the best key before any row: above every key */

static __attribute__((always_inline)) fo_u64 sign(fo_u64 d) /* all ones when d >= 2^63 */
{
    fo_u64 bit;

    BARRIER(d); /* clang must not know d's range: it would compute the bit with a branch */
    bit = d >> 63;
    BARRIER(bit);
    return -bit;
}

#define lt(a, b) sign((fo_u64)(a) - (fo_u64)(b))
#define nonzero(x) sign(-(fo_u64)(x))
#define EQ(a, b) sign(((fo_u64)(a) ^ (fo_u64)(b)) - 1)
#define PICK(m, a, b) (((a) & (m)) | ((b) & ~(m))) /* m ? a : b */

/* Whether row c may take the task at all, as a mask: online, not full, a Capability for the
 * Type, Security for a Sensitive task, the cloud for one that is not Urgent. */
static __attribute__((always_inline)) fo_u64 eligible(const struct fo_connect_ctx *ctx,
                                                      const struct fo_candidate *c)
{
    fo_u64 ok = EQ(c->flags & (FO_CAND_ONLINE | FO_CAND_FULL), FO_CAND_ONLINE) &
                nonzero(c->capable & (1u << ctx->task_type));

    if (ctx->task_flags & FO_TASK_SENSITIVE) {
        ok &= nonzero(c->flags & FO_CAND_SECURE);
        if (!(ctx->task_flags & FO_TASK_URGENT))
            ok &= EQ(c->role, FO_ROLE_CLOUD);
    }
    return ok;
}

/* The rule's order from the rows' ranks (valid while nothing is placed): level first (group,
 * other group, cloud); every rank is below 128 (at most 64 rows), so 7 bits each suffice. */
static __attribute__((always_inline)) fo_u64 rank_key(const struct fo_candidate *c, fo_u32 type,
                                                      fo_u64 own)
{
    fo_u64 power = c->power_rank[type];
    fo_u64 level = (fo_u64)c->level << 28;

    return PICK(own, level | c->headroom_rank << 21 | power << 14 | c->latency_rank << 7 |
                         c->name_rank,
                level | c->latency_rank << 21 | power << 14 | c->name_rank << 7);
}

/* The same order with `placed` CPU counted, as (hi, lo): headroom = (free - placed) / cores,
 * power = capability / max(headroom, 0.01), both fixed point. */
static __attribute__((always_inline)) void placed_key(const struct fo_candidate *c, fo_u32 type,
                                                      fo_u64 own, fo_u64 placed, fo_u64 *hi,
                                                      fo_u64 *lo)
{
    fo_u64 free_cpu = c->free_cpu_milli, cores = c->cpu_milli, headroom, power, level;

    free_cpu = (free_cpu - placed) & lt(placed, free_cpu);
    /* x / 0 is 0 in eBPF; without cores, the row's own headroom */
    headroom = PICK(nonzero(cores), (free_cpu << Q) / cores,
                    ((fo_u64)c->headroom_milli << Q) / 1000);
    headroom = PICK(lt(ONE, headroom), ONE, headroom);
    power = ((fo_u64)c->capability_us[type] << 24) /
            PICK(lt(headroom, MIN_HEADROOM_Q), MIN_HEADROOM_Q, headroom);
    level = (fo_u64)c->level << 60;
    *hi = PICK(own, level | (ONE - headroom) << 32, level | (fo_u64)c->latency_rank << 32);
    *lo = PICK(own, power << 14 | c->latency_rank << 7 | c->name_rank,
               power << 14 | c->name_rank << 7);
}

/* All ones when the counts of `placed` belong to the row's stamp, else 0 (nothing placed yet). */
static __attribute__((always_inline)) fo_u64 current(const struct fo_placed *p,
                                                     const struct fo_candidate *c)
{
    return EQ(p->stamp, c->stamp);
}

/* Whether the connection goes to candidate c's address and port (no memcmp in eBPF). */
static __attribute__((always_inline)) int is_destination(const struct fo_addr *dst,
                                                         const struct fo_candidate *c)
{
    const fo_u32 *ip = (const fo_u32 *)dst->ip;
    const fo_u32 *ip6 = (const fo_u32 *)c->ip6;

    if (dst->port != c->port || dst->family != c->family)
        return 0;
    if (c->family == FO_AF_INET)
        return ip[0] == c->ip4;
    return ip[0] == ip6[0] && ip[1] == ip6[1] && ip[2] == ip6[2] && ip[3] == ip6[3];
}

/* Adds the task's Demand to what this process has placed on row c. */
static __attribute__((always_inline)) void place(const struct fo_connect_ctx *ctx,
                                                 const struct fo_candidate *c, struct fo_placed *p)
{
    if (p->stamp != c->stamp) { /* fresh row: what was sent before is in its measures */
        p->cpu_milli = ctx->demand_cpu_milli;
        p->memory_mib = ctx->demand_memory_mib;
        p->storage_mib = ctx->demand_storage_mib;
        p->stamp = c->stamp;
        return;
    }
    __sync_fetch_and_add(&p->cpu_milli, ctx->demand_cpu_milli);
    __sync_fetch_and_add(&p->memory_mib, ctx->demand_memory_mib);
    __sync_fetch_and_add(&p->storage_mib, ctx->demand_storage_mib);
}

FO_CONNECT_POLICY(select_target)
{
    struct fo_addr dst;
    struct fo_candidate *target;
    struct fo_placed *p;
    /* The best row so far and its key, lower wins: k0 = 0 for a row in S, else 1 + its
     * committed CPU (the fallback), k1, k2 the rule's order. */
    fo_u64 k0 = KEY_MAX, k1 = KEY_MAX, k2 = KEY_MAX, best = NONE, any = 0, neither;
    fo_u32 type = ctx->task_type & (FO_TASK_TYPES - 1);

    if (ctx->task_type == FO_TASK_NONE || ctx->task_type >= FO_TASK_TYPES)
        return FO_PASS;
    neither = ctx->task_flags & (FO_TASK_SENSITIVE | FO_TASK_URGENT) ? 0 : ~0ull;
    fo_ctx_addr(ctx, &dst);
    for (fo_u32 i = 0;; i++) { /* only connections to a candidate are tasks to place */
        fo_u32 key = i;
        struct fo_candidate *c = bpf_map_lookup_elem(&candidates, &key);

        if (i >= FO_MAX_CANDIDATES || !c || !(c->flags & FO_CAND_VALID))
            return FO_PASS;
        if (is_destination(&dst, c))
            break;
    }
    for (fo_u32 i = 0; i < FO_MAX_CANDIDATES; i++) { /* anything placed on a current row? */
        fo_u32 key = i;
        struct fo_candidate *c = bpf_map_lookup_elem(&candidates, &key);

        p = bpf_map_lookup_elem(&local_placed, &key);
        if (!c || !p || !(c->flags & FO_CAND_VALID))
            break;
        any |= p->cpu_milli & current(p, c);
    }
    any = nonzero(any);
    for (fo_u32 i = 0; i < FO_MAX_CANDIDATES; i++) {
        fo_u32 key = i;
        struct fo_candidate *c = bpf_map_lookup_elem(&candidates, &key);
        fo_u64 same, cpu, free_cpu, cores, ok, fits, own, a0, a1, a2, hi, lo, win;

        p = bpf_map_lookup_elem(&local_placed, &key);
        if (!c || !p || !(c->flags & FO_CAND_VALID))
            break; /* rows are packed from key 0; the first empty one ends the table */
        same = current(p, c);
        cpu = p->cpu_milli & same;
        free_cpu = c->free_cpu_milli;
        cores = c->cpu_milli;
        /* memory and storage are never over-committed */
        ok = eligible(ctx, c) &
             ~lt(c->free_memory_mib, (p->memory_mib & same) + ctx->demand_memory_mib) &
             ~lt(c->free_storage_mib, (p->storage_mib & same) + ctx->demand_storage_mib);
        fits = ~lt(free_cpu, cpu + ctx->demand_cpu_milli);
        ok &= fits | nonzero(cores); /* S lacks it: the fallback needs its size */
        free_cpu = PICK(lt(cores, free_cpu), cores, free_cpu);
        a0 = ~fits & (1 + (((cores - free_cpu + cpu + ctx->demand_cpu_milli) << Q) / cores));
        own = neither & ~EQ(c->level, FO_LEVEL_CLOUD);
        placed_key(c, type, own, cpu, &hi, &lo);
        a1 = PICK(any, hi, rank_key(c, type, own));
        a2 = lo & any;
        win = ok & (lt(a0, k0) | (EQ(a0, k0) & (lt(a1, k1) | (EQ(a1, k1) & lt(a2, k2)))));
        k0 = PICK(win, a0, k0);
        k1 = PICK(win, a1, k1);
        k2 = PICK(win, a2, k2);
        best = PICK(win, (fo_u64)c->key, best);
    }
    if (best == NONE)
        return FO_PASS;
    fo_u32 chosen = best;
    target = bpf_map_lookup_elem(&candidates, &chosen);
    p = bpf_map_lookup_elem(&local_placed, &chosen);
    if (!target || !p || target->key != chosen)
        return FO_PASS;
    place(ctx, target, p);
    fo_set_destination(ctx, target);
    return FO_REWRITE;
}
