/*
 * sem_open and sem_close for libsnaploader.so without /dev/shm (see shm.c for when and where).
 *
 * As glibc: a new semaphore is written complete into an unnamed file (O_TMPFILE; a temporary
 * name where the file system lacks it), mapped, and only then linked under sem.<name>, which
 * fails with EEXIST if another process won the race; the same name opened twice in one
 * process gives the same sem_t * (a list keyed by device, inode and the name as given, with
 * a count that sem_close decrements). sem_close of a semaphore glibc opened goes to glibc.
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm.h"

/* ------------------------------------------------------------------------------------------
 * The semaphores this process mapped: one sem_t * per (device, inode, name), counted. */

struct mapping {
  struct mapping *next;
  dev_t dev;
  ino_t ino;
  unsigned long count;
  sem_t *sem;
  char name[];
};

static struct mapping *g_mappings;
static pthread_mutex_t g_mappings_lock = PTHREAD_MUTEX_INITIALIZER;

static void table_atfork_prepare(void) {
  pthread_mutex_lock(&g_mappings_lock);
}

static void table_atfork_parent(void) {
  pthread_mutex_unlock(&g_mappings_lock);
}

static void table_atfork_child(void) {
  pthread_mutex_init(&g_mappings_lock, NULL);
}

void snap_shm_sem_atfork(void) {
  pthread_atfork(table_atfork_prepare, table_atfork_parent, table_atfork_child);
}

static struct mapping *find_mapping(dev_t dev, ino_t ino, const char *name) {
  for (struct mapping *m = g_mappings; m != NULL; m = m->next) {
    if (m->dev == dev && m->ino == ino && strcmp(m->name, name) == 0) return m;
  }
  return NULL;
}

/* The semaphore for the open file fd under `name`: the one already mapped, counted once
 * more, or `fresh` (mapped here if NULL) entered into the table. SEM_FAILED with errno. */
static sem_t *add_mapping(const char *name, int fd, sem_t *fresh) {
  struct stat st;
  if (fstat(fd, &st) != 0) return SEM_FAILED;
  sem_t *result = SEM_FAILED;
  pthread_mutex_lock(&g_mappings_lock);
  struct mapping *m = find_mapping(st.st_dev, st.st_ino, name);
  if (m != NULL) {
    m->count++;
    result = m->sem;
  } else if ((m = malloc(sizeof *m + strlen(name) + 1)) != NULL) {
    if (fresh == NULL) {
      void *p = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      fresh = p == MAP_FAILED ? NULL : p;
    }
    if (fresh != NULL) {
      *m = (struct mapping){.next = g_mappings, .dev = st.st_dev, .ino = st.st_ino, .count = 1, .sem = fresh};
      strcpy(m->name, name);
      g_mappings = m;
      result = fresh;
    } else {
      free(m);
    }
  }
  pthread_mutex_unlock(&g_mappings_lock);
  if (fresh != NULL && result != fresh) {
    int saved = errno;
    munmap(fresh, sizeof(sem_t));
    errno = saved;
  }
  return result;
}

/* 1 and the count dropped (the mapping removed at zero) if sem is one of ours. */
static int drop_mapping(sem_t *sem, int *result) {
  struct mapping *gone = NULL;
  int found = 0;
  pthread_mutex_lock(&g_mappings_lock);
  for (struct mapping **p = &g_mappings; *p != NULL; p = &(*p)->next) {
    if ((*p)->sem != sem) continue;
    found = 1;
    if (--(*p)->count == 0) {
      gone = *p;
      *p = gone->next;
    }
    break;
  }
  pthread_mutex_unlock(&g_mappings_lock);
  *result = 0;
  if (gone != NULL) {
    *result = munmap(gone->sem, sizeof(sem_t));
    free(gone);
  }
  return found;
}

EXPORT int sem_close(sem_t *sem) {
  int result;
  if (drop_mapping(sem, &result)) return result;
  if (snap_shm_real.sem_close == NULL) snap_shm_redirecting(); /* resolves it */
  return snap_shm_real.sem_close != NULL ? snap_shm_real.sem_close(sem) : snap_shm_missing("sem_close");
}

/* ------------------------------------------------------------------------------------------
 * sem_open. */

/* A new file in dir holding an initialised shared semaphore, not yet under its name: an
 * unnamed file, or tmp (filled in here) where O_TMPFILE is not supported. -1 with errno. */
static int new_sem_file(int dir, mode_t mode, unsigned value, char tmp[32]) {
  tmp[0] = '\0';
  int fd = snap_shm_sys_openat(dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
  for (int i = 0; fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL || errno == EEXIST) && i < 50; i++) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(tmp, 32, ".snaploader-tmp-%lx", (unsigned long)(ts.tv_nsec ^ getpid() << 16 ^ i));
    fd = snap_shm_sys_openat(dir, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  }
  if (fd < 0) return -1;
  union {
    sem_t sem;
    char bytes[sizeof(sem_t)];
  } init;
  memset(&init, 0, sizeof init);
  sem_init(&init.sem, 1, value);
  ssize_t n;
  do n = write(fd, init.bytes, sizeof init.bytes);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t)sizeof init.bytes) return fd;
  if (n >= 0) errno = ENOSPC;
  if (tmp[0] != '\0') unlinkat(dir, tmp, 0);
  snap_shm_close_keep_errno(fd);
  return -1;
}

/* Gives fd (see new_sem_file) the name `file`; EEXIST if the name is taken. */
static int publish(int dir, int fd, const char *tmp, const char *file) {
  if (tmp[0] != '\0') {
    int r = linkat(dir, tmp, dir, file, 0);
    int saved = errno;
    unlinkat(dir, tmp, 0);
    errno = saved;
    return r;
  }
  char self[40];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  return linkat(AT_FDCWD, self, dir, file, AT_SYMLINK_FOLLOW);
}

/* O_CREAT: a new semaphore under `file`; SEM_FAILED with *retry set when the name appeared
 * in the meantime and O_EXCL is not set (then the existing one is opened, as glibc does). */
static sem_t *create_sem(int dir, const char *name, const char *file, int oflag, mode_t mode, unsigned value, int *retry) {
  *retry = 0;
  char tmp[32];
  int fd = new_sem_file(dir, mode, value, tmp);
  if (fd < 0) return SEM_FAILED;
  sem_t *result = SEM_FAILED;
  void *p = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p != MAP_FAILED) {
    if (publish(dir, fd, tmp, file) == 0) {
      result = add_mapping(name, fd, p);
    } else {
      int saved = errno;
      munmap(p, sizeof(sem_t));
      errno = saved;
      *retry = (oflag & O_EXCL) == 0 && errno == EEXIST;
    }
  }
  snap_shm_close_keep_errno(fd);
  return result;
}

static sem_t *redirected_sem_open(const char *name, int oflag, mode_t mode, unsigned value) {
  char file[GLIBC_NAME_ROOM + 1];
  if (snap_shm_object_name(file, name, SEM_PREFIX) != 0) {
    errno = EINVAL;
    return SEM_FAILED;
  }
  int saved = errno;
  int dir = snap_shm_open_dir((oflag & O_CREAT) != 0);
  if (dir < 0) return SEM_FAILED;
  sem_t *result = SEM_FAILED;
  int create = (oflag & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
  for (int retry = 1; retry;) {
    retry = 0;
    if (!create) {
      int fd = snap_shm_sys_openat(dir, file, (oflag & ~(O_CREAT | O_ACCMODE)) | O_NOFOLLOW | O_RDWR | O_CLOEXEC, 0);
      if (fd >= 0) {
        result = add_mapping(name, fd, NULL);
        snap_shm_close_keep_errno(fd);
        break;
      }
      if ((oflag & O_CREAT) == 0 || errno != ENOENT) break;
    }
    if (value > SEM_VALUE_MAX) {
      errno = EINVAL;
      break;
    }
    result = create_sem(dir, name, file, oflag, mode, value, &retry);
    create = 0;
  }
  snap_shm_close_keep_errno(dir);
  if (result != SEM_FAILED) errno = saved;
  return result;
}

EXPORT sem_t *sem_open(const char *name, int oflag, ...) {
  mode_t mode = 0;
  unsigned value = 0;
  if ((oflag & O_CREAT) != 0) {
    va_list ap;
    va_start(ap, oflag);
    mode = va_arg(ap, mode_t);
    value = va_arg(ap, unsigned);
    va_end(ap);
  }
  if (snap_shm_redirecting()) return redirected_sem_open(name, oflag, mode, value);
  if (snap_shm_real.sem_open != NULL) return snap_shm_real.sem_open(name, oflag, mode, value);
  snap_shm_missing("sem_open");
  return SEM_FAILED;
}

