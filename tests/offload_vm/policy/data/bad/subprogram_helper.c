/* expect: line 8: the VM knows no helper 99, called in a function that is not inlined */
#include <freeoffload/policy.h>

static long (*const no_such_helper)(fo_u32 x) = (void *)99;

static __attribute__((noinline)) int ask(struct fo_connect_ctx *ctx)
{
    return no_such_helper(ctx->pid) ? FO_REWRITE : FO_PASS;
}

FO_CONNECT_POLICY(bad)
{
    if (ctx->dst_port != 80)
        return FO_PASS;
    return ask(ctx);
}
