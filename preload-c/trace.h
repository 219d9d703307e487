/*
 * Use recording for `snaploader trace` (preload-c/trace.c): with SNAPLOADER_TRACE=<file>, the
 * first use in a process of each file of the tree (opened, fopen'ed, dlopen'ed, or loaded as a
 * dependency of a dlopen) appends one line to <file>. Off (unset or blank), each hook pays one
 * load and compare of the cached state.
 */
#ifndef SNAPLOADER_TRACE_H
#define SNAPLOADER_TRACE_H

/* 0: not read yet, 1: off, 2: on. */
extern int snap_trace_state __attribute__((visibility("hidden")));

/* Reads SNAPLOADER_TRACE and SNAPLOADER_MAP once; returns 1 when recording. */
__attribute__((visibility("hidden"), cold, noinline)) int snap_trace_start(void);

/* Records `path` (absolute, or relative to the cwd) if it is in the tree and not recorded yet
 * in this process. Leaves errno alone; never fails. */
__attribute__((visibility("hidden"))) void snap_trace_path(const char *path);

/* Records every loaded object that is in the tree: libraries ld.so loaded as dependencies
 * (DT_NEEDED), or found on its search path for a bare dlopen name, which no open hook sees.
 * Called at each dlopen, for what earlier ones loaded. Leaves errno alone. */
__attribute__((visibility("hidden"))) void snap_trace_loaded(void);

static inline __attribute__((always_inline)) int snap_tracing(void) {
  int s = __atomic_load_n(&snap_trace_state, __ATOMIC_ACQUIRE); /* pairs with start's release */
  if (__builtin_expect(s == 1, 1)) return 0;
  return s == 2 ? 1 : snap_trace_start();
}

#endif
