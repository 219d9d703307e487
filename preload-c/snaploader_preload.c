/*
 * libsnaploader.so: the LD_PRELOAD library of snaploader.
 *
 * The init program places the files of the function's zip in a tree under /tmp (some are
 * symlinks into memfds) and writes a mapping file (format: docs/architecture.md, "The
 * mapping file") whose path reaches the runtime in SNAPLOADER_MAP. This library makes
 * dlopen/open/fopen of an original path (<base path>/x, e.g. /var/task/lib/libx.so) open
 * the tree path instead. Record kinds used here: 1 PATH (exact absolute path, every hook),
 * 2 DLOPEN_BASENAME (bare file name, dlopen only, after the normal search failed) and
 * 3 MEMFD (a tree link into a memfd: memfd_paths.c makes it resolve to itself).
 *
 * Design:
 *  - Lazy: nothing runs at load time. The first interposed call (in any thread) runs
 *    init() once under pthread_once: it resolves the real functions with
 *    dlsym(RTLD_NEXT, ...) and loads the mapping file. SNAPLOADER_MAP unset or empty, or a
 *    file that breaks any rule of the format, means "no mapping": every call is passed
 *    through unchanged from then on, at the cost of a thread-local flag test and one
 *    acquire load and compare of the init state.
 *  - No allocator: the file is read with plain syscalls into anonymous mmap memory and the
 *    open-addressing hash tables (FNV-1a) and pre-filter arrays live in mmap memory too;
 *    keys and values point into the file image. Lookups allocate nothing and take no locks.
 *  - Cheap misses: an unmapped path is rejected, in order, because no PATH key has a last
 *    component of its length, or no PATH key ends in the same last two components (their
 *    length, then a Bloom filter, then a hash set, all filled at load time; one strlen, no
 *    copy, no getcwd), or because its normalised form does not start with the longest
 *    common prefix of the PATH keys, or by the hash table itself.
 *  - Re-entrancy: dlsym may call malloc, and a malloc (jemalloc, ...) may open files while
 *    initialising; such a nested call must not wait on the pthread_once its own thread
 *    holds. A per-thread flag marks "inside our own code"; a hook entered while it is set
 *    passes straight through, to the raw syscall if the real function is not known yet.
 *    The flag is never held while the real function runs, so files opened by library
 *    constructors inside a redirected dlopen are redirected as well.
 *  - errno: lookups save and restore it, so a call that is not redirected leaves errno
 *    exactly as the real call does, and a redirected one as the real call on the tree path.
 *  - Debug: SNAPLOADER_DEBUG (a switch in the settings grammar: settings.h) prints one
 *    line per load, rejection and redirect to stderr with writev(2); nothing at all otherwise.
 */
#define _GNU_SOURCE
/* The build passes -D_FORTIFY_SOURCE=2; glibc's fortify headers turn open/openat into inline
 * wrappers, which would clash with the definitions below. The hooks do no buffer work
 * that fortify could check anyway. */
#undef _FORTIFY_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "log_json.h"
#include "memfd_paths.h"
#include "path.h"
#include "settings.h"
#include "trace.h"

#define EXPORT __attribute__((visibility("default")))

#define MAP_MAGIC "SNAPMAP\x01"
#define MAP_HEADER_BYTES 16u
#define MAP_RECORD_HEADER_BYTES 12u
#define MAP_MAX_FIELD 4096u
#define MAP_MAX_FILE (256u * 1024u * 1024u)
#define KIND_PATH 1
#define KIND_DLOPEN_BASENAME 2
#define KIND_MEMFD 3

/* glibc's __OPEN_NEEDS_MODE, spelled out: O_TMPFILE is several bits (O_DIRECTORY among
 * them), so it needs all of them, not any. */
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#define NEEDS_MODE(flags) (((flags) & O_CREAT) != 0 || ((flags) & O_TMPFILE) == O_TMPFILE)

/* A tail call keeps the caller's return address for the real dlopen, which uses it to pick
 * the caller's RUNPATH, $ORIGIN and namespace. */
#if defined(__has_attribute)
#if __has_attribute(musttail)
#define TAIL_CALL __attribute__((musttail))
#endif
#endif
#ifndef TAIL_CALL
#define TAIL_CALL
#endif

/* The FORTIFY entry points; their declarations live in bits/fcntl2.h, disabled above. */
EXPORT int __open_2(const char *path, int flags);
EXPORT int __open64_2(const char *path, int flags);
EXPORT int __openat_2(int dirfd, const char *path, int flags);
EXPORT int __openat64_2(int dirfd, const char *path, int flags);

/* ------------------------------------------------------------------------------------------
 * Real functions, resolved once in init(). */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);
typedef FILE *(*fopen_fn)(const char *, const char *);
typedef FILE *(*freopen_fn)(const char *, const char *, FILE *);
typedef void *(*dlopen_fn)(const char *, int);
typedef int (*addopen_fn)(posix_spawn_file_actions_t *, int, const char *, int, mode_t);

static struct {
  open_fn open, open64;
  openat_fn openat, openat64;
  open2_fn open_2, open64_2;
  openat2_fn openat_2, openat64_2;
  fopen_fn fopen, fopen64;
  freopen_fn freopen, freopen64;
  dlopen_fn dlopen;
  addopen_fn spawn_addopen;
} real;

/* ------------------------------------------------------------------------------------------
 * The loaded mapping. Written only by init(), read-only once g_ready is set. */

struct entry {
  uint64_t hash; /* 0 marks an empty slot */
  const char *key;
  const char *value;
  uint32_t key_len;
};

struct table {
  struct entry *slots;
  size_t mask; /* capacity - 1, capacity a power of two */
};

struct hash_set {
  uint64_t *slots; /* 0 marks an empty slot */
  size_t mask;
};

/* The pre-filter over one part of the kind-1 keys (their leaves, or their tails: see
 * tail_start), checked in this order, cheapest first. */
struct prefilter {
  uint64_t *lengths;      /* bit n set: some key's part is n bytes long */
  uint64_t *bloom;        /* blocked Bloom filter of part_hash: three bits in one word */
  size_t bloom_mask;      /* its number of words - 1 (a power of two - 1) */
  struct hash_set hashes; /* every part_hash, exactly */
};

static struct {
  /* First: what a miss reads, together. */
  int active;              /* a valid file was loaded */
  struct prefilter leaves; /* the last component of every kind-1 key */
  struct prefilter tails;  /* their last two components */
  struct table paths;      /* kind 1, key = normalised absolute path */
  struct table basenames;  /* kind 2, key = bare file name */
  struct table memfds;     /* kind 3, key = normalised absolute path of a tree link */
  const char *memfd_prefix; /* longest common prefix of the kind-3 keys */
  size_t memfd_prefix_len;
  const char *prefix; /* longest common prefix of the kind-1 keys */
  size_t prefix_len;
  void *image, *tables; /* what load_map allocated: the file's bytes, the tables */
  size_t image_size, tables_size;
} g_map;

static int g_debug;
/* What every hook checks first, in one acquire load: 0 until init() finished, then
 * READY_PASS (no mapping: pass everything through) or READY_MAP. */
enum { READY_PASS = 1, READY_MAP = 2 };
static int g_ready;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* initial-exec: the library is preloaded, so its TLS is static and the access never goes
 * through __tls_get_addr, which may allocate. */
static __thread int t_busy __attribute__((tls_model("initial-exec")));

/* glibc declares the path arguments of open/openat __nonnull, which lets the compiler delete
 * our NULL checks; an empty asm hides the pointer's origin from the optimiser. */
static inline const char *launder(const char *p) {
  __asm__("" : "+r"(p));
  return p;
}

/* ------------------------------------------------------------------------------------------
 * Debug output: writev(2) of the pieces, one syscall per line, no stdio. */

static int g_log_min; /* 0: text lines; else JSON from this level up (log_json.h) */

static void log_parts(int level, const char *prefix, const char *a, const char *b, const char *c, const char *d,
                      const char *e) {
  const char *parts[] = {a, b, c, d, e};
  snap_log_parts(g_log_min, level, "preload", prefix, parts, 5);
}

static void debug_line(const char *a, const char *b, const char *c, const char *d, const char *e) {
  log_parts(SNAP_DEBUG, "snaploader-preload: ", a, b, c, d, e);
}

static const char *utoa(uint64_t v, char buf[24]) {
  char *p = buf + 23;
  *p = '\0';
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return p;
}

static void log_redirect(const char *fn, const char *from, const char *to) {
  debug_line(fn, " ", from, " -> ", to);
}

/* ------------------------------------------------------------------------------------------
 * Hashing and tables. */

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h != 0 ? h : 1; /* 0 is the empty-slot marker */
}

#ifndef SNAPLOADER_FUZZ
static void *map_anon(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void unmap_anon(void *p, size_t bytes) {
  munmap(p, bytes);
}

static void make_read_only(void *p, size_t bytes) {
  mprotect(p, bytes, PROT_READ);
}
#else
/* The fuzz targets in test/fuzz/ include this file: heap blocks there, whose exact bounds
 * AddressSanitizer checks (an mmap region is only checked to the end of its last page). */
static void *map_anon(size_t bytes) {
  return calloc(1, bytes);
}

static void unmap_anon(void *p, size_t bytes) {
  (void)bytes;
  free(p);
}

static void make_read_only(void *p, size_t bytes) {
  (void)p;
  (void)bytes;
}
#endif

/* Capacity: a power of two at least twice the number of keys (load factor <= 1/2). */
static size_t capacity_for(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  return cap;
}

/* Duplicate keys: the first record wins. */
static void table_insert(struct table *t, const char *key, uint32_t key_len, const char *value) {
  uint64_t h = fnv1a(key, key_len);
  for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
    struct entry *e = &t->slots[i];
    if (e->hash == 0) {
      e->hash = h;
      e->key = key;
      e->key_len = key_len;
      e->value = value;
      return;
    }
    if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) return;
  }
}

static const char *table_find(const struct table *t, const char *key, size_t key_len) {
  if (t->slots == NULL) return NULL;
  uint64_t h = fnv1a(key, key_len);
  for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
    const struct entry *e = &t->slots[i];
    if (e->hash == 0) return NULL;
    if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) return e->value;
  }
}

static void set_insert(struct hash_set *s, uint64_t h) {
  for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
    if (s->slots[i] == h) return;
    if (s->slots[i] == 0) {
      s->slots[i] = h;
      return;
    }
  }
}

static inline int set_has(const struct hash_set *s, uint64_t h) {
  for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
    if (s->slots[i] == h) return 1;
    if (s->slots[i] == 0) return 0;
  }
}

/* ------------------------------------------------------------------------------------------
 * The pre-filter. Most paths a runtime opens are not mapped, and must be turned away
 * without copying or normalising them. A path that normalises to a key ends with the key's
 * last two components when its own last two are plain names (normalisation keeps those),
 * so "does any key end in parent/leaf?" is exact enough to reject nearly everything (a
 * leaf alone is not: every Python package has an __init__.py). When the parent is not
 * known or not a plain name ("x", "a/../x", "a//x") only the leaf is checked.
 *
 * That part of the path is checked by its length first (a bitmap), then by a hash of its
 * bytes against a Bloom filter (2 to 4 KiB per thousand keys), and only then against the
 * exact set of part hashes; each step reads one word of a read-only array. Finding the
 * part and hashing it read the path 8 bytes at a time, and no byte outside it. */

static inline int is_name(const char *s, size_t n) {
  return n != 0 && !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

static inline uint64_t load64(const char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline uint32_t load32(const char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Index just past the last '/' in s[0..end), 0 if there is none. Eight bytes at a time on
 * little-endian machines (x86_64, aarch64), never reading before s or from s + end on. */
static inline size_t after_slash(const char *s, size_t end) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
  while (end >= 8) {
    uint64_t x = load64(s + end - 8) ^ 0x2f2f2f2f2f2f2f2full; /* '/' bytes become 0 */
    /* The top bit of each byte that is 0 in x, and of no other: no carry crosses bytes. */
    uint64_t zero = ~(((x & low7) + low7) | x | low7);
    if (zero != 0) return end - 8 + (size_t)(63 - __builtin_clzll(zero)) / 8 + 1;
    end -= 8;
  }
#endif
  while (end > 0 && s[end - 1] != '/') end--;
  return end;
}

/* For a path whose leaf (last component) starts at s + i and is a plain name (a path ending
 * in '/', '.' or '..' cannot name a file at all): where its tail "parent/leaf" starts
 * ("/leaf" right under the root counts as one), or i itself when the parent is unknown or
 * not a plain name ("x", whose parent is the cwd's; "a//x", "a/./x", "a/../x"), and only the
 * leaf can be checked. */
static inline size_t tail_start(const char *s, size_t i) {
  if (i == 0) return i;
  size_t j = after_slash(s, i - 1);
  return i - 1 == 0 || is_name(s + j, i - 1 - j) ? j : i;
}

#define MIX_A 0x9e3779b97f4a7c15ull
#define MIX_B 0xff51afd7ed558ccdull

static inline uint64_t rotl64(uint64_t x, int r) {
  return x << r | x >> (64 - r);
}

/* The hash of s[0..n) the pre-filter uses: the length, then 8 bytes per multiply (the last
 * word overlaps the one before it when n is not a multiple of 8; shorter parts are read as
 * two overlapping 4-byte words, or byte by byte), then the high half folded into the low
 * one. Never 0. */
static inline uint64_t part_hash(const char *s, size_t n) {
  uint64_t h = (uint64_t)n * MIX_A;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) h = rotl64((h ^ load64(s + i)) * MIX_B, 29);
    h = (h ^ load64(s + n - 8)) * MIX_B;
  } else if (n >= 4) {
    h = (h ^ ((uint64_t)load32(s) << 32 | load32(s + n - 4))) * MIX_B;
  } else if (n > 0) {
    const unsigned char *u = (const unsigned char *)s;
    h = (h ^ ((uint64_t)u[0] << 16 | (uint64_t)u[n / 2] << 8 | u[n - 1])) * MIX_B;
  }
  h ^= h >> 32; /* the product's well-mixed high half into the low bits, which index */
  return h != 0 ? h : 1;
}

#define LENGTH_WORDS (MAP_MAX_FIELD / 64 + 1) /* a part is never longer than its key */

static inline uint64_t bloom_bits(uint64_t h) {
  return 1ull << (h & 63) | 1ull << (h >> 6 & 63) | 1ull << (h >> 12 & 63);
}

static inline size_t bloom_word(const struct prefilter *f, uint64_t h) {
  return (size_t)(h >> 32) & f->bloom_mask;
}

/* Whether some key's part is n bytes long (n <= MAP_MAX_FIELD). */
static inline __attribute__((always_inline)) int has_length(const struct prefilter *f, size_t n) {
  return f->lengths[n / 64] >> (n % 64) & 1;
}

/* Whether some key's part could be s[0..n): the Bloom filter, then the exact hash set. */
static inline int has_hash(const struct prefilter *f, const char *s, size_t n) {
  uint64_t h = part_hash(s, n), bits = bloom_bits(h);
  if ((f->bloom[bloom_word(f, h)] & bits) != bits) return 0;
  return set_has(&f->hashes, h);
}

/* Load time: the filter arrays are still writable here. */
static void prefilter_add(struct prefilter *f, const char *s, size_t n) {
  uint64_t h = part_hash(s, n);
  f->lengths[n / 64] |= 1ull << (n % 64);
  f->bloom[bloom_word(f, h)] |= bloom_bits(h);
  set_insert(&f->hashes, h);
}

/* ------------------------------------------------------------------------------------------
 * Loading the mapping file. */

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *errno_text(int e) {
  switch (e) {
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case EMFILE: return "Too many open files";
    case ENOMEM: return "Out of memory";
    case EIO: return "Input/output error";
    default: return "error";
  }
}

static void reject(const char *path, const char *reason, const char *detail) {
  if (g_debug) debug_line("ignoring mapping file ", path, ": ", reason, detail);
}

/* The common prefix of every key added so far: the first key, then cut to what each next one shares. */
static void narrow_prefix(const char **prefix, size_t *len, int *have, const char *key, size_t kl) {
  if (!*have) {
    *prefix = key;
    *len = kl;
    *have = 1;
    return;
  }
  size_t n = 0;
  while (n < *len && n < kl && (*prefix)[n] == key[n]) n++;
  *len = n;
}

/* Reads and validates the whole file, then builds the tables. Any failure leaves g_map
 * inactive (and unmaps what was mapped). Runs with t_busy set. */
static void load_map(const char *path) {
  char num[24];
  /* O_NONBLOCK: a FIFO (or a device) named by mistake must not block the runtime in its first
   * open; anything but a regular file is refused below. O_NOCTTY: nor may a terminal become
   * its controlling one. */
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    reject(path, "cannot open it: ", errno_text(errno));
    return;
  }
  /* The raw syscall: for glibc 2.17, zig links fstat in statically from libc_nonshared.a,
   * and it would be exported from this library (interposing everyone's fstat). The glibc
   * struct stat is the kernel's on x86_64 and aarch64. */
  struct stat st;
  if (syscall(SYS_fstat, fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    reject(path, "not a regular file", NULL);
    return;
  }
  if (st.st_size > (off_t)MAP_MAX_FILE) {
    close(fd);
    reject(path, "larger than 256 MiB", NULL);
    return;
  }
  size_t size = (size_t)st.st_size;
  if (size < MAP_HEADER_BYTES) {
    close(fd);
    reject(path, "truncated header", NULL);
    return;
  }
  unsigned char *buf = map_anon(size);
  if (buf == NULL) {
    close(fd);
    reject(path, "out of memory", NULL);
    return;
  }
  /* A private copy rather than a file mapping: a later truncation of the file cannot
   * SIGBUS the runtime. */
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);

  const char *why = NULL, *detail = NULL;
  size_t n_paths = 0, n_basenames = 0, n_memfds = 0;
  uint32_t count = 0;
  if (got != size) {
    why = "short read";
  } else if (memcmp(buf, MAP_MAGIC, 8) != 0) {
    why = "bad magic (not a snaploader mapping file)";
  } else {
    /* Pass 1: validate every record and count the kinds we use. */
    count = le32(buf + 8);
    size_t at = MAP_HEADER_BYTES;
    for (uint32_t i = 0; i < count && why == NULL; i++) {
      detail = utoa(i, num);
      if (size - at < MAP_RECORD_HEADER_BYTES) {
        why = "truncated in record ";
        break;
      }
      uint32_t kind = buf[at];
      uint32_t kl = le32(buf + at + 4), vl = le32(buf + at + 8);
      if (kl > MAP_MAX_FIELD || vl > MAP_MAX_FIELD) {
        why = "key or value longer than 4096 bytes in record ";
        break;
      }
      size_t need = MAP_RECORD_HEADER_BYTES + (size_t)kl + 1 + (size_t)vl + 1;
      if (size - at < need) {
        why = "truncated in record ";
        break;
      }
      const unsigned char *key = buf + at + MAP_RECORD_HEADER_BYTES;
      const unsigned char *value = key + kl + 1;
      if (key[kl] != 0 || value[vl] != 0) {
        why = "missing NUL terminator in record ";
      } else if (memchr(key, 0, kl) != NULL || memchr(value, 0, vl) != NULL) {
        why = "NUL byte inside key or value in record ";
      } else if (kind == KIND_PATH) {
        n_paths++;
      } else if (kind == KIND_DLOPEN_BASENAME) {
        n_basenames++;
      } else if (kind == KIND_MEMFD) {
        n_memfds++;
      }
      at += need;
    }
    if (why == NULL && at != size) {
      why = "trailing bytes after the last record";
      detail = NULL;
    }
  }
  if (why != NULL) {
    unmap_anon(buf, size);
    reject(path, why, detail);
    return;
  }

  size_t path_cap = capacity_for(n_paths), base_cap = capacity_for(n_basenames);
  size_t memfd_cap = n_memfds > 0 ? capacity_for(n_memfds) : 0;
  /* 16 to 32 bits of Bloom filter per key: 0.2% to 0.8% of unmapped parts get past it. */
  size_t bloom_words = 1;
  while (bloom_words < n_paths / 4) bloom_words <<= 1;
  size_t table_bytes = (path_cap + base_cap + memfd_cap) * sizeof(struct entry) +
                       2 * (path_cap + LENGTH_WORDS + bloom_words) * sizeof(uint64_t);
  unsigned char *mem = map_anon(table_bytes);
  if (mem == NULL) {
    unmap_anon(buf, size);
    reject(path, "out of memory", NULL);
    return;
  }
  g_map.paths.slots = (struct entry *)mem;
  g_map.paths.mask = path_cap - 1;
  g_map.basenames.slots = (struct entry *)mem + path_cap;
  g_map.basenames.mask = base_cap - 1;
  if (memfd_cap > 0) {
    g_map.memfds.slots = (struct entry *)mem + path_cap + base_cap;
    g_map.memfds.mask = memfd_cap - 1;
  }
  uint64_t *words = (uint64_t *)((struct entry *)mem + path_cap + base_cap + memfd_cap);
  struct prefilter *filters[] = {&g_map.leaves, &g_map.tails};
  for (size_t f = 0; f < 2; f++) {
    filters[f]->hashes.slots = words;
    filters[f]->hashes.mask = path_cap - 1;
    words += path_cap;
    filters[f]->lengths = words;
    words += LENGTH_WORDS;
    filters[f]->bloom = words;
    filters[f]->bloom_mask = bloom_words - 1;
    words += bloom_words;
  }

  /* Pass 2: fill the tables. Records that can never match a lookup (a PATH key that is not
   * absolute, a basename with a slash, an empty value) are skipped, not fatal. */
  size_t at = MAP_HEADER_BYTES, loaded = 0;
  int have_prefix = 0, have_memfd_prefix = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t kind = buf[at];
    uint32_t kl = le32(buf + at + 4), vl = le32(buf + at + 8);
    const char *key = (const char *)buf + at + MAP_RECORD_HEADER_BYTES;
    const char *value = key + kl + 1;
    at += MAP_RECORD_HEADER_BYTES + (size_t)kl + 1 + (size_t)vl + 1;
    if (vl == 0) continue;
    if (kind == KIND_PATH && kl > 0 && key[0] == '/') {
      size_t i = after_slash(key, kl), j = tail_start(key, i);
      if (!is_name(key + i, kl - i)) continue; /* a directory-like key cannot match a normalised path */
      table_insert(&g_map.paths, key, kl, value);
      prefilter_add(&g_map.leaves, key + i, kl - i);
      if (j != i) prefilter_add(&g_map.tails, key + j, kl - j);
      narrow_prefix(&g_map.prefix, &g_map.prefix_len, &have_prefix, key, kl);
      loaded++;
    } else if (kind == KIND_DLOPEN_BASENAME && kl > 0 && memchr(key, '/', kl) == NULL) {
      table_insert(&g_map.basenames, key, kl, value);
      loaded++;
    } else if (kind == KIND_MEMFD && kl > 0 && key[0] == '/') {
      table_insert(&g_map.memfds, key, kl, value);
      narrow_prefix(&g_map.memfd_prefix, &g_map.memfd_prefix_len, &have_memfd_prefix, key, kl);
    }
  }
  /* Read-only from here on: a stray write through a bad pointer faults instead of silently
   * corrupting the mapping. */
  make_read_only(buf, size);
  make_read_only(mem, table_bytes);
  g_map.image = buf;
  g_map.image_size = size;
  g_map.tables = mem;
  g_map.tables_size = table_bytes;
  g_map.active = 1;
  if (g_debug) debug_line("loaded ", utoa(loaded, num), " mappings from ", path, NULL);
}

/* A switch in the settings grammar: see settings.h. */
enum snap_switch snap_setting_switch(const char *name, char *shown, size_t shown_size) {
  static const char *const words[] = {"0", "false", "no", "off", "1", "true", "yes", "on"};
  const char *v = getenv(name);
  shown[0] = '\0';
  if (v == NULL) return SNAP_SWITCH_UNSET;
  while (*v == ' ' || (*v >= '\t' && *v <= '\r')) v++;
  size_t n = strlen(v);
  while (n > 0 && (v[n - 1] == ' ' || (v[n - 1] >= '\t' && v[n - 1] <= '\r'))) n--;
  if (n == 0) return SNAP_SWITCH_UNSET;
  for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
    size_t i = 0;
    while (i < n && words[w][i] != '\0' && (v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]) == words[w][i]) i++;
    if (i == n && words[w][i] == '\0') return w >= 4 ? SNAP_SWITCH_ON : SNAP_SWITCH_OFF;
  }
  size_t k = 0;
  for (; k < n && k + 1 < shown_size; k++) shown[k] = (unsigned char)v[k] < 0x20 || v[k] == 0x7f ? ' ' : v[k];
  shown[k] = '\0';
  return SNAP_SWITCH_OTHER;
}

static void init(void) {
  real.open = (open_fn)dlsym(RTLD_NEXT, "open");
  real.open64 = (open_fn)dlsym(RTLD_NEXT, "open64");
  real.openat = (openat_fn)dlsym(RTLD_NEXT, "openat");
  real.openat64 = (openat_fn)dlsym(RTLD_NEXT, "openat64");
  real.open_2 = (open2_fn)dlsym(RTLD_NEXT, "__open_2");
  real.open64_2 = (open2_fn)dlsym(RTLD_NEXT, "__open64_2");
  real.openat_2 = (openat2_fn)dlsym(RTLD_NEXT, "__openat_2");
  real.openat64_2 = (openat2_fn)dlsym(RTLD_NEXT, "__openat64_2");
  real.fopen = (fopen_fn)dlsym(RTLD_NEXT, "fopen");
  real.fopen64 = (fopen_fn)dlsym(RTLD_NEXT, "fopen64");
  real.freopen = (freopen_fn)dlsym(RTLD_NEXT, "freopen");
  real.freopen64 = (freopen_fn)dlsym(RTLD_NEXT, "freopen64");
  real.dlopen = (dlopen_fn)dlsym(RTLD_NEXT, "dlopen");
  real.spawn_addopen = (addopen_fn)dlsym(RTLD_NEXT, "posix_spawn_file_actions_addopen");
  char shown[64];
  enum snap_switch debug = snap_setting_switch("SNAPLOADER_DEBUG", shown, sizeof shown);
  g_debug = debug == SNAP_SWITCH_ON || debug == SNAP_SWITCH_OTHER; /* a debug switch never stops anything */
  g_log_min = snap_log_min_level(getenv("AWS_LAMBDA_LOG_FORMAT"), getenv("AWS_LAMBDA_LOG_LEVEL"));
  if (shown[0] != '\0') {
    log_parts(SNAP_WARN, "snaploader-preload: warning: ", "SNAPLOADER_DEBUG=\"", shown,
              "\" is not one of 1, true, yes, on, 0, false, no, off: taken as on", NULL, NULL);
  }
  const char *path = getenv("SNAPLOADER_MAP");
  if (path != NULL && path[0] != '\0') load_map(path);
  __atomic_store_n(&g_ready, g_map.active ? READY_MAP : READY_PASS, __ATOMIC_RELEASE);
}

/* A call made before init() finished: runs it, or waits for the thread that does. */
static __attribute__((noinline, cold)) int init_once(void) {
  int saved = errno;
  t_busy = 1;
  pthread_once(&g_once, init);
  t_busy = 0;
  errno = saved;
  return __atomic_load_n(&g_ready, __ATOMIC_ACQUIRE);
}

/* READY_MAP when the calling hook is to look its path up, READY_PASS when there is nothing
 * to look up, and 0 when it must pass straight through because it was entered from inside
 * our own code on this thread (real.* may still be NULL then). */
static inline __attribute__((always_inline)) int hook_state(void) {
  if (t_busy) return 0;
  int ready = __atomic_load_n(&g_ready, __ATOMIC_ACQUIRE);
  if (__builtin_expect(ready == READY_MAP, 1)) return READY_MAP;
  return ready != 0 ? ready : init_once();
}

/* ------------------------------------------------------------------------------------------
 * Path lookup. */

/* Textual normalisation of the absolute path src[0..len) into dst (dst == src allowed: the
 * output never overtakes the input): '//' collapsed, '.' dropped, '..' removes the previous
 * component (never above '/'). Symlinks are not consulted. Returns the new length. */
static size_t normalise(char *dst, const char *src, size_t len) {
  size_t o = 0, i = 0;
  while (i < len) {
    while (i < len && src[i] == '/') i++;
    size_t s = i;
    while (i < len && src[i] != '/') i++;
    size_t n = i - s;
    if (n == 0 || (n == 1 && src[s] == '.')) continue;
    if (n == 2 && src[s] == '.' && src[s + 1] == '.') {
      while (o > 0 && dst[o - 1] != '/') o--;
      if (o > 0) o--;
      continue;
    }
    dst[o++] = '/';
    memmove(dst + o, src + s, n);
    o += n;
  }
  if (o == 0) dst[o++] = '/';
  dst[o] = '\0';
  return o;
}

/* See path.h. */
size_t snap_absolute_path(char buf[PATH_MAX], const char *path, size_t len) {
  if (path[0] == '/') return normalise(buf, path, len);
  int saved = errno;
  t_busy = 1; /* glibc's getcwd falls back to opendir/malloc for very deep directories */
  const char *cwd = getcwd(buf, PATH_MAX);
  t_busy = 0;
  errno = saved;
  if (cwd == NULL || buf[0] != '/') return 0; /* glibc < 2.27 may return "(unreachable)/..." */
  size_t cl = strlen(buf);
  if (cl + 1 + len >= PATH_MAX) return 0;
  buf[cl] = '/';
  memcpy(buf + cl + 1, path, len);
  return normalise(buf, buf, cl + 1 + len);
}

/* The slow half of lookup_path, for the few paths the pre-filter lets through: make the
 * path absolute, normalise it, check the common prefix, look it up. */
static __attribute__((noinline)) const char *lookup_slow(const char *path, size_t len) {
  char buf[PATH_MAX];
  size_t n = snap_absolute_path(buf, path, len);
  if (n == 0 || n < g_map.prefix_len || memcmp(buf, g_map.prefix, g_map.prefix_len) != 0) return NULL;
  return table_find(&g_map.paths, buf, n);
}

/* The tree path for `path`, or NULL. `cwd_relative`: a relative path is taken against
 * getcwd() (open, fopen, openat(AT_FDCWD), dlopen with a slash); otherwise only absolute
 * paths are looked up (openat with a real directory fd). Leaves errno alone.
 *
 * The pre-filter (see tail_start) inline, cheapest checks first: a path that normalises to a
 * key and whose last two components are plain names has the key's leaf, so a leaf length
 * that no key has settles it after a single scan, before the parent is even looked for. */
static inline __attribute__((always_inline)) const char *lookup_path(const char *path, int cwd_relative) {
  if (path[0] != '/' && !cwd_relative) return NULL;
  size_t len = strlen(path);
  if (len >= PATH_MAX) return NULL; /* the kernel will say ENAMETOOLONG */
  size_t i = after_slash(path, len), leaf = len - i;
  if (!has_length(&g_map.leaves, leaf) || !is_name(path + i, leaf)) return NULL;
  const struct prefilter *f = &g_map.leaves;
  size_t start = tail_start(path, i);
  if (start != i) {
    f = &g_map.tails;
    if (!has_length(f, len - start)) return NULL;
  }
  if (!has_hash(f, path + start, len - start)) return NULL;
  return lookup_slow(path, len);
}

/* The kind-2 tree path for a bare name (no slash), or NULL. */
static const char *lookup_basename(const char *name) {
  size_t len = strnlen(name, PATH_MAX);
  if (len >= PATH_MAX || memchr(name, '/', len) != NULL) return NULL;
  return table_find(&g_map.basenames, name, len);
}

/* A hit, out of line: the debug line, if asked for. A file that really exists at the original
 * path is the function's own (its own node_modules, its own modules beside the handler) and
 * wins over the archive's copy, as the function's code comes before it on every search path. */
static __attribute__((noinline)) const char *redirected(const char *fn, const char *path, const char *to) {
  struct stat st;
  int saved_errno = errno;
  long own = syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0);
  errno = saved_errno;
  if (own == 0) return path;
  if (g_debug) {
    int saved = errno;
    log_redirect(fn, path, to);
    errno = saved;
  }
  return to;
}

/* What a path-taking hook opens: the tree path when mapped, else the caller's path. Only
 * called in state READY_MAP. */
static inline __attribute__((always_inline)) const char *redirect(const char *fn, const char *path,
                                                                  int cwd_relative) {
  if (path == NULL) return path;
  const char *to = lookup_path(path, cwd_relative);
  if (__builtin_expect(to != NULL, 0)) return redirected(fn, path, to);
  return path;
}

/* 1 if the absolute `path` names a tree link into a memfd (a kind-3 key, compared after
 * textual normalisation), 0 otherwise: no mapping, no memfds, a relative path, or a call from
 * inside our own code. Leaves errno alone. */
int snap_is_memfd_link(const char *path) {
  if (path == NULL || path[0] != '/' || hook_state() != READY_MAP || g_map.memfds.slots == NULL) return 0;
  size_t len = strlen(path);
  if (len >= PATH_MAX) return 0;
  /* Cheap miss: the keys share a prefix (the tree), and normalising never lengthens a path. */
  size_t p = g_map.memfd_prefix_len < len ? g_map.memfd_prefix_len : len;
  size_t same = 0;
  while (same < p && path[same] == g_map.memfd_prefix[same]) same++;
  if (same < p && memmem(path, len, "/.", 2) == NULL && memmem(path, len, "//", 2) == NULL) return 0;
  char buf[PATH_MAX];
  size_t n = normalise(buf, path, len);
  if (n < g_map.memfd_prefix_len || memcmp(buf, g_map.memfd_prefix, g_map.memfd_prefix_len) != 0) return 0;
  return table_find(&g_map.memfds, buf, n) != NULL;
}

#ifndef SNAPLOADER_FUZZ /* the fuzz targets call the loader and the lookups, not the hooks */

/* ------------------------------------------------------------------------------------------
 * Fallbacks for a nested call made before the real functions are known. */

static int raw_openat(int dirfd, const char *path, int flags, mode_t mode) {
  return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

static FILE *raw_fopen(const char *path, const char *mode) {
  int flags;
  switch (mode[0]) {
    case 'r': flags = O_RDONLY; break;
    case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
    default: errno = EINVAL; return NULL;
  }
  for (const char *m = mode + 1; *m != '\0' && *m != ','; m++) {
    if (*m == '+') flags = (flags & ~(O_RDONLY | O_WRONLY)) | O_RDWR;
    else if (*m == 'e') flags |= O_CLOEXEC;
    else if (*m == 'x') flags |= O_EXCL;
  }
  int fd = raw_openat(AT_FDCWD, path, flags, 0666);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, mode);
  if (f == NULL) {
    int e = errno;
    close(fd);
    errno = e;
  }
  return f;
}

/* ------------------------------------------------------------------------------------------
 * The hooks. */

static mode_t mode_arg(int flags, va_list ap) {
  /* mode_t is promoted to int through "..." (glibc reads it the same way). */
  return NEEDS_MODE(flags) ? (mode_t)va_arg(ap, int) : 0;
}

static int do_open(const char *fn, open_fn *slot, const char *path, int flags, mode_t mode) {
  int map = hook_state() == READY_MAP;
  if (map) path = redirect(fn, path, 1);
  open_fn fp = *slot; /* read after init: the first call is what resolves it */
  int fd = fp != NULL ? fp(path, flags, mode) : raw_openat(AT_FDCWD, path, flags, mode);
  if (map && fd >= 0 && snap_tracing()) snap_trace_path(path);
  return fd;
}

/* openat: a relative path is redirected only when it is relative to the cwd. */
static int do_openat(const char *fn, openat_fn *slot, int dirfd, const char *path, int flags, mode_t mode) {
  int map = hook_state() == READY_MAP;
  if (map) path = redirect(fn, path, dirfd == AT_FDCWD);
  openat_fn fp = *slot;
  int fd = fp != NULL ? fp(dirfd, path, flags, mode) : raw_openat(dirfd, path, flags, mode);
  if (map && fd >= 0 && path != NULL && (dirfd == AT_FDCWD || path[0] == '/') && snap_tracing()) snap_trace_path(path);
  return fd;
}

EXPORT int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_open("open", &real.open, launder(path), flags, mode);
}

EXPORT int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_open("open64", &real.open64, launder(path), flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat("openat", &real.openat, dirfd, launder(path), flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat("openat64", &real.openat64, dirfd, launder(path), flags, mode);
}

/* The FORTIFY variants take no mode (glibc aborts if O_CREAT/O_TMPFILE is given); the real
 * ones keep that check, so they are called, not open(). */
static int do_open_2(const char *fn, open2_fn *slot, const char *path, int flags) {
  int map = hook_state() == READY_MAP;
  if (map) path = redirect(fn, path, 1);
  open2_fn fp = *slot;
  int fd = fp != NULL ? fp(path, flags) : raw_openat(AT_FDCWD, path, flags, 0);
  if (map && fd >= 0 && snap_tracing()) snap_trace_path(path);
  return fd;
}

static int do_openat_2(const char *fn, openat2_fn *slot, int dirfd, const char *path, int flags) {
  int map = hook_state() == READY_MAP;
  if (map) path = redirect(fn, path, dirfd == AT_FDCWD);
  openat2_fn fp = *slot;
  int fd = fp != NULL ? fp(dirfd, path, flags) : raw_openat(dirfd, path, flags, 0);
  if (map && fd >= 0 && path != NULL && (dirfd == AT_FDCWD || path[0] == '/') && snap_tracing()) snap_trace_path(path);
  return fd;
}

EXPORT int __open_2(const char *path, int flags) {
  return do_open_2("__open_2", &real.open_2, launder(path), flags);
}

EXPORT int __open64_2(const char *path, int flags) {
  return do_open_2("__open64_2", &real.open64_2, launder(path), flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags) {
  return do_openat_2("__openat_2", &real.openat_2, dirfd, launder(path), flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags) {
  return do_openat_2("__openat64_2", &real.openat64_2, dirfd, launder(path), flags);
}

static FILE *do_fopen(const char *fn, fopen_fn *slot, const char *path, const char *mode) {
  int map = hook_state() == READY_MAP;
  if (map) path = redirect(fn, path, 1);
  fopen_fn fp = *slot;
  FILE *f = fp != NULL ? fp(path, mode) : path != NULL && mode != NULL ? raw_fopen(path, mode) : (errno = EINVAL, NULL);
  if (map && f != NULL && snap_tracing()) snap_trace_path(path);
  return f;
}

EXPORT FILE *fopen(const char *restrict path, const char *restrict mode) {
  return do_fopen("fopen", &real.fopen, launder(path), mode);
}

EXPORT FILE *fopen64(const char *restrict path, const char *restrict mode) {
  return do_fopen("fopen64", &real.fopen64, launder(path), mode);
}

/* freopen(NULL, mode, f) changes the mode of f's own file: NULL passes through. */
static FILE *do_freopen(const char *fn, freopen_fn *slot, const char *path, const char *mode, FILE *f) {
  int map = hook_state() == READY_MAP;
  if (map) path = redirect(fn, path, 1);
  freopen_fn fp = *slot;
  if (fp != NULL) {
    FILE *r = fp(path, mode, f);
    if (map && r != NULL && snap_tracing()) snap_trace_path(path);
    return r;
  }
  errno = ENOSYS; /* only a nested call during init can get here */
  return NULL;
}

EXPORT FILE *freopen(const char *restrict path, const char *restrict mode, FILE *restrict f) {
  return do_freopen("freopen", &real.freopen, launder(path), mode, f);
}

EXPORT FILE *freopen64(const char *restrict path, const char *restrict mode, FILE *restrict f) {
  return do_freopen("freopen64", &real.freopen64, launder(path), mode, f);
}

/* Tries the tree copy of a bare name after the loader's own search failed. */
static void *dlopen_fallback(const char *name, const char *alt, int flags) {
  void *h = real.dlopen(name, flags);
  if (h != NULL) return h;
  h = real.dlopen(alt, flags);
  if (h != NULL) {
    dlerror(); /* drop the first attempt's error: the load succeeded */
    if (g_debug) log_redirect("dlopen", name, alt);
    return h;
  }
  /* Both failed: fail again on the original name so dlerror() describes what was asked. */
  return real.dlopen(name, flags);
}

/* dlopen: NULL and unmapped names reach the real dlopen by a tail call (see TAIL_CALL). A
 * name with a slash is an exact path lookup. A bare name keeps the loader's search (library
 * path, RUNPATH, ld.so.cache); only if that fails is the DLOPEN_BASENAME record tried. */
EXPORT void *dlopen(const char *name, int flags) {
  int state = hook_state();
  if (state == 0) {
    if (real.dlopen == NULL) return NULL; /* nested call during init, before dlsym finished */
  } else if (state == READY_MAP && name != NULL) {
    /* What earlier loads pulled in (dependencies, bare names found on the search path). */
    int tracing = snap_tracing();
    if (tracing) snap_trace_loaded();
    if (strchr(name, '/') != NULL) {
      const char *to = redirect("dlopen", name, 1);
      /* A tree path loaded as it is: recorded before the tail call (which must stay one), as
       * an attempt; a library loaded and closed again within one call is seen only here. */
      if (tracing && to == name) snap_trace_path(name);
      if (to != name) {
        void *h = real.dlopen(to, flags);
        if (h != NULL && snap_tracing()) snap_trace_loaded();
        return h;
      }
    } else {
      const char *alt = lookup_basename(name);
      if (alt != NULL) return dlopen_fallback(name, alt, flags);
    }
  }
  TAIL_CALL return real.dlopen(name, flags);
}

/* posix_spawn's file actions are opened by glibc in the child with internal calls, which no
 * hook sees; the path is recorded (copied) here, so this is where it is redirected. Only an
 * absolute path: a relative one is opened against the cwd the child has then, which an
 * earlier addchdir action may change. */
EXPORT int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *restrict actions, int fd,
                                            const char *restrict path, int flags, mode_t mode) {
  path = launder(path);
  if (hook_state() == READY_MAP) path = redirect("posix_spawn_file_actions_addopen", path, 0);
  addopen_fn fp = real.spawn_addopen;
  if (fp == NULL) return ENOSYS; /* only a nested call during init can get here */
  return fp(actions, fd, path, flags, mode);
}

/* ------------------------------------------------------------------------------------------
 * The stat family: code that checks that a file exists before it opens it must find the
 * original path there (Java's System.load and File.exists call stat first; JavaCPP and many
 * loaders look before they load). stat, stat64, glibc's older __xstat/__xstat64 (what programs
 * built against glibc < 2.33 call) and access of a mapped path look at the tree path instead,
 * following its symlinks as the open would. lstat, directory listings and the *at variants
 * with a directory fd are not redirected. The real functions are resolved at the first call;
 * where the running glibc has no such symbol (stat before 2.33) the kernel is asked directly:
 * on x86_64 and arm64 its struct stat is glibc's. */

typedef int (*stat_fn)(const char *, struct stat *);
typedef int (*xstat_fn)(int, const char *, struct stat *);
typedef int (*access_fn)(const char *, int);

static struct {
  void *stat, *stat64, *xstat, *xstat64, *access;
} real_stat;

/* The next definition of `name`: the default version, else the first one of the
 * architecture (glibc 2.33+ keeps __xstat only under that version). NULL if there is none. */
static void *next_symbol(void **slot, const char *name) {
  void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (p != NULL) return p == (void *)slot ? NULL : p;
  int saved = errno;
  t_busy = 1; /* dlsym may allocate, and an allocator may stat */
  p = dlsym(RTLD_NEXT, name);
#if defined(__x86_64__)
  if (p == NULL) p = dlvsym(RTLD_NEXT, name, "GLIBC_2.2.5");
#elif defined(__aarch64__)
  if (p == NULL) p = dlvsym(RTLD_NEXT, name, "GLIBC_2.17");
#endif
  t_busy = 0;
  errno = saved;
  __atomic_store_n(slot, p != NULL ? p : (void *)slot, __ATOMIC_RELEASE); /* the slot itself marks "none" */
  return p;
}

static int kernel_stat(const char *path, struct stat *buf) {
  return (int)syscall(SYS_newfstatat, AT_FDCWD, path, buf, 0);
}

static int do_stat(const char *fn, void **slot, const char *path, struct stat *buf) {
  int state = hook_state();
  if (state == READY_MAP) path = redirect(fn, path, 1);
  stat_fn fp = state != 0 || *slot != NULL ? (stat_fn)next_symbol(slot, fn) : NULL;
  return fp != NULL ? fp(path, buf) : kernel_stat(path, buf);
}

static int do_xstat(const char *fn, void **slot, int ver, const char *path, struct stat *buf) {
  int state = hook_state();
  if (state == READY_MAP) path = redirect(fn, path, 1);
  xstat_fn fp = state != 0 || *slot != NULL ? (xstat_fn)next_symbol(slot, fn) : NULL;
  return fp != NULL ? fp(ver, path, buf) : kernel_stat(path, buf);
}

EXPORT int stat(const char *restrict path, struct stat *restrict buf) {
  return do_stat("stat", &real_stat.stat, launder(path), buf);
}

EXPORT int stat64(const char *restrict path, struct stat64 *restrict buf) {
  return do_stat("stat64", &real_stat.stat64, launder(path), (struct stat *)buf);
}

EXPORT int __xstat(int ver, const char *path, struct stat *buf) {
  return do_xstat("__xstat", &real_stat.xstat, ver, launder(path), buf);
}

EXPORT int __xstat64(int ver, const char *path, struct stat64 *buf) {
  return do_xstat("__xstat64", &real_stat.xstat64, ver, launder(path), (struct stat *)buf);
}

EXPORT int access(const char *path, int mode) {
  path = launder(path);
  int state = hook_state();
  if (state == READY_MAP) path = redirect("access", path, 1);
  access_fn fp = state != 0 || real_stat.access != NULL ? (access_fn)next_symbol(&real_stat.access, "access") : NULL;
  return fp != NULL ? fp(path, mode) : (int)syscall(SYS_faccessat, AT_FDCWD, path, mode);
}

#endif /* SNAPLOADER_FUZZ */
