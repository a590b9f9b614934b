/* expect: clang: syntax.c:6:28: error: expected expression */
#include <freeoffload/policy.h>

FO_CONNECT_POLICY(bad)
{
    return ctx->dst_port = ;
}
