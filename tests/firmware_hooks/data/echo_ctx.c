/* Test policy: prints the context it was given (bpf_trace_printk reaches stderr when
 * FREEOFFLOAD_HOOK_DEBUG=1), so a test can check what the hook told the policy; passes. */
#include <freeoffload/policy.h>

FO_CONNECT_POLICY(echo_ctx)
{
    char a[] = "family=%u type=%u protocol=%u";
    char b[] = "ip4=%x port=%u flags=%u";
    char c[] = "task=%u task_flags=%u cpu=%u";
    char d[] = "memory=%u storage=%u pid=%u";
    bpf_trace_printk(a, sizeof(a), ctx->family, ctx->sock_type, ctx->protocol);
    bpf_trace_printk(b, sizeof(b), ctx->dst_ip4, ctx->dst_port, ctx->flags);
    bpf_trace_printk(c, sizeof(c), ctx->task_type, ctx->task_flags, ctx->demand_cpu_milli);
    bpf_trace_printk(d, sizeof(d), ctx->demand_memory_mib, ctx->demand_storage_mib, ctx->pid);
    return FO_PASS;
}
