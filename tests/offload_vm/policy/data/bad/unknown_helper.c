/* expect: line 10: the VM knows no helper 99 */
#include <freeoffload/policy.h>

static long (*const no_such_helper)(fo_u32 x) = (void *)99;

FO_CONNECT_POLICY(bad)
{
    if (ctx->dst_port != 80)
        return FO_PASS;
    return no_such_helper(ctx->pid) ? FO_REWRITE : FO_PASS;
}
