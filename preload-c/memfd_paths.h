/*
 * What preload-c/memfd_paths.c (the stat-without-following and realpath hooks) needs from the
 * mapping loaded by snaploader_preload.c. Hidden, like everything not interposed.
 */
#ifndef SNAPLOADER_MEMFD_PATHS_H
#define SNAPLOADER_MEMFD_PATHS_H

/* 1 if the absolute `path` is a tree link into a memfd (a MEMFD record's key), else 0. */
__attribute__((visibility("hidden"))) int snap_is_memfd_link(const char *path);

#endif
