/* Thread policy and nncore's own thread pool. The count is passed explicitly to every region
 * (never omp_set_num_threads, which would change other libraries' regions); OpenMP is linked only
 * so that omp_get_max_threads() carries OMP_NUM_THREADS and threadpoolctl's limits to nncore.
 * No libgomp team is ever started (except on Windows), so fork() is safe: the child starts from
 * an empty pool. */
#define _GNU_SOURCE
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#endif

/* Below this many flops a region costs more to open (about 1 us) than it saves. */
static double g_par_min_flops = 4.0e5;

static int g_setting = 0;      /* 0 = not set: use the default */

static int affinity_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
#if !defined(_WIN32)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#else
    return 1;
#endif
}

/* CPUs a cgroup v2 quota allows (cpu.max "quota period"), 0 when there is none; read once. */
static int g_cgroup_cpus = -1;
static int cgroup_cpus(void) {
    if (g_cgroup_cpus >= 0) return g_cgroup_cpus;
    int n = 0;
#if defined(__linux__)
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32];
        long long period = 0;
        if (fscanf(f, "%31s %lld", quota, &period) == 2 && strcmp(quota, "max") != 0 &&
            period > 0) {
            const long long q = atoll(quota);
            if (q > 0) n = (int)((q + period - 1) / period);
        }
        fclose(f);
    }
#endif
    g_cgroup_cpus = n;
    return n;
}

int nnc_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int nnc_default_num_threads(void) {
#ifdef _OPENMP
    /* omp_get_max_threads() honours OMP_NUM_THREADS and threadpoolctl's limit. */
    int n = omp_get_max_threads();
    const char *env = getenv("OMP_NUM_THREADS");
    if (env == NULL || *env == '\0') {
        int a = affinity_cpus(), q = cgroup_cpus();
        if (a < n) n = a;
        if (q > 0 && q < n) n = q;
    }
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

void nnc_set_num_threads(int n) { g_setting = n > 0 ? n : 0; }

int nnc_get_num_threads(void) {
    int n = g_setting > 0 ? g_setting : nnc_default_num_threads();
#ifdef _OPENMP
    int mx = omp_get_max_threads();
    if (g_setting > 0 && n > mx) n = mx;
#endif
    return n > 0 ? n : 1;
}

double nnc_set_parallel_threshold(double flops) {
    double old = g_par_min_flops;
    g_par_min_flops = flops;
    return old;
}

int nnc_threads_for(double flops, int64_t units) {
#ifdef _OPENMP
    if (flops < g_par_min_flops || units < 2) return 1;
    int n = g_setting > 0 ? g_setting : nnc_default_num_threads();
    int mx = omp_get_max_threads(); /* threadpoolctl limits land here */
    if (n > mx) n = mx;
    if ((int64_t)n > units) n = (int)units;
    return n > 0 ? n : 1;
#else
    (void)flops;
    (void)units;
    return 1;
#endif
}

/* ---- the pool ------------------------------------------------------------------------------
 * Every parallel region of nncore runs through nnc_parallel_run: a fixed list of tasks (its
 * boundaries set by the problem, never by the thread count) that the running threads claim one
 * at a time from an atomic counter, the caller among them. A worker that the kernel has not
 * scheduled claims nothing, so the caller runs its tasks and the join waits only for tasks
 * already started: on a busy machine a region costs at most about its one-thread time, never a
 * scheduler time slice per barrier (libgomp's end-of-region barrier waits for every thread of
 * the team, running or not). Workers and the waiting caller spin briefly (NNCORE_SPIN_US,
 * default 50 us) and then sleep on a condition variable. One region at a time: a second caller
 * (another Python thread, or a task that opens a region) runs its tasks on its own thread. */

#if !defined(_WIN32)
#include <signal.h>
#include <time.h>

#define POOL_MAX 255

/* Three cache lines that change at different rates: the job (written once per job, read by
 * all), the claim counter (once per task) and the completion count (once per thread and job). */
typedef struct {
    _Alignas(64) nnc_task_fn fn;
    void *ctx;
    int64_t ntasks;
    int job_threads; /* workers 1 .. job_threads - 1 take part */
    int caller_cpu;  /* where the caller ran when it published the job */
    /* state = generation << 32 | next task: claiming a task of a finished generation fails */
    _Alignas(64) uint64_t state;
    _Alignas(64) uint64_t done;
    int caller_asleep; /* the caller asleep on done_cv */
    int sleepers;      /* workers asleep on cv */
    _Alignas(64) int nworkers;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
} nnc_pool;

#define POOL_INIT                                                                              \
    {.caller_cpu = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,        \
     .done_cv = PTHREAD_COND_INITIALIZER}
static nnc_pool g_pool = POOL_INIT;
static atomic_flag g_pool_busy = ATOMIC_FLAG_INIT;
static int64_t g_spin_ns = -1;     /* read from NNCORE_SPIN_US on first use */
static int64_t g_test_delay_us = 0; /* tests: a worker sleeps this long before each claim */

#define LD(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define ST(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)

/* No PAUSE in the spin loops: under KVM a vCPU that executes PAUSE in a tight loop is taken off
 * its core (pause-loop exiting), which here made a spinning worker miss whole regions. The spins
 * are bounded by NNCORE_SPIN_US, so a plain load loop costs nothing beyond that. */
static inline void cpu_relax(void) { __asm__ __volatile__("" ::: "memory"); }

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t spin_ns(void) {
    int64_t s = __atomic_load_n(&g_spin_ns, __ATOMIC_RELAXED);
    if (s < 0) {
        const char *env = getenv("NNCORE_SPIN_US");
        const double us = env && *env ? atof(env) : 50.0;
        s = us > 0.0 ? (int64_t)(us * 1e3) : 0;
        __atomic_store_n(&g_spin_ns, s, __ATOMIC_RELAXED);
    }
    return s;
}

static inline int current_cpu(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

/* Moves the calling thread off `cpu` to another CPU it may use (keeping its affinity mask). */
static int move_off_cpu(int cpu) {
#if defined(__linux__)
    cpu_set_t set, other;
    if (cpu < 0 || sched_getaffinity(0, sizeof(set), &set) != 0 || !CPU_ISSET(cpu, &set) ||
        CPU_COUNT(&set) < 2)
        return 0;
    other = set;
    CPU_CLR(cpu, &other);
    if (sched_setaffinity(0, sizeof(other), &other) != 0) return 0;
    sched_setaffinity(0, sizeof(set), &set); /* the thread stays where it now runs */
    return 1;
#else
    (void)cpu;
    return 0;
#endif
}

/* Spins until (*word >> shift) != v (want_change) or == v, for at most the spin budget; returns
 * whether that holds. A worker that the kernel placed on the core of the thread with the work
 * (the caller's, *yield_cpu) moves off it, or gives it back, instead of spinning there: after a
 * wake-up the scheduler often puts the woken thread on the waker's core, and spinning would stall
 * the caller for the whole budget. yield_cpu NULL: the caller waiting for a worker, which yields
 * after a quarter of the budget. */
static int spin_until(const uint64_t *word, uint64_t v, int want_change, int shift,
                      const int *yield_cpu) {
    const int64_t lim = spin_ns();
    int64_t t0 = 0;
    for (int64_t it = 0;; it++) {
        const uint64_t cur = LD(word) >> shift;
        if (want_change ? cur != v : cur == v) return 1;
        if (lim <= 0) return 0;
        if ((it & 63) == 0) {
            const int64_t t = now_ns();
            if (it == 0) t0 = t;
            else if (t - t0 >= lim) return 0;
            if (yield_cpu) {
                const int c = LD(yield_cpu);
                if (current_cpu() == c && !move_off_cpu(c)) sched_yield();
            } else if (t - t0 >= lim / 4) {
                sched_yield();
            }
        }
        cpu_relax();
    }
}

/* Adds a thread's finished tasks to the job's count; the one that completes it wakes the caller. */
static void count_done(nnc_pool *p, uint64_t k, int tid) {
    if (k && __atomic_add_fetch(&p->done, k, __ATOMIC_SEQ_CST) == (uint64_t)LD(&p->ntasks) &&
        tid > 0 && LD(&p->caller_asleep)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Claims and runs tasks of generation `gen` until none is left, then counts them as done (one
 * atomic add per thread and job, not per task: the count's cache line is not handed between
 * cores after every task). */
static void run_tasks(nnc_pool *p, uint32_t gen, int tid) {
    uint64_t mine = 0;
    for (;;) {
        if (tid > 0 && g_test_delay_us > 0) { /* a worker the kernel runs late, between claims */
            count_done(p, mine, tid);
            mine = 0;
            struct timespec d = {(time_t)(g_test_delay_us / 1000000),
                                 (long)(g_test_delay_us % 1000000) * 1000};
            nanosleep(&d, NULL);
        }
        uint64_t s = LD(&p->state);
        if ((uint32_t)(s >> 32) != gen) break;
        /* read after the generation check: while generation gen has an unclaimed task, its
         * fields cannot change (the caller closes the generation before rewriting them) */
        const int64_t n = LD(&p->ntasks);
        const nnc_task_fn fn = LD(&p->fn);
        void *ctx = LD(&p->ctx);
        const int64_t i = (int64_t)(uint32_t)s;
        if (i >= n) break;
        if (!__atomic_compare_exchange_n(&p->state, &s, s + 1, 0, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST))
            continue;
        fn(ctx, i, tid);
        mine++;
    }
    count_done(p, mine, tid);
}

static void *worker_main(void *arg) {
    nnc_pool *p = &g_pool;
    const int tid = (int)(intptr_t)arg;
    uint32_t seen = (uint32_t)(LD(&p->state) >> 32);
    for (;;) {
        if (!spin_until(&p->state, seen, 1, 32, &p->caller_cpu)) {
            pthread_mutex_lock(&p->mu);
            __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            while ((uint32_t)(LD(&p->state) >> 32) == seen) pthread_cond_wait(&p->cv, &p->mu);
            __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&p->mu);
        }
        seen = (uint32_t)(LD(&p->state) >> 32);
        if (tid < LD(&p->job_threads)) run_tasks(p, seen, tid);
    }
    return NULL;
}

static int pool_grow(nnc_pool *p, int want) {
    if (want > POOL_MAX) want = POOL_MAX;
    while (p->nworkers < want) {
        pthread_attr_t at;
        sigset_t all, old;
        sigfillset(&all); /* signals go to the application's threads, never to a worker */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_t th; /* detached: the pool never joins its workers */
        int rc = pthread_create(&th, &at, worker_main, (void *)(intptr_t)(p->nworkers + 1));
        pthread_attr_destroy(&at);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) break;
        p->nworkers++;
    }
    return p->nworkers;
}

void nnc_parallel_run(int nt, int64_t ntasks, nnc_task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    if (nt > ntasks) nt = (int)ntasks;
    if (nt <= 1 || ntasks >= (int64_t)UINT32_MAX ||
        atomic_flag_test_and_set_explicit(&g_pool_busy, memory_order_acquire)) {
        for (int64_t i = 0; i < ntasks; i++) fn(ctx, i, 0);
        return;
    }
    nnc_pool *p = &g_pool;
    int w = pool_grow(p, nt - 1);
    if (nt > w + 1) nt = w + 1;
    /* Close the last job before its fields change: a worker still inside it may have read its
     * state and would otherwise claim "task n" of the new fields under the old generation. */
    const uint32_t gen = (uint32_t)(LD(&p->state) >> 32) + 1;
    ST(&p->state, ((uint64_t)(gen - 1) << 32) | 0xFFFFFFFFu);
    ST(&p->fn, fn);
    ST(&p->ctx, ctx);
    ST(&p->ntasks, ntasks);
    ST(&p->job_threads, nt);
    ST(&p->done, (uint64_t)0);
    ST(&p->caller_cpu, current_cpu());
    ST(&p->state, (uint64_t)gen << 32); /* publishes the job */
    if (LD(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, gen, 0);
    /* every task is claimed: wait for those still running on a worker */
    if (!spin_until(&p->done, (uint64_t)ntasks, 0, 0, NULL)) {
        pthread_mutex_lock(&p->mu);
        ST(&p->caller_asleep, 1);
        while (LD(&p->done) != (uint64_t)ntasks) pthread_cond_wait(&p->done_cv, &p->mu);
        ST(&p->caller_asleep, 0);
        pthread_mutex_unlock(&p->mu);
    }
    atomic_flag_clear_explicit(&g_pool_busy, memory_order_release);
}

void nnc_pool_set_test_delay(int64_t us) { g_test_delay_us = us > 0 ? us : 0; }
void nnc_pool_set_spin_us(double us) {
    __atomic_store_n(&g_spin_ns, us > 0 ? (int64_t)(us * 1e3) : (int64_t)0, __ATOMIC_RELAXED);
}

/* The child of a fork has none of the workers: start from an empty pool. */
static void pool_atfork_child(void) {
    nnc_pool fresh = POOL_INIT;
    g_pool = fresh;
    atomic_flag_clear(&g_pool_busy);
}
#else /* _WIN32: OpenMP's dynamic schedule, or serial */
void nnc_parallel_run(int nt, int64_t ntasks, nnc_task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    if (nt > ntasks) nt = (int)ntasks;
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t i = 0; i < ntasks; i++) fn(ctx, i, omp_get_thread_num());
        return;
    }
#endif
    for (int64_t i = 0; i < ntasks; i++) fn(ctx, i, 0);
}
void nnc_pool_set_test_delay(int64_t us) { (void)us; }
void nnc_pool_set_spin_us(double us) { (void)us; }
#endif

#if !defined(_WIN32)
static void atfork_child(void) { pool_atfork_child(); }
#endif

void nnc_threads_init(void) {
#if !defined(_WIN32)
    static int registered = 0;
    if (!registered) {
        registered = 1;
        pthread_atfork(NULL, NULL, atfork_child);
    }
    cgroup_cpus();
#endif
}

/* ---- ranges over the pool ------------------------------------------------------------------ */

typedef struct {
    nnc_range_fn fn;
    void *ctx;
    int64_t n, grain, blocks, ntasks;
} ranges_job;

static void ranges_task(void *p, int64_t i, int thread) {
    const ranges_job *r = (const ranges_job *)p;
    const int64_t b0 = r->blocks * i / r->ntasks, b1 = r->blocks * (i + 1) / r->ntasks;
    const int64_t i0 = b0 * r->grain, i1 = NNC_MIN(r->n, b1 * r->grain);
    (void)thread;
    if (i1 > i0) r->fn(r->ctx, i0, i1);
}

void nnc_parallel_ranges(int64_t n, int64_t grain, int nt, nnc_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t blocks = (n + grain - 1) / grain;
    if (nt > blocks) nt = (int)blocks;
    if (nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
    /* a few ranges per thread, so that a thread the kernel runs late costs little */
    ranges_job r = {fn, ctx, n, grain, blocks, NNC_MIN(blocks, 2 * (int64_t)nt)};
    nnc_parallel_run(nt, r.ntasks, ranges_task, &r);
}

void *nnc_malloc(size_t bytes) {
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
#if defined(_WIN32)
    return _aligned_malloc(bytes, 64);
#else
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    return p;
#endif
}

void nnc_free(void *p) {
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}
