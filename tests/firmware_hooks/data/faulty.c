/* Test policies that fail at run time: MODE 1 reads far outside the context (a VM fault),
 * MODE 2 returns a code that is neither FO_PASS nor FO_REWRITE, MODE 3 rewrites to a port
 * that does not exist (70000). The hook must let each call pass unchanged. */
#include <freeoffload/policy.h>

FO_CONNECT_POLICY(faulty)
{
#if MODE == 1
    return *(volatile fo_u32 *)((char *)ctx + ctx->dst_port * 64);
#elif MODE == 2
    ctx->dst_port = 1;
    return 7;
#else
    ctx->dst_port = 70000;
    return FO_REWRITE;
#endif
}
