/*
 * Paths as the preload library compares them, shared by the mapping lookup
 * (snaploader_preload.c) and use recording (trace.c).
 */
#ifndef SNAPLOADER_PATH_H
#define SNAPLOADER_PATH_H

#include <limits.h>
#include <stddef.h>

/* `path` (len bytes, len < PATH_MAX) made absolute against the working directory and
 * normalised textually ('//' collapsed, '.' dropped, '..' removes the previous component;
 * symlinks not consulted) into buf. Returns the new length, or 0 if that cannot be done (no
 * usable working directory, or the result would not fit). Leaves errno alone. */
__attribute__((visibility("hidden"))) size_t snap_absolute_path(char buf[PATH_MAX], const char *path, size_t len);

#endif
