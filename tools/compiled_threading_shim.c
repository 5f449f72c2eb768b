/* numba's threading layer under the names ahead-of-time compiled kernels call it by.
 *
 * A parallel loop compiled by numba calls numba_parallel_for, the scheduler and the
 * thread-count functions by name; in a numba process those names are bound to numba's
 * threading layer (an extension module: omppool, tbbpool or workqueue) by llvmlite's
 * symbol table (numba/np/ufunc/parallel.py, _launch_threads). Kernels compiled into
 * extension modules by numba.pycc (tools/build_compiled_kernels.py) leave them
 * undefined, and this library defines them: each forwards to the function the threading
 * layer module exports at the same index of obscura_bind_threading's table, which
 * pipeline/compiled_kernels.py fills from that module's attributes (their addresses)
 * before it loads the kernels. The signatures are numba's (gufunc_scheduler.h and the
 * threading layers' parallel_for).
 */
#include <stddef.h>
#include <stdint.h>

typedef intptr_t intp;
typedef uintptr_t uintp;

enum {
    PARALLEL_FOR, DO_SCHEDULING_SIGNED, DO_SCHEDULING_UNSIGNED, ALLOCATE_SCHED,
    DEALLOCATE_SCHED, GET_NUM_THREADS, SET_NUM_THREADS, GET_THREAD_ID,
    SET_PARALLEL_CHUNKSIZE, GET_PARALLEL_CHUNKSIZE, GET_SCHED_SIZE, N_FUNCTIONS
};

static void *functions[N_FUNCTIONS];

/* Bind the forwarders to the threading layer's functions, in the enum's order. */
void obscura_bind_threading(void *const *addresses)
{
    for (int i = 0; i < N_FUNCTIONS; i++)
        functions[i] = addresses[i];
}

void numba_parallel_for(void *fn, char **args, size_t *dimensions, size_t *steps, void *data,
                        size_t inner_ndim, size_t array_count, int num_threads)
{
    ((void (*)(void *, char **, size_t *, size_t *, void *, size_t, size_t, int))
         functions[PARALLEL_FOR])(fn, args, dimensions, steps, data, inner_ndim, array_count,
                                  num_threads);
}

void do_scheduling_signed(uintp num_dim, intp *starts, intp *ends, uintp num_threads,
                          intp *sched, intp debug)
{
    ((void (*)(uintp, intp *, intp *, uintp, intp *, intp))functions[DO_SCHEDULING_SIGNED])(
        num_dim, starts, ends, num_threads, sched, debug);
}

void do_scheduling_unsigned(uintp num_dim, intp *starts, intp *ends, uintp num_threads,
                            uintp *sched, intp debug)
{
    ((void (*)(uintp, intp *, intp *, uintp, uintp *, intp))functions[DO_SCHEDULING_UNSIGNED])(
        num_dim, starts, ends, num_threads, sched, debug);
}

intp *allocate_sched(uintp sched_size)
{
    return ((intp * (*)(uintp)) functions[ALLOCATE_SCHED])(sched_size);
}

void deallocate_sched(intp *sched)
{
    ((void (*)(intp *))functions[DEALLOCATE_SCHED])(sched);
}

int get_num_threads(void)
{
    return ((int (*)(void))functions[GET_NUM_THREADS])();
}

void set_num_threads(int count)
{
    ((void (*)(int))functions[SET_NUM_THREADS])(count);
}

int get_thread_id(void)
{
    return ((int (*)(void))functions[GET_THREAD_ID])();
}

uintp set_parallel_chunksize(uintp size)
{
    return ((uintp (*)(uintp))functions[SET_PARALLEL_CHUNKSIZE])(size);
}

uintp get_parallel_chunksize(void)
{
    return ((uintp (*)(void))functions[GET_PARALLEL_CHUNKSIZE])();
}

uintp get_sched_size(uintp num_threads, uintp num_dim, intp *starts, intp *ends)
{
    return ((uintp (*)(uintp, uintp, intp *, intp *))functions[GET_SCHED_SIZE])(
        num_threads, num_dim, starts, ends);
}
