/* Test policy: connections to FROM_PORT go to TO_PORT on the same host (compiled with -D). */
#include <freeoffload/policy.h>

FO_CONNECT_POLICY(to_port)
{
    if (ctx->dst_port != FROM_PORT)
        return FO_PASS;
    ctx->dst_port = TO_PORT;
    return FO_REWRITE;
}
