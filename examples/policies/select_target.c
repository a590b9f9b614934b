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
 * compares) while no CPU is placed on any current row, else computed from free CPU less the
 * placed demand (fixed point, 2^-20).
 *
 * Cost (the hook runs this on every connect(); `freeoffload run --kernel` loads this same
 * object into the kernel's verifier): a first loop finds the destination's row and stops
 * there (a connection to anything else passes). One scan then chooses: while no CPU is placed
 * on a current row, scan_ranks compares the rows' ranks; once some is, scan_placed computes
 * the power (a division, and one for the headroom it needs) of the rows in S that may win,
 * and for a task that is neither Sensitive nor Urgent (edges ordered by headroom) the
 * headroom of every row in S; a copy of the scan for each kind (a branch between scans).
 * 16 rows with room on each, an Urgent task, bench/vm.py's JIT: 2,694 executed instructions
 * (~378 ns) before the copies, 1,834 (~311 ns) now; every row full: 1,772 (~273 ns) before,
 * 1,615 (~237 ns) now; load average 0.4-1.2, figures move by ~10% between runs. A hint the
 * policy keeps in local_placed (FO_PLACED_HINT) says which scan to run; a wrong hint costs the
 * other scan, never a different decision. The least-committed fallback, a scan of its own (a
 * third division per row), runs only when S is empty and some row could take the task that way.
 * For the verifier: what a scan carries from row to row is computed with masks, and one
 * branch per row skips the rows outside S; a mask never meets a constant in an AND or OR
 * (the 6.18 verifier forks its state at each such instruction); branches on per-run values
 * sit between the scans, so its work is the sum of the scans, not their product.
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

/* ---- masks: all ones or zero, computed without a branch from the sign of one subtraction
 * (three instructions), for values below 2^63: all here are fo_u32 fields, their sums, and
 * keys below KEY_MAX ---- */
#define KEY_MAX ((1ull << 63) - 1) /* the best key before any row: above every key */

static __attribute__((always_inline)) fo_u64 sign(fo_u64 d) /* all ones when d >= 2^63 */
{
    fo_u64 bit;

    BARRIER(d); /* clang must not know d's range: it would compute the bit with a branch */
    bit = d >> 63;
    BARRIER(bit);
    return -bit;
}

#define LT(a, b) sign((fo_u64)(a) - (fo_u64)(b))
#define NONZERO(x) sign(-(fo_u64)(x))
#define EQ(a, b) sign(((fo_u64)(a) ^ (fo_u64)(b)) - 1)

/* An index into the per-Type arrays that the kernel's verifier sees bounded (clang would drop
 * a mask it can prove redundant, and the verifier loses the bound through a 32-bit spill). */
static __attribute__((always_inline)) fo_u64 type_index(fo_u64 type)
{
    BARRIER(type);
    return type & (FO_TASK_TYPES - 1);
}

/* m ? a : b. Never a mask AND or OR a constant: the kernel's verifier (6.18) forks its state
 * at each such instruction (one state where the mask is 0, one where it is -1). */
#define PICK(m, a, b) ((b) ^ (((fo_u64)(a) ^ (fo_u64)(b)) & (m)))

/* What a scan needs of the task, computed once per run. */
struct task {
    const struct fo_connect_ctx *ctx;
    fo_u32 type;
    fo_u64 mask;       /* of fo_candidate.flags | capable << 32: the bits that decide (online,
                          full, secure, the Type's Capability)... */
    fo_u64 want;       /* ...and their values for the task */
    fo_u64 cloud_only; /* all ones when it is Sensitive and not Urgent */
    fo_u64 neither;    /* all ones when it is neither Sensitive nor Urgent */
    fo_u64 ip4;        /* all ones when the destination is IPv4 (or IPv4-mapped) */
    struct fo_addr dst; /* the connection's destination */
};

/* The best row so far: its key (lower wins) and the row's key in the map. */
struct best {
    fo_u64 k0, k1, k2, key;
};

/* One row with what this process placed on it, as masks and counts. */
struct row {
    fo_u64 cpu;  /* CPU placed on the row under its current stamp */
    fo_u64 ok;   /* passes every test but free CPU */
    fo_u64 fits; /* free CPU covers the placed CPU and the Demand */
};

/* Zero when row c may take the task at all: online, not full, a Capability for the Type,
 * Security for a Sensitive task, the cloud for one that is not Urgent. */
static __attribute__((always_inline)) fo_u64 ineligible(const struct task *t,
                                                        const struct fo_candidate *c)
{
    return (((c->flags | (fo_u64)c->capable << 32) & t->mask) ^ t->want) |
           ((c->role ^ FO_ROLE_CLOUD) & t->cloud_only);
}

/* Whether the connection goes to candidate c's address and port, as a mask. */
static __attribute__((always_inline)) fo_u64 is_destination(const struct task *t,
                                                            const struct fo_candidate *c)
{
    const fo_u32 *ip = (const fo_u32 *)t->dst.ip;
    const fo_u32 *ip6 = (const fo_u32 *)c->ip6;
    fo_u64 v6 = (ip[0] ^ ip6[0]) | (ip[1] ^ ip6[1]) | (ip[2] ^ ip6[2]) | (ip[3] ^ ip6[3]);

    return EQ((t->dst.port ^ c->port) | (t->dst.family ^ c->family) |
                  PICK(t->ip4, (fo_u64)(ip[0] ^ c->ip4), v6),
              0);
}

/* Row c with its placed counts p: the masks every scan uses (memory and storage are never
 * over-committed). */
static __attribute__((always_inline)) void measure(const struct task *t,
                                                   const struct fo_candidate *c,
                                                   const struct fo_placed *p, struct row *r)
{
    const struct fo_connect_ctx *ctx = t->ctx;
    fo_u64 stamp = p->stamp, row_stamp = c->stamp, same, no = ineligible(t, c);

    BARRIER(stamp); /* 64-bit values: clang would zero-extend their 32-bit XOR */
    BARRIER(row_stamp);
    same = EQ(stamp, row_stamp); /* counts of an older stamp are nothing placed */

    r->cpu = p->cpu_milli & same;
    r->ok = EQ(no, 0) &
            ~LT(c->free_memory_mib, (p->memory_mib & same) + ctx->demand_memory_mib) &
            ~LT(c->free_storage_mib, (p->storage_mib & same) + ctx->demand_storage_mib);
    r->fits = ~LT(c->free_cpu_milli, r->cpu + ctx->demand_cpu_milli);
}

/* All ones when row c is ordered by headroom: a task that is neither Sensitive nor Urgent,
 * on an edge. */
static __attribute__((always_inline)) fo_u64 own(const struct task *t, const struct fo_candidate *c)
{
    return t->neither & ~EQ(c->level, FO_LEVEL_CLOUD);
}

/* The rule's order from the rows' ranks (valid while nothing is placed): level first (group,
 * other group, cloud); every rank is below 128 (at most 64 rows), so 7 bits each suffice. */
static __attribute__((always_inline)) fo_u64 rank_key(const struct fo_candidate *c, fo_u32 type,
                                                      fo_u64 own)
{
    fo_u64 power = c->power_rank[type_index(type)];
    fo_u64 level = (fo_u64)c->level << 28;

    return PICK(own, level | c->headroom_rank << 21 | power << 14 | c->latency_rank << 7 |
                         c->name_rank,
                level | c->latency_rank << 21 | power << 14 | c->name_rank << 7);
}

/* Row c's headroom with `placed` CPU counted: (free - placed) / cores, at most 1, fixed point
 * (without cores, the row's own headroom: one division either way). */
static __attribute__((always_inline)) fo_u64 headroom_of(const struct fo_candidate *c,
                                                         fo_u64 placed)
{
    fo_u64 free_cpu = c->free_cpu_milli, cores = c->cpu_milli, known, h;

    free_cpu = (free_cpu - placed) & LT(placed, free_cpu);
    known = NONZERO(cores);
    h = PICK(known, free_cpu, c->headroom_milli) << Q;
    h /= PICK(known, cores, 1000);
    return PICK(LT(ONE, h), ONE, h);
}

/* The same order with `placed` CPU counted, as (hi, lo): headroom as headroom_of finds it,
 * power = capability / max(headroom, 0.01), both fixed point. hi for a row ordered by
 * latency (own zero) does not depend on the headroom. */
static __attribute__((always_inline)) fo_u64 placed_hi(const struct fo_candidate *c, fo_u64 own,
                                                       fo_u64 headroom)
{
    fo_u64 level = (fo_u64)c->level << 60;

    return PICK(own, level | (ONE - headroom) << 32, level | (fo_u64)c->latency_rank << 32);
}

/* The second half, lo, from the headroom placed_hi found: only needed for a row that may win. */
static __attribute__((always_inline)) fo_u64 placed_lo(const struct fo_candidate *c, fo_u32 type,
                                                       fo_u64 own, fo_u64 headroom)
{
    fo_u64 power = ((fo_u64)c->capability_us[type_index(type)] << 24) /
                   PICK(LT(headroom, MIN_HEADROOM_Q), MIN_HEADROOM_Q, headroom);

    return PICK(own, power << 14 | c->latency_rank << 7 | c->name_rank,
                power << 14 | c->name_rank << 7);
}

/* Rows are packed from key 0; the first empty one ends the table. */
#define FOR_EACH_ROW(c, p)                                                                \
    for (fo_u64 i = 0; i < FO_MAX_CANDIDATES; i++)                                      \
        if (((c) = bpf_map_lookup_elem(&candidates, &(fo_u32){i})),                     \
            ((p) = bpf_map_lookup_elem(&local_placed, &(fo_u32){i})),                   \
            !(c) || !(p) || !((c)->flags & FO_CAND_VALID)) {                            \
            break;                                                                      \
        } else

/* The choice while nothing is placed: S by the ranks (into r). Returns the CPU placed on
 * current rows (nonzero: the ranks are not the order, scan_placed is); `fallback` is nonzero
 * when a row could take the task least-committed. */
static __attribute__((always_inline)) fo_u64 scan_ranks(const struct task *t, struct best *r,
                                                        fo_u64 *fallback)
{
    struct fo_candidate *c;
    struct fo_placed *p;
    struct row w;
    fo_u64 any = 0, a1;

    FOR_EACH_ROW(c, p) {
        measure(t, c, p, &w);
        any |= w.cpu;
        *fallback |= w.ok & ~w.fits & c->cpu_milli;
        if (!(w.ok & w.fits)) /* the one branch on a row: the verifier's states stay few */
            continue;
        a1 = rank_key(c, t->type, own(t, c));
        if (a1 < r->k1) {
            r->k1 = a1;
            r->key = c->key;
        }
    }
    return any;
}

/* The choice with the placed CPU counted: S in the rule's order with headroom and power
 * computed (into s); returns and sets as scan_ranks. `neither` (a constant: each call site
 * gets its own copy) says whether the task is neither Sensitive nor Urgent: only then is a
 * row ordered by its headroom, else by latency, and the headroom (a division) is needed only
 * for the power of a row that may win. */
static __attribute__((always_inline)) fo_u64 scan_placed(const struct task *t, struct best *s,
                                                         fo_u64 *fallback, int neither)
{
    struct fo_candidate *c;
    struct fo_placed *p;
    struct row w;
    fo_u64 any = 0, hi, lo, o = 0, headroom = 0;

    FOR_EACH_ROW(c, p) {
        measure(t, c, p, &w);
        any |= w.cpu;
        *fallback |= w.ok & ~w.fits & c->cpu_milli;
        if (!(w.ok & w.fits))
            continue;
        if (neither) {
            o = own(t, c);
            headroom = headroom_of(c, w.cpu);
        }
        hi = placed_hi(c, o, headroom);
        if (hi > s->k1) /* cannot win: no need for its power (a division) */
            continue;
        if (!neither)
            headroom = headroom_of(c, w.cpu);
        lo = placed_lo(c, t->type, o, headroom);
        if (hi < s->k1 || lo < s->k2) {
            s->k1 = hi;
            s->k2 = lo;
            s->key = c->key;
        }
    }
    return any;
}

/* S is empty: of the rows that fail only on free CPU and know their cores, the one least
 * committed once the task is there (1 + committed share, fixed point), then the rule's
 * order: with the placed CPU counted when `placed` (a constant: each call site gets its own
 * copy), else by the ranks. */
static __attribute__((always_inline)) fo_u64 scan_fallback(const struct task *t, int placed)
{
    struct best b = {KEY_MAX, KEY_MAX, KEY_MAX, NONE};
    struct fo_candidate *c;
    struct fo_placed *p;
    struct row w;
    fo_u64 cores, free_cpu, a0, a1, a2 = 0, win, headroom;

    FOR_EACH_ROW(c, p) {
        measure(t, c, p, &w);
        cores = c->cpu_milli;
        if (!(w.ok & ~w.fits) || !cores) /* a skip only: the carried state is the same */
            continue;
        free_cpu = c->free_cpu_milli;
        free_cpu = PICK(LT(cores, free_cpu), cores, free_cpu);
        a0 = 1 + (((cores - free_cpu + w.cpu + t->ctx->demand_cpu_milli) << Q) / cores);
        if (placed) {
            headroom = headroom_of(c, w.cpu);
            a1 = placed_hi(c, own(t, c), headroom);
            a2 = placed_lo(c, t->type, own(t, c), headroom);
        } else {
            a1 = rank_key(c, t->type, own(t, c));
        }
        win = LT(a0, b.k0) | (EQ(a0, b.k0) & (LT(a1, b.k1) | (EQ(a1, b.k1) & LT(a2, b.k2))));
        b.k0 = PICK(win, a0, b.k0);
        b.k1 = PICK(win, a1, b.k1);
        b.k2 = PICK(win, a2, b.k2);
        b.key = PICK(win, (fo_u64)c->key, b.key);
    }
    return b.key;
}

/* The first 8 bytes of a struct fo_placed as one word: its stamp and its CPU count. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HEAD(stamp, cpu) ((fo_u64)(stamp) << 32 | (fo_u32)(cpu))
#define HEAD_STAMP(head) ((fo_u32)((head) >> 32))
#else
#define HEAD(stamp, cpu) ((fo_u64)(cpu) << 32 | (fo_u32)(stamp))
#define HEAD_STAMP(head) ((fo_u32)(head))
#endif

/* Adds the task's Demand to what this process has placed on row c. Threads of the process
 * place at once: the first to see a new stamp claims the row by swapping {stamp, CPU} in one
 * compare-and-swap (a thread that loses adds to the claimed row, so no count is lost), then
 * turns the memory and storage counts it read before the claim into its own Demand with
 * atomic adds, keeping what others added since. */
static __attribute__((always_inline)) void place(const struct fo_connect_ctx *ctx,
                                                 const struct fo_candidate *c, struct fo_placed *p)
{
    fo_u64 *head = (fo_u64 *)p;
    fo_u64 seen;
    fo_u32 memory, storage;

    for (int attempt = 0; attempt < 3; attempt++) {
        seen = *(volatile fo_u64 *)head;
        if (HEAD_STAMP(seen) == c->stamp)
            break;
        /* fresh row: what was sent before is in its measures */
        memory = *(volatile fo_u32 *)&p->memory_mib;
        storage = *(volatile fo_u32 *)&p->storage_mib;
        if (__sync_val_compare_and_swap(head, seen, HEAD(c->stamp, ctx->demand_cpu_milli)) ==
            seen) {
            __sync_fetch_and_add(&p->memory_mib, ctx->demand_memory_mib - memory);
            __sync_fetch_and_add(&p->storage_mib, ctx->demand_storage_mib - storage);
            return;
        }
    }
    __sync_fetch_and_add(&p->cpu_milli, ctx->demand_cpu_milli);
    __sync_fetch_and_add(&p->memory_mib, ctx->demand_memory_mib);
    __sync_fetch_and_add(&p->storage_mib, ctx->demand_storage_mib);
}

FO_CONNECT_POLICY(select_target)
{
    struct fo_candidate *target;
    struct fo_placed *p, *hint;
    struct best ranks = {KEY_MAX, KEY_MAX, KEY_MAX, NONE}, placed = ranks;
    struct task t;
    fo_u64 any = 0, fallback = 0, best;
    fo_u32 flags = ctx->task_flags, hinted;

    if (ctx->task_type == FO_TASK_NONE || ctx->task_type >= FO_TASK_TYPES)
        return FO_PASS;
    t.ctx = ctx;
    t.type = ctx->task_type & (FO_TASK_TYPES - 1);
    /* masks, not branches: the verifier would follow the rest once per kind of task */
    t.want = FO_CAND_ONLINE | FO_CAND_SECURE * (flags & FO_TASK_SENSITIVE) |
             (fo_u64)(1u << t.type) << 32;
    t.mask = t.want | FO_CAND_FULL;
    t.cloud_only = EQ(flags & (FO_TASK_SENSITIVE | FO_TASK_URGENT), FO_TASK_SENSITIVE);
    t.neither = EQ(flags & (FO_TASK_SENSITIVE | FO_TASK_URGENT), 0);
    fo_ctx_addr(ctx, &t.dst);
    t.ip4 = EQ(t.dst.family, FO_AF_INET);
    for (fo_u32 i = 0;; i++) { /* only connections to a candidate are tasks to place */
        struct fo_candidate *c = bpf_map_lookup_elem(&candidates, &(fo_u32){i});

        if (i >= FO_MAX_CANDIDATES || !c || !(c->flags & FO_CAND_VALID))
            return FO_PASS;
        if (is_destination(&t, c))
            break;
    }
    hint = bpf_map_lookup_elem(&local_placed, &(fo_u32){FO_PLACED_HINT});
    if (!hint)
        return FO_PASS;
    hinted = hint->cpu_milli;
    if (!hinted)
        any = scan_ranks(&t, &ranks, &fallback);
    if (hinted || any) {
        any = t.neither ? scan_placed(&t, &placed, &fallback, 1)
                        : scan_placed(&t, &placed, &fallback, 0);
        if (!any) { /* nothing placed on current rows any more (new stamps): the ranks */
            hint->cpu_milli = 0;
            ranks = (struct best){KEY_MAX, KEY_MAX, KEY_MAX, NONE}; /* rows may have moved */
            any = scan_ranks(&t, &ranks, &fallback);
        }
    }
    best = any ? placed.key : ranks.key;
    if (best == NONE && fallback)
        best = any ? scan_fallback(&t, 1) : scan_fallback(&t, 0);
    if (best == NONE)
        return FO_PASS;
    fo_u32 chosen = best;
    target = bpf_map_lookup_elem(&candidates, &chosen);
    p = bpf_map_lookup_elem(&local_placed, &chosen);
    if (!target || !p || target->key != chosen)
        return FO_PASS;
    place(ctx, target, p);
    if (ctx->demand_cpu_milli && !hint->cpu_milli) /* CPU placed: the placed scan next time */
        hint->cpu_milli = 1;
    fo_set_destination(ctx, target);
    return FO_REWRITE;
}
