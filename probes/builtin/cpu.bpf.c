/* CPU: busy time per CPU (sched:sched_switch) and run-queue latency (sched_wakeup and
 * sched_wakeup_new, or a preempted task, until sched_switch runs it). Tracepoint arguments only. */
#include "fo_probe.h"

#ifndef FO_MAX_CPUS
#define FO_MAX_CPUS 1024
#endif

/* Nanoseconds each CPU spent running tasks in scope; each CPU writes only its own slot. */
BPF_ARRAY(cpu_busy_seconds_total, u64, FO_MAX_CPUS);
/* When each CPU last switched tasks. */
BPF_ARRAY(cpu_last_switch, u64, FO_MAX_CPUS);
/* Run-queue latency in log2 buckets of microseconds. */
BPF_ARRAY(cpu_runq_latency_seconds, u64, FO_BUCKETS);
/* When each runnable task (by pid) entered the run queue. */
BPF_TABLE("lru_hash", u32, u64, cpu_enqueued, 16384);

static __always_inline void enqueue(u32 pid)
{
    u64 now;
    if (pid == 0)
        return;
    now = bpf_ktime_get_ns();
    cpu_enqueued.update(&pid, &now);
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    enqueue(args->pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    enqueue(args->pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_switch)
{
    u32 cpu = bpf_get_smp_processor_id();
    u64 now = bpf_ktime_get_ns();
    u64 *last = cpu_last_switch.lookup(&cpu);
    u32 next = args->next_pid;
    u64 *queued;

    /* The time since the last switch belonged to prev (pid 0 is the idle task); here the
     * current task is still prev, so the scope test sees prev's cgroup. */
    if (last) {
        if (*last && args->prev_pid != 0 && fo_in_scope()) {
            u64 *busy = cpu_busy_seconds_total.lookup(&cpu);
            if (busy)
                *busy += now - *last;
        }
        *last = now;
    }
    /* A preempted (state TASK_REPORT_MAX) or yielding (0) task stays runnable. */
    if (args->prev_state == 0 || args->prev_state >= 0x100)
        enqueue(args->prev_pid);
    if (next == 0)
        return 0;
    queued = cpu_enqueued.lookup(&next);
    if (queued) {
        u32 bucket = fo_log2((now - *queued) / 1000);
        u64 *count;
        if (bucket >= FO_BUCKETS)
            bucket = FO_BUCKETS - 1;
        count = cpu_runq_latency_seconds.lookup(&bucket);
        if (count)
            __sync_fetch_and_add(count, 1);
        cpu_enqueued.delete(&next);
    }
    return 0;
}
