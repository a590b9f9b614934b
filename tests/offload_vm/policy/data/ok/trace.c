/* A policy that says what it sees: bpf_trace_printk lines show in a dry run. */
#include <freeoffload/policy.h>

FO_CONNECT_POLICY(trace)
{
    char fmt[] = "port %u pid %u";

    bpf_trace_printk(fmt, sizeof(fmt), ctx->dst_port, ctx->pid);
    return FO_PASS;
}
