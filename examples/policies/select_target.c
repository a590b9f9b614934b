/* The offload target selection of the CR-map issue, over the `candidates` map.
 *
 * For a task-bearing connect() to one of the candidate nodes, choose the node the task goes to
 * and point the connection there:
 *   S = online nodes with a Capability for the task's Type whose free CPU, Memory and Storage
 *       cover its Demand, and with Security when the task is Sensitive;
 *   Sensitive and not Urgent: the cloud in S with the lowest path latency;
 *   Urgent (Sensitive or not): the edge in S with the lowest path latency (ties: the stronger);
 *   neither: the edge in S with the most headroom (ties: stronger, then lower latency);
 *   edges of the requester's group first, then other groups, then the cloud; last tie: name.
 * The rows come from freeoffload.topology.candidates (candidate_rows): each carries dense ranks
 * so that this program compares exactly what freeoffload.topology.select_target compares.
 * Connections to anything that is not a candidate, and programs without a task, pass.
 */
#include <freeoffload/policy.h>

FO_CANDIDATES_MAP;

#define NO_CHOICE 0xffffffffu

/* Whether candidate c can execute the task of ctx (it is in S, at the rule's levels). */
static __attribute__((always_inline)) int can_execute(const struct fo_connect_ctx *ctx,
                                                      const struct fo_candidate *c)
{
    fo_u32 sensitive = ctx->task_flags & FO_TASK_SENSITIVE;

    if ((c->flags & (FO_CAND_ONLINE | FO_CAND_FULL)) != FO_CAND_ONLINE)
        return 0;
    if (!(c->capable & (1u << ctx->task_type)))
        return 0;
    if (sensitive && !(c->flags & FO_CAND_SECURE))
        return 0;
    if (sensitive && !(ctx->task_flags & FO_TASK_URGENT) && c->role != FO_ROLE_CLOUD)
        return 0; /* Sensitive, not Urgent: the cloud */
    return c->free_cpu_milli >= ctx->demand_cpu_milli &&
           c->free_memory_mib >= ctx->demand_memory_mib &&
           c->free_storage_mib >= ctx->demand_storage_mib;
}

/* The candidate's sort key: lower wins. Level first (group, other group, cloud), then the
 * rule's order; every rank is below 128 (at most 64 rows), so 7 bits each suffice. */
static __attribute__((always_inline)) fo_u32 sort_key(const struct fo_connect_ctx *ctx,
                                                      const struct fo_candidate *c)
{
    fo_u32 power = c->power_rank[ctx->task_type & (FO_TASK_TYPES - 1)];

    if (!(ctx->task_flags & (FO_TASK_SENSITIVE | FO_TASK_URGENT)) && c->level != FO_LEVEL_CLOUD)
        return c->level << 28 | c->headroom_rank << 21 | power << 14 | c->latency_rank << 7 |
               c->name_rank;
    return c->level << 28 | c->latency_rank << 21 | power << 14 | c->name_rank << 7;
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

FO_CONNECT_POLICY(select_target)
{
    struct fo_addr dst;
    fo_u32 best_key = NO_CHOICE, best = 0, to_candidate = 0;

    if (ctx->task_type == FO_TASK_NONE || ctx->task_type >= FO_TASK_TYPES)
        return FO_PASS;
    fo_ctx_addr(ctx, &dst);
    for (fo_u32 i = 0; i < FO_MAX_CANDIDATES; i++) {
        fo_u32 key = i;
        struct fo_candidate *c = bpf_map_lookup_elem(&candidates, &key);

        if (!c || !(c->flags & FO_CAND_VALID))
            break; /* rows are packed from key 0; the first empty one ends the table */
        to_candidate |= is_destination(&dst, c);
        if (can_execute(ctx, c) && sort_key(ctx, c) < best_key) {
            best_key = sort_key(ctx, c);
            best = i;
        }
    }
    if (!to_candidate || best_key == NO_CHOICE)
        return FO_PASS;
    struct fo_candidate *chosen = bpf_map_lookup_elem(&candidates, &best);
    if (!chosen)
        return FO_PASS;
    fo_set_destination(ctx, chosen);
    return FO_REWRITE;
}
