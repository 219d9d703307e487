/*
 * Memory-placed files resolve to their tree path.
 *
 * A file the init program put in a memfd is a tree link `<tree>/x -> /proc/<pid>/fd/<n>`,
 * and the kernel resolves /proc/<pid>/fd/<n> to "/memfd:<name> (deleted)", a name that
 * exists nowhere. Every realpath implementation follows links until a path is not one, so
 * each ended there: Node's module loader and fs.realpathSync (lstat by statx through
 * syscall(2), then readlink), fs.realpathSync.native and C code (glibc's realpath), Python's
 * os.path.realpath and Path.resolve() (lstat, readlink). For the tree links named by the
 * mapping file's MEMFD records only, this file makes:
 *
 *  - lstat and every stat call asked not to follow (lstat, lstat64, __lxstat, __lxstat64,
 *    fstatat, fstatat64, __fxstatat, __fxstatat64 and statx with AT_SYMLINK_NOFOLLOW, and
 *    syscall(SYS_statx, ...)) describe what the link points at: a regular file, as the
 *    file would have been had it been written to /tmp. So a realpath walk stops at the tree
 *    path, whose directory holds the file's neighbours ($ORIGIN, relative require()).
 *  - realpath, __realpath_chk and canonicalize_file_name return the tree path where glibc's
 *    own walk (internal calls no hook sees) fails or ends in "/memfd:".
 *
 * Everything else passes through untouched: paths that are not such links, relative paths
 * with a directory fd, readlink (which still shows /proc/<pid>/fd/<n>). errno is what the
 * real call leaves, or the caller's on a rewritten success.
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE /* stdlib.h would make realpath an inline wrapper */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "memfd_paths.h"

#define EXPORT __attribute__((visibility("default")))

#ifndef SYS_statx
#if defined(__x86_64__)
#define SYS_statx 332
#elif defined(__aarch64__)
#define SYS_statx 291
#endif
#endif

#ifndef AT_SYMLINK_NOFOLLOW
#define AT_SYMLINK_NOFOLLOW 0x100
#endif

/* sys/stat.h is not included: for glibc 2.17 it defines lstat and friends inline, which would
 * clash with the definitions below. The buffers are only passed on. */
struct stat;
struct stat64;

typedef long (*syscall_fn)(long, ...);
typedef int (*lstat_fn)(const char *, struct stat *);
typedef int (*xstat_fn)(int, const char *, struct stat *);
typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fxstatat_fn)(int, int, const char *, struct stat *, int);
typedef int (*statx_fn)(int, const char *, int, unsigned int, void *);
typedef char *(*realpath_fn)(const char *, char *);
typedef char *(*realpath_chk_fn)(const char *, char *, size_t);
typedef char *(*canonicalize_fn)(const char *);

/* The next definition of `name`, looked up once (a race only looks it up twice). NULL when
 * this glibc has none (lstat64 before 2.33, statx before 2.28). */
static void *next_fn(void **slot, const char *name) {
  void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (f == NULL) {
    int saved = errno;
    f = dlsym(RTLD_NEXT, name);
    errno = saved;
    __atomic_store_n(slot, f, __ATOMIC_RELEASE);
  }
  return f;
}
#define NEXT(type, name)                  \
  ({                                      \
    static void *slot_;                   \
    (type) next_fn(&slot_, name);         \
  })

/* The flags to use: AT_SYMLINK_NOFOLLOW dropped for a memfd link named by an absolute path
 * (or relative to the working directory, which lookups take as absolute only). */
static int follow_memfd(int dirfd, const char *path, int flags) {
  (void)dirfd;
  if ((flags & AT_SYMLINK_NOFOLLOW) != 0 && path != NULL && path[0] == '/' && snap_is_memfd_link(path)) {
    return flags & ~AT_SYMLINK_NOFOLLOW;
  }
  return flags;
}

/* Every libc stat entry point ends in this system call on x86_64 and aarch64, where glibc's
 * struct stat and stat64 are the kernel's. */
static int raw_fstatat(int dirfd, const char *path, void *buf, int flags) {
  syscall_fn sys = NEXT(syscall_fn, "syscall");
  return (int)sys(SYS_newfstatat, dirfd, path, buf, flags);
}

EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
  long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
  va_end(ap);
  syscall_fn sys = NEXT(syscall_fn, "syscall");
#ifdef SYS_statx
  if (number == SYS_statx) c = follow_memfd((int)a, (const char *)b, (int)c);
#endif
  return sys(number, a, b, c, d, e, f);
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf) {
  statx_fn next = NEXT(statx_fn, "statx");
  flags = follow_memfd(dirfd, path, flags);
  if (next != NULL) return next(dirfd, path, flags, mask, buf);
  errno = ENOSYS;
  return -1;
}

/* lstat(path) with a memfd link followed; `next` may be NULL (not in this glibc). */
#define LSTAT_HOOK(name)                                                        \
  EXPORT int name(const char *path, struct stat *buf) {                         \
    if (snap_is_memfd_link(path)) return raw_fstatat(AT_FDCWD, path, buf, 0);   \
    lstat_fn next = NEXT(lstat_fn, #name);                                      \
    if (next != NULL) return next(path, buf);                                   \
    return raw_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);               \
  }
LSTAT_HOOK(lstat)
LSTAT_HOOK(lstat64)

#define LXSTAT_HOOK(name)                                                       \
  EXPORT int name(int ver, const char *path, struct stat *buf) {                \
    if (snap_is_memfd_link(path)) return raw_fstatat(AT_FDCWD, path, buf, 0);   \
    xstat_fn next = NEXT(xstat_fn, #name);                                      \
    if (next != NULL) return next(ver, path, buf);                              \
    return raw_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);               \
  }
LXSTAT_HOOK(__lxstat)
LXSTAT_HOOK(__lxstat64)

#define FSTATAT_HOOK(name)                                                      \
  EXPORT int name(int dirfd, const char *path, struct stat *buf, int flags) {   \
    flags = follow_memfd(dirfd, path, flags);                                   \
    fstatat_fn next = NEXT(fstatat_fn, #name);                                  \
    if (next != NULL) return next(dirfd, path, buf, flags);                     \
    return raw_fstatat(dirfd, path, buf, flags);                                \
  }
FSTATAT_HOOK(fstatat)
FSTATAT_HOOK(fstatat64)

#define FXSTATAT_HOOK(name)                                                              \
  EXPORT int name(int ver, int dirfd, const char *path, struct stat *buf, int flags) {   \
    flags = follow_memfd(dirfd, path, flags);                                            \
    fxstatat_fn next = NEXT(fxstatat_fn, #name);                                         \
    if (next != NULL) return next(ver, dirfd, path, buf, flags);                         \
    return raw_fstatat(dirfd, path, buf, flags);                                         \
  }
FXSTATAT_HOOK(__fxstatat)
FXSTATAT_HOOK(__fxstatat64)

/* ------------------------------------------------------------------------------------------
 * realpath. glibc resolves with internal calls, so its walk still meets "/memfd:..." (and
 * fails with ENOENT, or returns that name). Only then is the path walked again here: the
 * directory part by glibc, the last component by hand, link by link, until it is a memfd link
 * (the answer) or something else (no answer: the real result stands). */

static char *next_realpath(const char *path, char *out) {
  realpath_fn next = NEXT(realpath_fn, "realpath");
  if (next == NULL) {
    errno = ENOSYS;
    return NULL;
  }
  return next(path, out);
}

/* Writes the tree path `path` leads to into out (PATH_MAX bytes) and returns 1, or 0. */
static int memfd_target(const char *path, char *out) {
  char cur[PATH_MAX], dir[PATH_MAX], real_dir[PATH_MAX];
  size_t len = strlen(path);
  if (len == 0 || len >= PATH_MAX) return 0;
  memcpy(cur, path, len + 1);
  for (int hops = 0; hops < 40; hops++) { /* the kernel's own limit on links followed */
    len = strlen(cur);
    if (cur[len - 1] == '/') return 0; /* a directory is never a memfd */
    char *slash = strrchr(cur, '/');
    const char *base = slash != NULL ? slash + 1 : cur;
    if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0) return 0;
    if (slash == NULL) {
      strcpy(dir, ".");
    } else if (slash == cur) {
      strcpy(dir, "/");
    } else {
      memcpy(dir, cur, (size_t)(slash - cur));
      dir[slash - cur] = '\0';
    }
    if (next_realpath(dir, real_dir) == NULL) return 0;
    size_t dl = strlen(real_dir), bl = strlen(base);
    if (dl + 1 + bl >= PATH_MAX) return 0;
    if (dl == 1) dl = 0; /* "/" */
    real_dir[dl] = '/';
    memcpy(real_dir + dl + 1, base, bl + 1);
    if (snap_is_memfd_link(real_dir)) {
      memcpy(out, real_dir, dl + 1 + bl + 1);
      return 1;
    }
    char target[PATH_MAX];
    syscall_fn sys = NEXT(syscall_fn, "syscall");
    long n = sys(SYS_readlinkat, AT_FDCWD, real_dir, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = '\0';
    if (target[0] == '/') {
      memcpy(cur, target, (size_t)n + 1);
    } else {
      if (dl + 1 + (size_t)n >= PATH_MAX) return 0;
      memcpy(cur, real_dir, dl + 1); /* the directory and its slash */
      memcpy(cur + dl + 1, target, (size_t)n + 1);
    }
  }
  return 0;
}

/* Whether a real result (or failure) may hide a memfd link. */
static int may_be_memfd(const char *result, int err) {
  return result != NULL ? strncmp(result, "/memfd:", 7) == 0 : err == ENOENT;
}

/* The tree path into `out` (or a new malloc'd string when out is NULL) in place of `result`. */
static char *memfd_realpath(const char *path, char *out, char *result, int saved_errno) {
  int err = errno;
  char tree[PATH_MAX];
  if (path == NULL || !memfd_target(path, tree)) {
    errno = err;
    return result;
  }
  if (out == NULL) {
    char *copy = strdup(tree);
    if (copy == NULL) {
      errno = ENOMEM;
      return NULL;
    }
    if (result != NULL) free(result);
    out = copy;
  } else {
    strcpy(out, tree);
  }
  errno = saved_errno;
  return out;
}

EXPORT char *realpath(const char *restrict path, char *restrict out) {
  int saved = errno;
  char *r = next_realpath(path, out);
  if (!may_be_memfd(r, errno)) return r;
  return memfd_realpath(path, out, r, saved);
}

EXPORT char *canonicalize_file_name(const char *path) {
  int saved = errno;
  canonicalize_fn next = NEXT(canonicalize_fn, "canonicalize_file_name");
  char *r = next != NULL ? next(path) : next_realpath(path, NULL);
  if (!may_be_memfd(r, errno)) return r;
  return memfd_realpath(path, NULL, r, saved);
}

/* FORTIFY's realpath: the real one checks `size` (and aborts when it is under PATH_MAX). */
EXPORT char *__realpath_chk(const char *path, char *out, size_t size) {
  int saved = errno;
  realpath_chk_fn next = NEXT(realpath_chk_fn, "__realpath_chk");
  char *r = next != NULL ? next(path, out, size) : next_realpath(path, out);
  if (!may_be_memfd(r, errno)) return r;
  return memfd_realpath(path, out, r, saved);
}
