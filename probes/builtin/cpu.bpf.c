/* CPU: busy time per CPU (sched:sched_switch) and run-queue latency (sched_wakeup and
 * sched_wakeup_new, or a preempted task, until sched_switch runs it). Tracepoint arguments only. */
#include "fo_probe.h"

#ifndef FO_MAX_CPUS
#define FO_MAX_CPUS 1024
#endif

/* Nanoseconds each CPU spent running tasks in scope; each CPU writes only its own slot. */
BPF_ARRAY(cpu_busy_seconds_total, u64, FO_MAX_CPUS);
/* When each CPU last switched tasks, and whether it then started running a task in scope:
 * the collector adds the time of that run so far, so a long run is counted as it goes. */
struct running {
    u64 since;
    u64 running;
};
BPF_ARRAY(cpu_running_since_seconds, struct running, FO_MAX_CPUS);
#ifdef FO_SCOPE_ID
/* Whether each task (by pid) was in scope when it last ran. */
BPF_F_TABLE("lru_hash", u32, u8, cpu_scope_pids, 65536, BPF_F_NO_COMMON_LRU);
#endif
/* Run-queue latency in log2 buckets of microseconds. */
BPF_ARRAY(cpu_runq_latency_seconds, u64, FO_BUCKETS);
/* When each runnable task (by pid) entered the run queue. */
BPF_F_TABLE("lru_hash", u32, u64, cpu_enqueued, 16384, BPF_F_NO_COMMON_LRU);

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
#ifdef FO_SCOPE_ID
    /* A new task starts in its parent's cgroup, and the parent is the current task here. */
    u32 pid = args->pid;
    u8 in_scope = fo_in_scope();
    cpu_scope_pids.update(&pid, &in_scope);
#endif
    enqueue(args->pid);
    return 0;
}

#if defined(FO_SCOPE_ID) && defined(FO_HAVE_cgroup_cgroup_attach_task)
/* A task moved between cgroups of the v2 hierarchy (root 0): in scope when moved into the
 * scope itself, out when moved to its level or above; deeper moves are learnt at its next
 * switch. */
TRACEPOINT_PROBE(cgroup, cgroup_attach_task)
{
    u32 pid = args->pid;
    u8 in_scope;
    if (args->dst_root != 0)
        return 0;
    if (args->dst_id == FO_SCOPE_ID)
        in_scope = 1;
    else if (args->dst_level <= FO_SCOPE_LEVEL)
        in_scope = 0;
    else {
        cpu_scope_pids.delete(&pid);
        return 0;
    }
    cpu_scope_pids.update(&pid, &in_scope);
    if (pid == (u32)bpf_get_current_pid_tgid()) {
        /* A task moving itself is running here: close its run so far, count what follows
         * by its new cgroup. */
        u32 cpu = bpf_get_smp_processor_id();
        u64 now = bpf_ktime_get_ns();
        struct running *state = cpu_running_since_seconds.lookup(&cpu);
        if (state) {
            if (state->running && state->since) {
                u64 *busy = cpu_busy_seconds_total.lookup(&cpu);
                if (busy)
                    *busy += now - state->since;
            }
            state->since = now;
            state->running = in_scope;
        }
    }
    return 0;
}
#endif

TRACEPOINT_PROBE(sched, sched_switch)
{
    u32 cpu = bpf_get_smp_processor_id();
    u64 now = bpf_ktime_get_ns();
    struct running *state = cpu_running_since_seconds.lookup(&cpu);
    u32 next = args->next_pid, prev = args->prev_pid;
    u8 in_scope = prev != 0 && fo_in_scope();
    u64 *queued;

    /* The time since the last switch belonged to prev (pid 0 is the idle task); here the
     * current task is still prev, so the scope test sees prev's cgroup. */
    if (state) {
        if (state->since && in_scope) {
            u64 *busy = cpu_busy_seconds_total.lookup(&cpu);
            if (busy)
                *busy += now - state->since;
        }
        state->since = now;
        state->running = next != 0;
#ifdef FO_SCOPE_ID
        if (prev != 0)
            cpu_scope_pids.update(&prev, &in_scope);
        if (next != 0) {
            u8 *known = cpu_scope_pids.lookup(&next);
            state->running = known && *known;
        }
#endif
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
