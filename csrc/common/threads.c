/* Thread policy: one OpenMP pool, count passed explicitly to every region (never
 * omp_set_num_threads, which would change other libraries' regions). After fork() in a process
 * that has used threads, the child runs serially: libgomp's pool does not survive fork (GCC bug
 * 60035) and entering a region there can hang. */
#define _GNU_SOURCE
#include "nncore/nnc.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#include <unistd.h>
#endif

/* Below this many flops a region costs more to open (about 1 us) than it saves. */
static double g_par_min_flops = 4.0e5;

static int g_setting = 0;      /* 0 = not set: use the default */
static int g_forked_child = 0; /* set in a fork child */

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
        int a = affinity_cpus();
        if (a < n) n = a;
    }
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

void nnc_set_num_threads(int n) { g_setting = n > 0 ? n : 0; }

int nnc_get_num_threads(void) {
    if (g_forked_child) return 1;
    int n = g_setting > 0 ? g_setting : nnc_default_num_threads();
#ifdef _OPENMP
    int mx = omp_get_max_threads();
    if (g_setting > 0 && n > mx) n = mx;
#endif
    return n > 0 ? n : 1;
}

int nnc_forked_child(void) { return g_forked_child; }

double nnc_set_parallel_threshold(double flops) {
    double old = g_par_min_flops;
    g_par_min_flops = flops;
    return old;
}

int nnc_threads_for(double flops, int64_t units) {
#ifdef _OPENMP
    if (g_forked_child || flops < g_par_min_flops || units < 2) return 1;
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

#if !defined(_WIN32)
static void atfork_child(void) { g_forked_child = 1; }
#endif

void nnc_threads_init(void) {
#if !defined(_WIN32)
    static int registered = 0;
    if (!registered) {
        registered = 1;
        pthread_atfork(NULL, NULL, atfork_child);
    }
#endif
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
