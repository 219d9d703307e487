/*
 * POSIX shared memory and named semaphores without /dev/shm (part of libsnaploader.so):
 * the decision, the directory, shm_open, shm_unlink, sem_unlink and the sweep here;
 * sem_open and sem_close in shm_sem.c.
 *
 * glibc keeps shm_open and sem_open objects as files in /dev/shm. Lambda has no usable
 * /dev/shm, so they fail, and with them Python's multiprocessing (Queue, Lock, Pool,
 * Manager, shared_memory, ProcessPoolExecutor). The library interposes shm_open, shm_unlink,
 * sem_open, sem_close and sem_unlink. Each process decides once, at its first call, whether
 * to redirect:
 *  - SNAPLOADER_SHM is 0/false/no/off (any case): never; every call goes to glibc.
 *  - glibc's own shm_open can create and unlink an object: /dev/shm works, and every call
 *    goes to glibc untouched.
 *  - otherwise the objects live in SNAPLOADER_SHM_DIR (default /tmp/snaploader-shm), with
 *    glibc's names (shm "x" is the file x, semaphore "x" the file sem.x) and glibc's rules
 *    for names, flags, modes and errno values; sem_wait, sem_post, mmap and the rest work on
 *    those files unchanged.
 *
 * The directory is opened for each call (O_DIRECTORY|O_NOFOLLOW) and checked: it must be a
 * real directory owned by this user or root, and sticky if others may write to it. It is
 * made with mode 01777 (like /dev/shm) when an O_CREAT call finds it missing. Objects are
 * opened inside it with openat and O_NOFOLLOW, so a planted symlink is never followed.
 *
 * Leftovers: an unnamed file vanishes with the process that made it. Names a dead process
 * never unlinked are removed when the runtime starts: the wrapper exports
 * SNAPLOADER_SHM_SWEEP=<the runtime's pid>, and the library's constructor in that one process
 * removes the files this user owns in the directory, then unsets the variable.
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log_json.h"
#include "settings.h"
#include "shm.h"

#define DEFAULT_DIR "/tmp/snaploader-shm"

struct shm_real snap_shm_real;

enum { SHM_PASS = 1, SHM_REDIRECT = 2 };
static int g_mode; /* 0 until shm_init() finished */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_debug;
static int g_log_min; /* 0: text lines; else JSON from this level up (log_json.h) */
static int g_warned;
static char g_dir[PATH_MAX];

/* ------------------------------------------------------------------------------------------
 * Environment and messages. The environment is read from environ directly: this code also
 * runs in the constructor, where an interposed getenv might not be ready. */

extern char **environ;

static const char *env_get(const char *name) {
  size_t n = strlen(name);
  for (char **e = environ; e != NULL && *e != NULL; e++) {
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  }
  return NULL;
}

/* 1 for 0/false/no/off in any case: the only way to turn the redirect off. */
/* SNAPLOADER_SHM is on unless it is an off word of the settings grammar (the wrapper refuses
 * any other value before the runtime starts). */
static int shm_off(void) {
  char shown[2];
  return snap_setting_switch("SNAPLOADER_SHM", shown, sizeof shown) == SNAP_SWITCH_OFF;
}

static int debug_on(void) {
  char shown[2];
  enum snap_switch debug = snap_setting_switch("SNAPLOADER_DEBUG", shown, sizeof shown);
  g_log_min = snap_log_min_level(env_get("AWS_LAMBDA_LOG_FORMAT"), env_get("AWS_LAMBDA_LOG_LEVEL"));
  return debug == SNAP_SWITCH_ON || debug == SNAP_SWITCH_OTHER;
}

static void say(const char *a, const char *b, const char *c, const char *d) {
  const char *parts[] = {a, b, c, d};
  snap_log_parts(g_log_min, SNAP_DEBUG, "preload", "snaploader-preload: shm: ", parts, 4);
}

/* ------------------------------------------------------------------------------------------
 * Raw opens: the library's own open/openat hooks are not for these. */

int snap_shm_sys_openat(int dirfd, const char *path, int flags, mode_t mode) {
  return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

void snap_shm_close_keep_errno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

/* ------------------------------------------------------------------------------------------
 * Once per process: the real functions and the decision. */

static void *resolve(const char *name, const char *old_home) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f != NULL) return f;
  /* glibc before 2.34 keeps shm_* in librt and sem_* in libpthread, which may not be loaded
   * into the global scope. */
  void *lib = dlopen(old_home, RTLD_LAZY | RTLD_NOLOAD);
  if (lib == NULL) lib = dlopen(old_home, RTLD_LAZY);
  return lib != NULL ? dlsym(lib, name) : NULL;
}

/* /dev/shm is usable exactly when glibc can create and remove an object there. */
static int devshm_works(void) {
  char name[64];
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(name, sizeof name, "/.snaploader-probe-%ld-%ld", (long)getpid(), (long)ts.tv_nsec);
  if (snap_shm_real.shm_open == NULL || snap_shm_real.shm_unlink == NULL) return 0;
  int fd = snap_shm_real.shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return errno == EEXIST;
  close(fd);
  snap_shm_real.shm_unlink(name);
  return 1;
}

/* SNAPLOADER_SHM_DIR, or the default, into g_dir; 0 if it is unusable as a setting. */
static int pick_dir(void) {
  const char *dir = env_get("SNAPLOADER_SHM_DIR");
  if (dir == NULL || dir[0] == '\0') dir = DEFAULT_DIR;
  if (dir[0] != '/' || strlen(dir) >= sizeof g_dir) {
    say("SNAPLOADER_SHM_DIR=", dir, " is not an absolute path shorter than PATH_MAX: ",
        "POSIX shared memory stays with glibc (and fails without /dev/shm)");
    return 0;
  }
  strcpy(g_dir, dir);
  return 1;
}

static void shm_init(void) {
  int saved = errno;
  snap_shm_real.shm_open = (shm_open_fn)resolve("shm_open", "librt.so.1");
  snap_shm_real.shm_unlink = (unlink_fn)resolve("shm_unlink", "librt.so.1");
  snap_shm_real.sem_open = (sem_open_fn)resolve("sem_open", "libpthread.so.0");
  snap_shm_real.sem_close = (sem_close_fn)resolve("sem_close", "libpthread.so.0");
  snap_shm_real.sem_unlink = (unlink_fn)resolve("sem_unlink", "libpthread.so.0");
  g_debug = debug_on();
  int mode = SHM_PASS;
  if (shm_off()) {
    if (g_debug) say("SNAPLOADER_SHM is off: glibc handles POSIX shared memory", NULL, NULL, NULL);
  } else if (devshm_works()) {
    if (g_debug) say("/dev/shm works: glibc handles POSIX shared memory", NULL, NULL, NULL);
  } else if (pick_dir()) {
    snap_shm_sem_atfork();
    if (g_debug) say("/dev/shm is not usable: POSIX shared memory in ", g_dir, NULL, NULL);
    mode = SHM_REDIRECT;
  }
  errno = saved;
  __atomic_store_n(&g_mode, mode, __ATOMIC_RELEASE);
}

int snap_shm_redirecting(void) {
  int mode = __atomic_load_n(&g_mode, __ATOMIC_ACQUIRE);
  if (__builtin_expect(mode == 0, 0)) {
    int saved = errno;
    pthread_once(&g_once, shm_init);
    errno = saved;
    mode = __atomic_load_n(&g_mode, __ATOMIC_ACQUIRE);
  }
  return mode == SHM_REDIRECT;
}

/* A real function glibc lacks (it never should): fail like an unsupported call. */
int snap_shm_missing(const char *fn) {
  say("the C library has no ", fn, NULL, NULL);
  errno = ENOSYS;
  return -1;
}

/* ------------------------------------------------------------------------------------------
 * The directory. */

static void refuse(const char *why) {
  if (!__atomic_exchange_n(&g_warned, 1, __ATOMIC_RELAXED)) {
    say("refusing ", g_dir, ": ", why);
  }
}

/* 1 if the open directory fd may hold our objects: ours or root's, and sticky if anyone
 * else may write to it. */
static int dir_is_safe(int fd, int report) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    if (report) refuse("it is owned by another user; remove it or set SNAPLOADER_SHM_DIR");
    return 0;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    if (report) refuse("others may write to it and it is not sticky; remove it or set SNAPLOADER_SHM_DIR");
    return 0;
  }
  return 1;
}

/* See shm.h. */
int snap_shm_open_dir(int create) {
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = snap_shm_sys_openat(AT_FDCWD, g_dir, flags, 0);
  if (fd < 0 && errno == ENOENT && create) {
    int made = mkdir(g_dir, 01777) == 0;
    if (!made && errno != EEXIST) return -1;
    fd = snap_shm_sys_openat(AT_FDCWD, g_dir, flags, 0);
    /* mkdir's mode passed through the umask; /dev/shm's is 01777. */
    if (fd >= 0 && made) fchmod(fd, 01777);
  }
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      refuse("it is not a directory (a symlink or a file); remove it or set SNAPLOADER_SHM_DIR");
      errno = EACCES;
    }
    return -1;
  }
  if (!dir_is_safe(fd, 1)) {
    close(fd);
    errno = EACCES;
    return -1;
  }
  return fd;
}

/* glibc's name rules: leading slashes dropped; an empty name, a slash inside, or more than
 * glibc's buffer holds is refused (shm_open and sem_open say EINVAL, the unlinks ENOENT; the
 * kernel says ENAMETOOLONG for a file name of 256 to 259 bytes). Writes prefix + name into
 * out; returns 0, or -1 for a refused name. */
int snap_shm_object_name(char out[GLIBC_NAME_ROOM + 1], const char *name, const char *prefix) {
  while (name[0] == '/') name++;
  size_t len = strlen(name), plen = strlen(prefix);
  if (len == 0 || memchr(name, '/', len) != NULL || plen + len > GLIBC_NAME_ROOM) return -1;
  memcpy(out, prefix, plen);
  memcpy(out + plen, name, len + 1);
  return 0;
}

/* ------------------------------------------------------------------------------------------
 * shm_open, shm_unlink. */

EXPORT int shm_open(const char *name, int oflag, mode_t mode) {
  if (!snap_shm_redirecting()) return snap_shm_real.shm_open != NULL ? snap_shm_real.shm_open(name, oflag, mode) : snap_shm_missing("shm_open");
  char file[GLIBC_NAME_ROOM + 1];
  if (snap_shm_object_name(file, name, "") != 0) {
    errno = EINVAL;
    return -1;
  }
  int saved = errno;
  int dir = snap_shm_open_dir((oflag & O_CREAT) != 0);
  if (dir < 0) return -1;
  int fd = snap_shm_sys_openat(dir, file, oflag | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0 && errno == EISDIR) errno = EINVAL; /* as glibc: a directory is no object */
  snap_shm_close_keep_errno(dir);
  if (fd >= 0) errno = saved;
  return fd;
}

/* unlink of a name in the directory, EPERM reported as EACCES (glibc's mapping). */
static int unlink_object(const char *file) {
  int saved = errno;
  int dir = snap_shm_open_dir(0);
  if (dir < 0) return -1;
  int r = unlinkat(dir, file, 0);
  if (r != 0 && errno == EPERM) errno = EACCES;
  snap_shm_close_keep_errno(dir);
  if (r == 0) errno = saved;
  return r;
}

EXPORT int shm_unlink(const char *name) {
  if (!snap_shm_redirecting()) return snap_shm_real.shm_unlink != NULL ? snap_shm_real.shm_unlink(name) : snap_shm_missing("shm_unlink");
  char file[GLIBC_NAME_ROOM + 1];
  if (snap_shm_object_name(file, name, "") != 0) {
    errno = ENOENT; /* glibc: a name that cannot exist does not exist */
    return -1;
  }
  return unlink_object(file);
}

EXPORT int sem_unlink(const char *name) {
  if (!snap_shm_redirecting()) return snap_shm_real.sem_unlink != NULL ? snap_shm_real.sem_unlink(name) : snap_shm_missing("sem_unlink");
  char file[GLIBC_NAME_ROOM + 1];
  if (snap_shm_object_name(file, name, SEM_PREFIX) != 0) {
    errno = ENOENT; /* glibc: a name that cannot exist does not exist */
    return -1;
  }
  return unlink_object(file);
}

/* ------------------------------------------------------------------------------------------
 * The sweep at the runtime's start (see the top of the file). */

static void sweep(int dir) {
  char buf[4096];
  long n;
  unsigned removed = 0;
  while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(buf + off);
      off += d->d_reclen;
      struct stat st;
      if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
      if (fstatat(dir, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) continue;
      if (unlinkat(dir, d->d_name, 0) == 0) removed++;
    }
  }
  if (g_debug) {
    char num[24];
    snprintf(num, sizeof num, "%u", removed);
    say("runtime start: removed ", num, " files left in ", g_dir);
  }
}

__attribute__((constructor)) static void sweep_at_runtime_start(void) {
  const char *marker = env_get("SNAPLOADER_SHM_SWEEP");
  if (marker == NULL) return;
  char *end;
  long pid = strtol(marker, &end, 10);
  if (*end != '\0' || pid != (long)getpid()) return;
  int saved = errno;
  unsetenv("SNAPLOADER_SHM_SWEEP");
  g_debug = debug_on();
  if (!shm_off() && pick_dir()) {
    int dir = snap_shm_sys_openat(AT_FDCWD, g_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (dir >= 0) {
      if (dir_is_safe(dir, 0)) sweep(dir);
      close(dir);
    }
  }
  errno = saved;
}
