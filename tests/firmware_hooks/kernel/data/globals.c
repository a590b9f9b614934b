/* A policy using .rodata, .data and .bss: connections to port `trigger` go to TARGET_PORT
 * (given with -D at compile time), counted in `hits`. */
#include <freeoffload/policy.h>

static volatile const fo_u32 targets[2] = {TARGET_PORT, 0}; /* .rodata */
fo_u32 trigger = 9;                                        /* .data */
fo_u64 hits;                                               /* .bss */

FO_CONNECT_POLICY(globals)
{
    if (ctx->dst_port != trigger)
        return FO_PASS;
    __sync_fetch_and_add(&hits, 1);
    ctx->dst_port = targets[hits > 1000];
    return FO_REWRITE;
}
