/*
 * What preload-c/shm.c (the decision, the directory, shm_open and the unlinks) and
 * preload-c/shm_sem.c (sem_open, sem_close) share. Everything here is hidden: the library is
 * built with -fvisibility=hidden and only the interposed functions are exported.
 */
#ifndef SNAPLOADER_SHM_H
#define SNAPLOADER_SHM_H

#include <limits.h>
#include <semaphore.h>
#include <sys/types.h>

#define EXPORT __attribute__((visibility("default")))

#define SEM_PREFIX "sem."
/* glibc builds "/dev/shm/" + prefix + name in a buffer of sizeof "/dev/shm/" + 4 + NAME_MAX
 * bytes: a longer name is refused before any file is touched. */
#define GLIBC_NAME_ROOM (4u + NAME_MAX)
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

typedef int (*shm_open_fn)(const char *, int, mode_t);
typedef int (*unlink_fn)(const char *);
typedef sem_t *(*sem_open_fn)(const char *, int, ...);
typedef int (*sem_close_fn)(sem_t *);

/* glibc's functions, resolved by the first call of any of the five. */
struct shm_real {
  shm_open_fn shm_open;
  unlink_fn shm_unlink, sem_unlink;
  sem_open_fn sem_open;
  sem_close_fn sem_close;
};
extern struct shm_real snap_shm_real;

/* Decides once per process (and resolves snap_shm_real); 1 if the objects go to the directory. */
int snap_shm_redirecting(void);
/* The directory, opened for one call (made first when `create` and it is missing); -1 with
 * errno set if it cannot be used: ENOENT when missing, EACCES when unsafe. */
int snap_shm_open_dir(int create);
/* prefix + name under glibc's rules into out; 0, or -1 for a name glibc refuses. */
int snap_shm_object_name(char out[GLIBC_NAME_ROOM + 1], const char *name, const char *prefix);
int snap_shm_sys_openat(int dirfd, const char *path, int flags, mode_t mode);
void snap_shm_close_keep_errno(int fd);
/* For a real function glibc lacks: a line on stderr, ENOSYS, -1. */
int snap_shm_missing(const char *fn);
/* Registers the fork handlers of the semaphore table (shm_sem.c). */
void snap_shm_sem_atfork(void);

#endif
