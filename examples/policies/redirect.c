/* A plain redirect table: connections to an original address go to a new one.
 *
 * The `redirects` map is keyed by the original destination (family, address, port) and holds
 * the new destination; anything not in the table passes unchanged. IPv4-mapped IPv6
 * destinations match their IPv4 rule. Fill it from Python with
 * freeoffload.offload_vm.policy.redirect_entry("10.0.0.11:80", "10.0.0.13:8080"), or in a dry
 * run with `--map redirects=TABLE.yaml` (rows `- {from: "10.0.0.11:80", to: "10.0.0.13:8080"}`).
 */
#include <freeoffload/policy.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct fo_addr);   /* the destination the program asked for */
    __type(value, struct fo_addr); /* where it goes instead */
} redirects SEC(".maps");

FO_CONNECT_POLICY(redirect)
{
    struct fo_addr original;
    struct fo_addr *target;

    fo_ctx_addr(ctx, &original);
    target = bpf_map_lookup_elem(&redirects, &original);
    if (!target)
        return FO_PASS;
    fo_ctx_set_addr(ctx, target);
    return FO_REWRITE;
}
