/*
 * Shared by the preload fuzz targets: the library's own code (included whole, built with
 * -DSNAPLOADER_FUZZ so the hooks are left out and tables live on the heap), a way to load a
 * mapping file from bytes, and a plain reference of what the library must do, written from
 * docs/architecture.md and not from the library, to compare against.
 */
#define _GNU_SOURCE
#include "../../preload-c/snaploader_preload.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "check failed: %s: ", #cond);                                                \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* ---- loading: the bytes go into a memfd, which load_map opens by its /proc path. */

static int g_memfd = -1;
static char g_memfd_path[64];

static void unload(void) {
  if (g_map.active) {
    unmap_anon(g_map.image, g_map.image_size);
    unmap_anon(g_map.tables, g_map.tables_size);
  }
  memset(&g_map, 0, sizeof g_map);
}

static void load_bytes(const uint8_t *data, size_t size) {
  unload();
  if (g_memfd < 0) {
    g_memfd = memfd_create("snaploader-fuzz-map", MFD_CLOEXEC);
    CHECK(g_memfd >= 0, "memfd_create");
    snprintf(g_memfd_path, sizeof g_memfd_path, "/proc/self/fd/%d", g_memfd);
  }
  CHECK(ftruncate(g_memfd, 0) == 0, "ftruncate");
  size_t off = 0;
  while (off < size) {
    ssize_t n = pwrite(g_memfd, data + off, size - off, (off_t)off);
    CHECK(n > 0, "pwrite");
    off += (size_t)n;
  }
  t_busy = 1; /* as in init() */
  load_map(g_memfd_path);
  t_busy = 0;
}

/* ---- the reference decoder: the format's rules, record by record. */

struct ref_record {
  uint8_t kind;
  const char *key, *value; /* into the input; NUL-terminated there when valid */
  uint32_t key_len, value_len;
};

static uint32_t ref_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Returns the number of records (into *out, caller frees), or -1 if the file breaks a rule. */
static long ref_decode(const uint8_t *d, size_t n, struct ref_record **out) {
  *out = NULL;
  if (n < 16 || n > 256u * 1024 * 1024 || memcmp(d, "SNAPMAP\x01", 8) != 0) return -1;
  uint32_t count = ref_le32(d + 8);
  /* Every record takes at least 14 bytes: more records than that cannot fit. */
  if ((uint64_t)count * 14 > n - 16) return -1;
  struct ref_record *r = calloc(count ? count : 1, sizeof *r);
  CHECK(r != NULL, "calloc");
  uint64_t at = 16;
  for (uint32_t i = 0; i < count; i++) {
    if (at + 12 > n) goto bad;
    uint32_t kl = ref_le32(d + at + 4), vl = ref_le32(d + at + 8);
    if (kl > 4096 || vl > 4096) goto bad;
    uint64_t key_at = at + 12, value_at = key_at + kl + 1, end = value_at + vl + 1;
    if (end > n || d[value_at - 1] != 0 || d[end - 1] != 0) goto bad;
    for (uint64_t j = key_at; j < key_at + kl; j++)
      if (d[j] == 0) goto bad;
    for (uint64_t j = value_at; j < value_at + vl; j++)
      if (d[j] == 0) goto bad;
    r[i].kind = d[at];
    r[i].key = (const char *)d + key_at;
    r[i].value = (const char *)d + value_at;
    r[i].key_len = kl;
    r[i].value_len = vl;
    at = end;
  }
  if (at != n) goto bad;
  *out = r;
  return count;
bad:
  free(r);
  return -1;
}

/* ---- the reference lookup: what open() of `path` must be redirected to, or NULL. */

/* Textual normalisation with a stack of components. */
static size_t ref_normalise(char *out, const char *in, size_t len) {
  size_t starts[PATH_MAX], depth = 0, o = 0;
  size_t i = 0;
  while (i < len) {
    while (i < len && in[i] == '/') i++;
    size_t s = i;
    while (i < len && in[i] != '/') i++;
    size_t c = i - s;
    if (c == 0 || (c == 1 && in[s] == '.')) continue;
    if (c == 2 && in[s] == '.' && in[s + 1] == '.') {
      if (depth > 0) o = starts[--depth];
      continue;
    }
    starts[depth++] = o;
    out[o++] = '/';
    memcpy(out + o, in + s, c);
    o += c;
  }
  if (o == 0) out[o++] = '/';
  out[o] = '\0';
  return o;
}

/* A path whose last component is empty, "." or ".." names a directory: never redirected. */
static int ref_names_file(const char *p, size_t len) {
  size_t i = len;
  while (i > 0 && p[i - 1] != '/') i--;
  size_t c = len - i;
  return c != 0 && !(c == 1 && p[i] == '.') && !(c == 2 && p[i] == '.' && p[i + 1] == '.');
}

static const char *ref_lookup(const struct ref_record *r, long n, const char *path, int cwd_relative) {
  static char joined[2 * PATH_MAX + 2], norm[2 * PATH_MAX + 2];
  size_t len = strlen(path);
  if (len >= PATH_MAX || !ref_names_file(path, len)) return NULL;
  if (path[0] != '/') {
    if (!cwd_relative) return NULL;
    static char cwd[PATH_MAX]; /* the targets never change directory after fuzz_init_common */
    if (cwd[0] == '\0' && (getcwd(cwd, sizeof cwd) == NULL || cwd[0] != '/')) abort();
    size_t cl = strlen(cwd);
    if (cl + 1 + len >= PATH_MAX) return NULL;
    memcpy(joined, cwd, cl);
    joined[cl] = '/';
    memcpy(joined + cl + 1, path, len);
    len += cl + 1;
  } else {
    memcpy(joined, path, len);
  }
  size_t nl = ref_normalise(norm, joined, len);
  for (long i = 0; i < n; i++) { /* the first record wins */
    if (r[i].kind != 1 || r[i].value_len == 0 || r[i].key_len == 0 || r[i].key[0] != '/') continue;
    if (r[i].key_len == nl && memcmp(r[i].key, norm, nl) == 0) return r[i].value;
  }
  return NULL;
}

static const char *ref_lookup_basename(const struct ref_record *r, long n, const char *name) {
  size_t len = strlen(name);
  if (len >= PATH_MAX || strchr(name, '/') != NULL) return NULL;
  for (long i = 0; i < n; i++) {
    if (r[i].kind != 2 || r[i].value_len == 0 || r[i].key_len == 0) continue;
    if (memchr(r[i].key, '/', r[i].key_len) != NULL) continue;
    if (r[i].key_len == len && memcmp(r[i].key, name, len) == 0) return r[i].value;
  }
  return NULL;
}

/* The library and the reference agree on `path` (as open, and as openat with a real dirfd). */
static void compare_lookup(const struct ref_record *r, long n, const char *path) {
  for (int cwd_relative = 0; cwd_relative <= 1; cwd_relative++) {
    int saved = errno = 12345;
    const char *got = lookup_path(path, cwd_relative);
    CHECK(errno == saved, "lookup_path changed errno for \"%s\"", path);
    const char *want = ref_lookup(r, n, path, cwd_relative);
    CHECK(got == want || (got && want && strcmp(got, want) == 0),
          "lookup of \"%s\" (cwd_relative=%d): library %s%s%s, reference %s%s%s", path, cwd_relative,
          got ? "\"" : "", got ? got : "(none)", got ? "\"" : "", want ? "\"" : "", want ? want : "(none)",
          want ? "\"" : "");
  }
  const char *got = lookup_basename(path), *want = ref_lookup_basename(r, n, path);
  CHECK(got == want || (got && want && strcmp(got, want) == 0), "basename lookup of \"%s\" differs", path);
}

static void fuzz_init_common(void) {
  /* Relative lookups are made against "/", where short fuzzed keys can meet them. */
  CHECK(chdir("/") == 0, "chdir /");
}
