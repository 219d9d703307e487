/*
 * The write-only floor: what it costs to put an archive's unpacked bytes in place once, with no
 * download and no inflating. Run under bench/rusage-run.c, which reports its CPU and faults.
 *
 *   write-floor <manifest> <tree dir>
 *
 * The manifest has one line per file, "<m|t> <size> <path>": m for a file the engine would put
 * in a memfd, t for one it would write under its tree (bench/floor-manifest.ts writes it with
 * the engine's own placement code). Each memfd is created with memfd_create and sized with
 * ftruncate first, as the engine does; each tree file is created under <tree dir> (which must
 * not exist yet; directories are made as needed). Every byte is written with pwrite from ONE
 * buffer, filled with non-zero bytes once, and each file is closed after its last byte.
 * Prints {"files":N,"memfds":N,"bytes":N}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/memfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static char buf[CHUNK];

static void die(const char *what, const char *path, int err) {
  fprintf(stderr, "write-floor: %s %s failed: %s\n", what, path, strerror(err));
  exit(1);
}

/* Creates every missing directory on the way to `path`'s parent (`path` is modified and restored). */
static void make_parents(char *path) {
  for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", path, errno);
    *p = '/';
  }
}

static void fill(int fd, long long size, const char *path) {
  for (long long off = 0; off < size;) {
    size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
    ssize_t w = pwrite(fd, buf, n, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("pwrite to", path, errno);
    }
    off += w;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "write-floor: usage: write-floor <manifest> <tree dir>\n");
    return 2;
  }
  FILE *m = fopen(argv[1], "r");
  if (!m) die("opening the manifest", argv[1], errno);
  if (mkdir(argv[2], 0755) != 0) die("mkdir of the tree", argv[2], errno);
  memset(buf, 0x5a, sizeof buf);
  size_t root_len = strlen(argv[2]);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long files = 0, memfds = 0;
  long long bytes = 0;
  char *full = NULL;
  size_t full_cap = 0;
  while ((len = getline(&line, &cap, m)) > 0) {
    if (line[len - 1] == '\n') line[--len] = '\0';
    char kind;
    long long size;
    int at = 0;
    if (sscanf(line, "%c %lld %n", &kind, &size, &at) != 2 || at == 0 || (kind != 'm' && kind != 't') || size < 0) {
      fprintf(stderr, "write-floor: manifest line %ld is not \"<m|t> <size> <path>\": %s\n", files + 1, line);
      return 1;
    }
    const char *rel = line + at;
    int fd;
    if (kind == 'm') {
      /* Through syscall(): the glibc the helpers are built against predates its wrapper. */
      fd = (int)syscall(SYS_memfd_create, rel, MFD_CLOEXEC);
      if (fd < 0) die("memfd_create for", rel, errno);
      if (ftruncate(fd, size) != 0) die("ftruncate of the memfd for", rel, errno);
      memfds++;
    } else {
      size_t need = root_len + 1 + strlen(rel) + 1;
      if (need > full_cap) {
        full_cap = need * 2;
        full = realloc(full, full_cap);
        if (!full) die("allocating a path for", rel, ENOMEM);
      }
      snprintf(full, need, "%s/%s", argv[2], rel);
      make_parents(full);
      fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) die("creating", full, errno);
    }
    fill(fd, size, rel);
    if (close(fd) != 0) die("close of", rel, errno);
    files++;
    bytes += size;
  }
  if (ferror(m)) die("reading the manifest", argv[1], errno);
  fclose(m);
  free(line);
  free(full);
  printf("{\"files\":%ld,\"memfds\":%ld,\"bytes\":%lld}\n", files, memfds, bytes);
  return 0;
}
