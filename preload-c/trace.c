/*
 * Use recording for `snaploader trace`: which files of the tree a function really uses.
 *
 * SNAPLOADER_TRACE=<file> (absolute path; unset or blank: off) makes the open, fopen, freopen
 * and dlopen hooks call snap_trace_path with the path they opened, after the real call
 * succeeded. A path in the tree (the directory two levels above SNAPLOADER_MAP, the mapping
 * file at <tree>/.snaploader/map) that this process has not recorded yet appends one line to
 * <file>: the path relative to the tree, percent-encoded like the control protocol (every
 * byte <= 0x20, '%' and >= 0x7f as %XX), then '\n'.
 *
 *  - One write(2) per line on an O_APPEND descriptor: lines of concurrent processes never
 *    interleave, and their order in the file is the order of first use.
 *  - Fork-safe: no locks. The "recorded already" set is a lock-free open-addressing table of
 *    64-bit path hashes in anonymous memory; a child inherits it (and the descriptor, which
 *    is O_APPEND), so it records only what its parent had not. After execve the new image
 *    starts afresh (the descriptor is O_CLOEXEC); a path it records again is a repeat line,
 *    which the reader counts as one more process using the file.
 *  - errno is saved and restored; nothing here changes a call's result.
 *  - A table that fills up (65,536 paths) records every further use (repeat lines, no loss).
 */
#define _GNU_SOURCE
#include "path.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define SLOTS (1u << 16)

int snap_trace_state;
static int g_fd = -1;
static char g_tree[PATH_MAX];
static size_t g_tree_len;
static uint64_t *g_seen;

static void complain(const char *what, const char *path, int err) {
  const char *why = strerror(err);
  struct iovec iov[] = {
      {(void *)"snaploader: trace: ", 19}, {(void *)what, strlen(what)}, {(void *)path, strlen(path)},
      {(void *)": ", 2}, {(void *)why, strlen(why)}, {(void *)"; nothing is recorded\n", 22},
  };
  ssize_t r = writev(2, iov, sizeof iov / sizeof iov[0]);
  (void)r;
}

static const char *trimmed(const char *v) {
  if (v == NULL) return NULL;
  while (*v == ' ' || (*v >= '\t' && *v <= '\r')) v++;
  return *v == '\0' ? NULL : v;
}

static int start(void) {
  const char *file = trimmed(getenv("SNAPLOADER_TRACE"));
  const char *map = getenv("SNAPLOADER_MAP");
  if (file == NULL || map == NULL || map[0] != '/') return 1;
  /* The tree: SNAPLOADER_MAP is <tree>/.snaploader/map. */
  size_t n = strlen(map);
  if (n >= sizeof g_tree) return 1;
  memcpy(g_tree, map, n + 1);
  for (int up = 0; up < 2; up++) {
    char *slash = strrchr(g_tree, '/');
    if (slash == NULL || slash == g_tree) return 1;
    *slash = '\0';
  }
  g_tree_len = strlen(g_tree);
  g_seen = mmap(NULL, SLOTS * sizeof *g_seen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_seen == MAP_FAILED) {
    complain("cannot allocate the table of recorded paths for ", file, errno);
    return 1;
  }
  size_t fl = strlen(file);
  while (fl > 0 && (file[fl - 1] == ' ' || (file[fl - 1] >= '\t' && file[fl - 1] <= '\r'))) fl--;
  char path[PATH_MAX];
  if (fl >= sizeof path) return 1;
  memcpy(path, file, fl);
  path[fl] = '\0';
  g_fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (g_fd < 0) {
    complain("cannot open SNAPLOADER_TRACE=", path, errno);
    munmap(g_seen, SLOTS * sizeof *g_seen);
    return 1;
  }
  return 2;
}

int snap_trace_start(void) {
  int saved = errno;
  int expected = 0;
  if (__atomic_compare_exchange_n(&snap_trace_state, &expected, 3, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    __atomic_store_n(&snap_trace_state, start(), __ATOMIC_RELEASE);
  } else {
    /* Another thread is starting: wait for it, briefly (a fork during that start leaves the
     * child's copy at 3, and it then records nothing rather than waiting forever). */
    for (int i = 0; i < 1000 && __atomic_load_n(&snap_trace_state, __ATOMIC_ACQUIRE) == 3; i++) sched_yield();
  }
  errno = saved;
  return __atomic_load_n(&snap_trace_state, __ATOMIC_ACQUIRE) == 2;
}

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h == 0 ? 1 : h;
}

/* 1 if `h` was not in the set (and now is), 0 if it was. */
static int first_time(uint64_t h) {
  for (uint32_t i = 0, at = (uint32_t)h & (SLOTS - 1); i < SLOTS; i++, at = (at + 1) & (SLOTS - 1)) {
    uint64_t cur = __atomic_load_n(&g_seen[at], __ATOMIC_ACQUIRE);
    if (cur == h) return 0;
    if (cur == 0) {
      uint64_t expected = 0;
      if (__atomic_compare_exchange_n(&g_seen[at], &expected, h, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return 1;
      if (expected == h) return 0;
    }
  }
  return 1; /* full: record again rather than lose a use */
}

static void record(const char *path) {
  char buf[PATH_MAX];
  size_t len = strnlen(path, PATH_MAX);
  if (len >= PATH_MAX || len == 0) return;
  size_t n = snap_absolute_path(buf, path, len);
  if (n <= g_tree_len + 1 || memcmp(buf, g_tree, g_tree_len) != 0 || buf[g_tree_len] != '/') return;
  const char *rel = buf + g_tree_len + 1;
  size_t rl = n - g_tree_len - 1;
  if (rl >= 11 && memcmp(rel, ".snaploader", 11) == 0 && (rl == 11 || rel[11] == '/')) return;
  if (!first_time(hash(rel, rl))) return;
  static const char hex[] = "0123456789ABCDEF";
  char line[3 * PATH_MAX + 1];
  size_t o = 0;
  for (size_t i = 0; i < rl; i++) {
    unsigned char c = (unsigned char)rel[i];
    if (c <= 0x20 || c == '%' || c >= 0x7f) {
      line[o++] = '%';
      line[o++] = hex[c >> 4];
      line[o++] = hex[c & 15];
    } else {
      line[o++] = (char)c;
    }
  }
  line[o++] = '\n';
  ssize_t w = write(g_fd, line, o); /* one write: O_APPEND keeps it whole */
  (void)w;
}

void snap_trace_path(const char *path) {
  if (path == NULL || g_fd < 0) return;
  int saved = errno;
  record(path);
  errno = saved;
}

static int each_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  if (info->dlpi_name != NULL && info->dlpi_name[0] == '/') record(info->dlpi_name);
  return 0;
}

void snap_trace_loaded(void) {
  if (g_fd < 0) return;
  int saved = errno;
  dl_iterate_phdr(each_object, NULL); /* takes the loader's lock: safe beside another dlopen */
  errno = saved;
}
