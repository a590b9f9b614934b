/* Built with -D FROM_PORT=N -D TO_PORT=M: connections to FROM_PORT go to TO_PORT. */
#include <freeoffload/policy.h>

FO_CONNECT_POLICY(port_define)
{
    if (ctx->dst_port != FROM_PORT)
        return FO_PASS;
    ctx->dst_port = TO_PORT;
    return FO_REWRITE;
}
