/*
 * snaploader_native: the init program's data plane, as a Node-API addon.
 *
 * Each call queues one job on libuv's threadpool and returns a promise, so the main thread
 * only hands over buffers and every core inflates, checksums and writes:
 *
 *   writeEntry(fd, parts, method, size)  a whole entry: gather the compressed parts, inflate
 *                                        (libdeflate) or copy, CRC-32, pwrite at offset 0,
 *                                        close fd (always, also on failure)
 *   writeFiles([[path, mode, method, size, parts], ...])
 *                                        a batch of small files: each created (O_EXCL,
 *                                        O_NOFOLLOW), written as writeEntry does, closed
 *   makeDirs([path, ...], mode)          directories made in order, stopping at the first
 *                                        that fails -> [its index or -1, errno]
 *   crc32(buffer, crc)                   synchronous, for small things on the main thread
 *
 * and, for an entry too big to hold in memory, a stream on a thread of its own:
 *
 *   streamOpen(fd, method, size, compressedSize, onEvent)
 *                                        -> handle; its thread inflates (method 8) or copies
 *                                           (method 0) into fd's first `size` bytes
 *   streamFeed(handle, buffer) -> boolean          copies the next compressed bytes in;
 *                                                  false: wait for a drain event
 *   streamAbort(handle)                            stops it (the done event still comes)
 *
 * Output goes to the file with pwrite from a window of memory that is reused (output.c), never
 * through a mapping of the file: memory written once through a fresh mapping is faulted in page
 * by page, which cost the kernel about as much CPU as inflating. A stored stream's thread
 * checksums and writes whatever has arrived; an inflating one waits at each deflate block for
 * its input (libdeflate_set_block_hook, our addition in
 * src/native/libdeflate.patch) and recycles the input pages it has consumed to where the input
 * will arrive later (mremap), so memory stays at a few MiB whatever the entry's size, and is
 * faulted in once. onEvent(0) is a drain; onEvent(1, result) the end. Memory a job holds only
 * while it runs (a gathered entry, a stream's input and window) comes from and goes back to
 * the bank (bank.c), so one job's pages, already faulted in, serve the next.
 *
 * The write jobs resolve (never reject) with [status, errno, crc32, bytesWritten]; src/native.ts
 * names the status and the caller turns it into its own typed error, with the entry's name.
 * The input buffers are held by a reference until the job is complete.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <node_api.h>

#include "libdeflate.h" /* libdeflate with src/native/libdeflate.patch, laid out by build.mjs */
#include "bank.h"
#include "output.h"

enum status {
  ST_OK = 0,
  ST_CORRUPT = 1,   /* the deflate data is invalid */
  ST_TOO_LARGE = 2, /* it inflates past the declared size */
  ST_WRITE = 3,     /* pwrite failed: errno */
  ST_CLOSE = 4,     /* close failed: errno */
  ST_NOMEM = 5,     /* no memory for the output or the gathered input */
  ST_BLOCK = 6,     /* a deflate block spans more compressed bytes than LOOKAHEAD */
  ST_ABORTED = 7,   /* streamAbort */
  ST_MAP = 8,       /* a buffer could not be mapped: errno */
  ST_OPEN = 9,      /* the file could not be created: errno */
};

#define MAX_PARTS 4096
/* A thread keeps its gather buffer (for an entry's compressed bytes that arrived in several
 * pieces) up to this size; a bigger one is made of the bank's chunks for the job (bank.h). */
#define GATHER_KEEP (256 * 1024)

/* One file's work in a job. */
struct item {
  const char *path; /* writeFiles: the file to create (NUL-terminated); NULL when fd is given */
  int mode;
  int fd;
  int method;
  uint64_t size;
  uint32_t crc;
  size_t nparts;
  struct iovec *parts;
  /* results */
  int status;
  int err;
  uint64_t written;
};

/* One threadpool job: one entry (writeEntry) or a batch of files (writeFiles). */
struct job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  int batch;
  char *paths; /* writeFiles: the items' path block (path_block) */
  size_t n;
  struct item items[];
};

static _Thread_local struct libdeflate_decompressor *tls_decompressor;
static _Thread_local unsigned char *tls_gather;
static _Thread_local size_t tls_gather_cap;

/*
 * The entry's compressed bytes in one piece: the single part itself, or the parts copied into
 * the thread's gather buffer (kept and reused up to GATHER_KEEP), or into a buffer of their own
 * from the bank (*own, for the caller to give back with bank_unmap). NULL without memory.
 */
static const unsigned char *gather(const struct iovec *parts, size_t n, size_t len, unsigned char **own) {
  *own = NULL;
  if (n == 1) return parts[0].iov_base;
  unsigned char *to;
  if (len <= GATHER_KEEP) {
    if (tls_gather_cap < len) {
      void *p = mmap(NULL, GATHER_KEEP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return NULL;
      tls_gather = p;
      tls_gather_cap = GATHER_KEEP;
    }
    to = tls_gather;
  } else {
    void *p = bank_map(len, len);
    if (p == MAP_FAILED) return NULL;
    to = *own = p;
  }
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(to + at, parts[i].iov_base, parts[i].iov_len);
    at += parts[i].iov_len;
  }
  return to;
}

static uint32_t crc_parts(uint32_t crc, const struct iovec *iov, size_t n) {
  for (size_t i = 0; i < n; i++) crc = libdeflate_crc32(crc, iov[i].iov_base, iov[i].iov_len);
  return crc;
}

static uint64_t total_len(const struct iovec *iov, size_t n) {
  uint64_t t = 0;
  for (size_t i = 0; i < n; i++) t += iov[i].iov_len;
  return t;
}

/* How a sink_inflate ended, as a job's status (ST_WRITE with its errno in *err). */
static int sink_status(const struct sink *s, enum libdeflate_result r, int *err) {
  if (s->err) {
    *err = s->err;
    return ST_WRITE;
  }
  if (s->too_large || r == LIBDEFLATE_INSUFFICIENT_SPACE) return ST_TOO_LARGE;
  return r == LIBDEFLATE_SUCCESS ? ST_OK : ST_CORRUPT;
}

/* Inflates the whole entry through the thread's window into fd, from offset 0. */
static void run_inflate(struct item *j) {
  unsigned char *window = thread_window();
  if (!window || (!tls_decompressor && !(tls_decompressor = libdeflate_alloc_decompressor()))) {
    j->status = ST_NOMEM;
    return;
  }
  size_t in_len = (size_t)total_len(j->parts, j->nparts);
  unsigned char *own = NULL;
  const unsigned char *in = gather(j->parts, j->nparts, in_len, &own);
  if (!in) {
    j->status = ST_NOMEM;
    return;
  }
  struct sink s;
  sink_init(&s, j->fd, j->size, window);
  enum libdeflate_result r = sink_inflate(&s, tls_decompressor, in, in_len, NULL);
  if (own) bank_unmap(own, in_len);
  if ((j->status = sink_status(&s, r, &j->err)) == ST_OK) {
    j->crc = s.crc;
    j->written = s.done;
  }
}

/* A whole entry: inflated or copied into fd from offset 0, then fd closed (also on failure). */
static void run_item(struct item *j) {
  if (j->method == 8) {
    run_inflate(j);
  } else {
    /* Stored bytes: CRC and write as they are. */
    uint64_t len = total_len(j->parts, j->nparts);
    if (len > j->size) {
      j->status = ST_TOO_LARGE;
    } else {
      j->crc = crc_parts(0, j->parts, j->nparts);
      if ((j->err = write_all(j->fd, j->parts, j->nparts, 0)) != 0) j->status = ST_WRITE;
      else j->written = len;
    }
  }
  if (close(j->fd) != 0 && j->status == ST_OK) {
    j->status = ST_CLOSE;
    j->err = errno;
  }
}

static void execute(napi_env env, void *data) {
  (void)env;
  struct job *job = data;
  for (size_t i = 0; i < job->n; i++) {
    struct item *j = &job->items[i];
    if (j->path && (j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)j->mode)) < 0) {
      j->status = ST_OPEN;
      j->err = errno;
      continue;
    }
    run_item(j);
  }
}

/* What every job and stream ends with, for JS: [status, errno, crc32, bytesWritten]. */
static napi_value result_array(napi_env env, int status, int err, uint32_t crc, uint64_t written) {
  napi_value result, v;
  napi_create_array_with_length(env, 4, &result);
  napi_create_int32(env, status, &v);
  napi_set_element(env, result, 0, v);
  napi_create_int32(env, err, &v);
  napi_set_element(env, result, 1, v);
  napi_create_uint32(env, crc, &v);
  napi_set_element(env, result, 2, v);
  napi_create_double(env, (double)written, &v);
  napi_set_element(env, result, 3, v);
  return result;
}

static void free_job(struct job *job) {
  for (size_t i = 0; i < job->n; i++) free(job->items[i].parts);
  free(job->paths);
  free(job);
}

/* Resolves with one result array, or for writeFiles an array of them, one per file. */
static void complete(napi_env env, napi_status st, void *data) {
  struct job *job = data;
  napi_value out;
  if (job->batch) napi_create_array_with_length(env, job->n, &out);
  for (size_t i = 0; i < job->n; i++) {
    struct item *j = &job->items[i];
    if (st == napi_cancelled) {
      j->status = ST_WRITE;
      j->err = ECANCELED;
    }
    napi_value r = result_array(env, j->status, j->err, j->crc, j->written);
    if (!job->batch) out = r;
    else napi_set_element(env, out, (uint32_t)i, r);
  }
  napi_resolve_deferred(env, job->deferred, out);
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free_job(job);
}

static struct job *new_job(size_t n) {
  struct job *job = calloc(1, sizeof *job + n * sizeof(struct item));
  if (job) job->n = n;
  return job;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Element i of the array `arr`, which must be a Buffer: its bytes. 0 if it is not one. */
static int buffer_at(napi_env env, napi_value arr, uint32_t i, void **p, size_t *len) {
  napi_value el;
  bool is_buffer = false;
  return napi_get_element(env, arr, i, &el) == napi_ok && napi_is_buffer(env, el, &is_buffer) == napi_ok && is_buffer &&
         napi_get_buffer_info(env, el, p, len) == napi_ok;
}

/* Reads the array of Buffers `arr` into j->parts (the caller keeps the array alive). */
static int take_parts(napi_env env, napi_value arr, struct item *j) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) return 0;
  napi_get_array_length(env, arr, &n);
  if (n == 0 || n > MAX_PARTS) return 0;
  if (!(j->parts = calloc(n, sizeof(struct iovec)))) return 0;
  j->nparts = n;
  for (uint32_t i = 0; i < n; i++) {
    void *p = NULL;
    size_t len = 0;
    if (!buffer_at(env, arr, i, &p, &len)) return 0;
    j->parts[i].iov_base = p;
    j->parts[i].iov_len = len;
  }
  return 1;
}

static napi_value queue(napi_env env, struct job *j) {
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "snaploader.write", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

/* A whole entry's method, size and parts from argv[0..2]. */
static int take_whole(napi_env env, napi_value *argv, struct item *j) {
  int64_t size = -1;
  if (napi_get_value_int32(env, argv[0], &j->method) != napi_ok || (j->method != 0 && j->method != 8) ||
      napi_get_value_int64(env, argv[1], &size) != napi_ok || size < 0 || !take_parts(env, argv[2], j)) {
    return 0;
  }
  j->size = (uint64_t)size;
  return 1;
}

/* writeEntry(fd, parts, method, size) */
static napi_value write_entry(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *job = new_job(1);
  if (!job) return throw_type(env, "out of memory");
  struct item *j = &job->items[0];
  napi_value whole[3] = {argc == 4 ? argv[2] : NULL, argc == 4 ? argv[3] : NULL, argc == 4 ? argv[1] : NULL};
  if (argc != 4 || napi_get_value_int32(env, argv[0], &j->fd) != napi_ok || !take_whole(env, whole, j) ||
      napi_create_reference(env, argv[1], 1, &job->keep) != napi_ok) {
    free_job(job);
    return throw_type(env, "writeEntry(fd, buffers, method 0|8, size)");
  }
  return queue(env, job);
}

/*
 * Paths for a job, copied out of their Buffers into one block, each followed by its NUL: the
 * job owns them, and its caller may reuse the Buffers as soon as it is queued.
 */
struct path_block {
  char *buf;
  size_t len, cap;
};

/* Appends the path in Buffer `v` (no NUL in it, shorter than PATH_MAX): 1, or 0 if it is not
 * such a Buffer, or -1 if memory runs out. */
static int path_append(napi_env env, napi_value v, struct path_block *b) {
  bool is_buffer = false;
  void *p = NULL;
  size_t len = 0;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, v, &p, &len) != napi_ok ||
      len == 0 || len >= PATH_MAX || memchr(p, 0, len)) {
    return 0;
  }
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len + 1) cap *= 2;
    char *grown = realloc(b->buf, cap);
    if (!grown) return -1;
    b->buf = grown;
    b->cap = cap;
  }
  memcpy(b->buf + b->len, p, len);
  b->buf[b->len + len] = '\0';
  b->len += len + 1;
  return 1;
}

/* The path after `path` in its block. */
static const char *next_path(const char *path) {
  return path + strlen(path) + 1;
}

/*
 * writeFiles([[path, mode, method, size, parts], ...]): creates each file (path a Buffer, no
 * NUL in it, copied into the job's path block; O_EXCL|O_NOFOLLOW, so nothing is written
 * through a link or over a file), writes its whole entry and closes it, all in one threadpool
 * job: thousands of small files cost a few handoffs between threads rather than two each.
 */
static napi_value write_files(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_array = false;
  uint32_t n = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok ||
      n == 0 || n > MAX_PARTS) {
    return throw_type(env, "writeFiles([[path, mode, method, size, buffers], ...])");
  }
  struct job *job = new_job(n);
  if (!job) return throw_type(env, "out of memory");
  job->batch = 1;
  struct path_block paths = {0};
  for (uint32_t i = 0; i < n; i++) {
    struct item *j = &job->items[i];
    napi_value spec, f[5];
    int ok = napi_get_element(env, argv[0], i, &spec) == napi_ok;
    for (uint32_t k = 0; ok && k < 5; k++) ok = napi_get_element(env, spec, k, &f[k]) == napi_ok;
    int appended = ok ? path_append(env, f[0], &paths) : 0;
    if (appended <= 0 || napi_get_value_int32(env, f[1], &j->mode) != napi_ok || !take_whole(env, &f[2], j)) {
      free(paths.buf);
      free_job(job);
      return throw_type(env, appended < 0 ? "out of memory" : "writeFiles([[path, mode, method, size, buffers], ...])");
    }
    j->fd = -1;
  }
  job->paths = paths.buf;
  if (napi_create_reference(env, argv[0], 1, &job->keep) != napi_ok) {
    free_job(job);
    return throw_type(env, "out of memory");
  }
  const char *path = job->paths;
  for (uint32_t i = 0; i < n; i++, path = next_path(path)) job->items[i].path = path;
  return queue(env, job);
}

/* A makeDirs job: its paths, made in order. */
struct dirs_job {
  napi_async_work work;
  napi_deferred deferred;
  int mode;
  int failed; /* index of the path that could not be made, or -1 */
  int err;
  uint32_t n;
  char *paths; /* a path_block's */
};

static void dirs_execute(napi_env env, void *data) {
  (void)env;
  struct dirs_job *d = data;
  d->failed = -1;
  const char *path = d->paths;
  for (uint32_t i = 0; i < d->n; i++, path = next_path(path)) {
    if (mkdir(path, (mode_t)d->mode) != 0) {
      d->failed = (int)i;
      d->err = errno;
      return;
    }
  }
}

/* Resolves with [index of the path that failed or -1, its errno]. */
static void dirs_complete(napi_env env, napi_status st, void *data) {
  struct dirs_job *d = data;
  napi_value out, v;
  if (st == napi_cancelled) {
    d->failed = 0;
    d->err = ECANCELED;
  }
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, d->failed, &v);
  napi_set_element(env, out, 0, v);
  napi_create_int32(env, d->err, &v);
  napi_set_element(env, out, 1, v);
  napi_resolve_deferred(env, d->deferred, out);
  napi_delete_async_work(env, d->work);
  free(d->paths);
  free(d);
}

/*
 * makeDirs([path, ...], mode): mkdir of each path (a Buffer, as writeFiles takes them) in the
 * order given, all in one threadpool job, stopping at the first that fails: a tree's hundreds
 * of directories cost the main thread one call, not one callback each.
 */
static napi_value make_dirs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  bool is_array = false;
  uint32_t n = 0;
  int32_t mode = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok ||
      napi_get_value_int32(env, argv[1], &mode) != napi_ok || mode < 0 || mode > 07777) {
    return throw_type(env, "makeDirs([path, ...], mode)");
  }
  struct path_block paths = {0};
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    int appended = napi_get_element(env, argv[0], i, &el) == napi_ok ? path_append(env, el, &paths) : 0;
    if (appended <= 0) {
      free(paths.buf);
      return throw_type(env, appended < 0 ? "out of memory" : "makeDirs([path, ...], mode): each path a Buffer with no NUL in it");
    }
  }
  struct dirs_job *d = calloc(1, sizeof *d);
  if (!d) {
    free(paths.buf);
    return throw_type(env, "out of memory");
  }
  d->n = n;
  d->mode = mode;
  d->paths = paths.buf;
  napi_create_promise(env, &d->deferred, &promise);
  napi_create_string_utf8(env, "snaploader.mkdir", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, dirs_execute, dirs_complete, d, &d->work);
  napi_queue_async_work(env, d->work);
  return promise;
}

/* crc32(buffer, crc) */
static napi_value js_crc32(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  void *p = NULL;
  size_t len = 0;
  uint32_t crc = 0;
  bool is_buffer = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &p, &len) != napi_ok || napi_get_value_uint32(env, argv[1], &crc) != napi_ok) {
    return throw_type(env, "crc32(buffer, crc)");
  }
  napi_create_uint32(env, libdeflate_crc32(crc, p, len), &out);
  return out;
}

/* ---- streams ---------------------------------------------------------------------------- */

/* Compressed bytes a block may need beyond where it starts: the decompressor waits for this
 * much input (or the end) at every block boundary. Real compressors' blocks are well under. */
#define LOOKAHEAD (1024 * 1024)
/* Compressed bytes the feeder may be ahead of the recycled input before it is asked to wait:
 * more than LOOKAHEAD plus a step, so that a block's lookahead always fits. */
#define INPUT_WINDOW (2 * 1024 * 1024)
/* Consumed input is recycled in steps of this many bytes (a multiple of the page size), ... */
#define INPUT_STEP BANK_CHUNK
/* ... moved this far ahead, past where the feeder may be writing (INPUT_WINDOW plus a chunk). */
#define INPUT_RECYCLE (INPUT_WINDOW + 2 * INPUT_STEP)
/* A stored stream's thread copies at least this much at a time (or the rest of the entry). */
#define COPY_BATCH INPUT_STEP
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7; older kernels refuse it, and the step is then given back */
#endif
/* Input the decompressor may still read behind its position (its bit buffer's refills). */
#define INPUT_BEHIND 4096

struct stream {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  napi_threadsafe_function tsfn;
  int fd;
  int method;             /* 8: inflate; 0: stored, copied as it is */
  uint64_t size;
  uint64_t in_size;
  size_t in_map;          /* in_size rounded up to INPUT_STEP: the input mapping's length */
  unsigned char *in;      /* anonymous mapping of in_map bytes */
  /* under mu */
  uint64_t filled;        /* compressed bytes fed */
  uint64_t limit;         /* how far the current block may read: what had arrived, at most LOOKAHEAD on */
  uint64_t released_in;   /* input before this is consumed and recycled (a multiple of INPUT_STEP) */
  uint64_t wanted;        /* the thread waits until this much is fed (0: it is not waiting) */
  int waiting_feeder;     /* streamFeed said false: send a drain when there is room */
  int aborted;
  int finished;
  /* thread only */
  uint32_t crc;
  int status;
  int err;
  uint64_t written;
};

/* To JS: a drain (no data), or the end (the stream itself, whose results are final). Nothing
 * is allocated, so the end cannot be lost. */
enum { EV_DRAIN, EV_DONE };

static void emit(struct stream *st, int kind) {
  napi_call_threadsafe_function(st->tsfn, kind == EV_DONE ? st : NULL, napi_tsfn_blocking);
}

/*
 * Under mu: the consumed input step at `at` is no longer read. Its pages (already faulted in)
 * move INPUT_RECYCLE ahead, where the feeder has not written yet and will write later, so the
 * input is faulted in once per stream rather than once per page of the entry. Near the end
 * they move to the bank instead, for the next job. If the kernel cannot move them (before
 * Linux 5.7), they are simply given back.
 */
static void recycle_input(struct stream *st, uint64_t at) {
  uint64_t to = at + INPUT_RECYCLE;
  /* DONTUNMAP leaves the step mapped (and empty): a hole there could be given to another
   * mapping, which the munmap of the whole input at the end would then take away. */
  if (to >= st->filled && to + INPUT_STEP <= st->in_map) {
    if (mremap(st->in + at, INPUT_STEP, INPUT_STEP, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, st->in + to) != MAP_FAILED) return;
  } else {
    void *moved = mremap(st->in + at, INPUT_STEP, INPUT_STEP, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    if (moved != MAP_FAILED) {
      bank_unmap(moved, INPUT_STEP);
      return;
    }
  }
  madvise(st->in + at, INPUT_STEP, MADV_DONTNEED);
}

/* Under mu: input before `pos` is no longer read; recycle its whole steps. */
static void release_consumed(struct stream *st, uint64_t pos) {
  while (st->released_in + INPUT_STEP <= pos) {
    recycle_input(st, st->released_in);
    st->released_in += INPUT_STEP;
  }
}

/*
 * Under mu, at the end: the input steps that may hold pages (the unconsumed ones, and those
 * recycled ahead of what was fed) go to the bank; the rest of the mapping is unmapped.
 */
static void release_input(struct stream *st) {
  uint64_t fed = st->filled > st->released_in + INPUT_RECYCLE ? st->filled : st->released_in + INPUT_RECYCLE;
  uint64_t end = bank_round((size_t)fed);
  if (end > st->in_map) end = st->in_map;
  if (st->released_in > 0) munmap(st->in, (size_t)st->released_in);
  bank_unmap(st->in + st->released_in, (size_t)(end - st->released_in));
  if (end < st->in_map) munmap(st->in + end, (size_t)(st->in_map - end));
  st->in = NULL;
}

/*
 * Under mu: waits until `need` bytes are fed (or the stream is aborted). The feeder wakes the
 * thread only then, not at every piece: a wake-up per 64 KiB piece cost a context switch
 * each, and on a busy machine the woken thread often preempted the feeder, Node's main thread.
 */
static void wait_for_input(struct stream *st, uint64_t need) {
  while (st->filled < need && !st->aborted) {
    st->wanted = need;
    pthread_cond_wait(&st->cond, &st->mu);
  }
  st->wanted = 0;
}

static int block_hook(void *ctx, const void *in_next, const void *out_next) {
  (void)out_next; /* the output is written by the sink as it goes */
  struct stream *st = ctx;
  uint64_t in_pos = (uint64_t)((const unsigned char *)in_next - st->in);
  pthread_mutex_lock(&st->mu);
  if (in_pos > st->limit) {
    /* The block just done read bytes that had not arrived when it started. */
    st->status = ST_BLOCK;
    pthread_mutex_unlock(&st->mu);
    return 1;
  }
  if (in_pos > INPUT_BEHIND) release_consumed(st, in_pos - INPUT_BEHIND);
  uint64_t need = in_pos + LOOKAHEAD < st->in_size ? in_pos + LOOKAHEAD : st->in_size;
  /* Input is recycled a step at a time, so the feeder may be stopped while this block still
   * lacks its lookahead: then it is woken whatever its window says (the window is larger than
   * LOOKAHEAD plus a step, so it then has room). */
  if (st->waiting_feeder && (st->filled - st->released_in < INPUT_WINDOW / 2 || st->filled < need)) {
    st->waiting_feeder = 0;
    emit(st, EV_DRAIN);
  }
  wait_for_input(st, need);
  /* The next block may read up to LOOKAHEAD, not up to whatever has arrived: a block
   * spanning more is refused whatever the timing, so an archive is accepted or refused
   * the same way on every run. */
  st->limit = st->filled < need ? st->filled : need;
  int stop = st->aborted;
  if (stop) st->status = ST_ABORTED;
  pthread_mutex_unlock(&st->mu);
  return stop;
}

/* A deflated entry, inflated through a window of the stream's own as its input arrives. */
static void inflate_stream(struct stream *st) {
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  void *window = bank_map(OUTPUT_WINDOW, OUTPUT_WINDOW);
  if (!d || window == MAP_FAILED) {
    st->status = ST_NOMEM;
  } else {
    struct sink s;
    sink_init(&s, st->fd, st->size, window);
    libdeflate_set_block_hook(d, block_hook, st);
    size_t actual_in = 0;
    enum libdeflate_result r = sink_inflate(&s, d, st->in, (size_t)st->in_size, &actual_in);
    if (st->status == ST_OK) { /* else the block hook has stopped it, and said why */
      st->status = sink_status(&s, r, &st->err);
      if (st->status == ST_OK && actual_in > st->limit) st->status = ST_BLOCK;
      if (st->status == ST_OK) {
        st->crc = s.crc;
        st->written = s.done;
      }
    }
  }
  if (d) libdeflate_free_decompressor(d);
  if (window != MAP_FAILED) bank_unmap(window, OUTPUT_WINDOW);
}

/* A stored entry: whatever has arrived is checksummed and written, nothing past `size`. */
static void copy_stream(struct stream *st) {
  uint64_t pos = 0;
  uint32_t crc = 0;
  pthread_mutex_lock(&st->mu);
  while (pos < st->in_size && st->status == ST_OK) {
    /* A step at a time (or the rest): fewer wake-ups and fewer, larger writes. The feeder
     * always gets that far: it stops only with INPUT_WINDOW fed past the recycled input. */
    if (st->filled - pos < COPY_BATCH) wait_for_input(st, st->in_size - pos < COPY_BATCH ? st->in_size : pos + COPY_BATCH);
    if (st->aborted) {
      st->status = ST_ABORTED;
      break;
    }
    uint64_t end = st->filled;
    pthread_mutex_unlock(&st->mu);
    int status = ST_OK, err = 0;
    if (end > st->size) {
      status = ST_TOO_LARGE;
    } else {
      struct iovec one = {st->in + pos, (size_t)(end - pos)};
      crc = libdeflate_crc32(crc, one.iov_base, one.iov_len);
      if ((err = write_all(st->fd, &one, 1, pos)) != 0) status = ST_WRITE;
    }
    pthread_mutex_lock(&st->mu);
    st->status = status;
    st->err = err;
    pos = end;
    release_consumed(st, pos);
    if (st->waiting_feeder && st->filled - st->released_in < INPUT_WINDOW / 2) {
      st->waiting_feeder = 0;
      emit(st, EV_DRAIN);
    }
  }
  pthread_mutex_unlock(&st->mu);
  if (st->status == ST_OK) {
    st->crc = crc;
    st->written = pos;
  }
}

static void *stream_main(void *arg) {
  struct stream *st = arg;
  if (st->method == 8) inflate_stream(st);
  else copy_stream(st);
  pthread_mutex_lock(&st->mu);
  st->finished = 1;
  release_input(st);
  pthread_mutex_unlock(&st->mu);
  napi_threadsafe_function tsfn = st->tsfn;
  emit(st, EV_DONE);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

/* On the main thread: the JS callback gets (0) for a drain or (1, [status, errno, crc,
 * written]) at the end. The stream is still alive: JS holds its handle until it has seen this. */
static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  struct stream *st = data;
  if (!env || !fn) return;
  napi_value argv[2], undef;
  napi_get_undefined(env, &undef);
  napi_create_int32(env, st ? EV_DONE : EV_DRAIN, &argv[0]);
  if (st) argv[1] = result_array(env, st->status, st->err, st->crc, st->written);
  napi_call_function(env, undef, fn, st ? 2 : 1, argv, NULL);
}

static void stream_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct stream *st = data;
  /* The external is only collected once JS has seen the done event: the thread is gone. */
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cond);
  free(st);
}

static struct stream *get_stream(napi_env env, napi_value v) {
  struct stream *st = NULL;
  if (napi_get_value_external(env, v, (void **)&st) != napi_ok) return NULL;
  return st;
}

/* streamOpen(fd, method, size, compressedSize, onEvent) -> handle, or a result array if its
 * input buffer cannot be mapped */
static napi_value stream_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], handle, name;
  int fd = -1, method = -1;
  int64_t size = -1, in_size = -1;
  napi_valuetype t = napi_undefined;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &method) != napi_ok ||
      (method != 0 && method != 8) || napi_get_value_int64(env, argv[2], &size) != napi_ok || size < 0 ||
      napi_get_value_int64(env, argv[3], &in_size) != napi_ok || in_size < 0 ||
      napi_typeof(env, argv[4], &t) != napi_ok || t != napi_function) {
    return throw_type(env, "streamOpen(fd, method 0|8, size >= 0, compressedSize >= 0, onEvent)");
  }
  struct stream *st = calloc(1, sizeof *st);
  if (!st) return throw_type(env, "out of memory");
  st->fd = fd;
  st->method = method;
  st->size = (uint64_t)size;
  st->in_size = (uint64_t)in_size;
  st->in_map = bank_round(st->in_size > 0 ? (size_t)st->in_size : 1); /* never an empty mapping */
  /* The input until recycling starts comes from the bank; later input reuses it. */
  void *in = bank_map(st->in_map, INPUT_RECYCLE);
  if (in == MAP_FAILED) {
    int err = errno;
    free(st);
    return result_array(env, ST_MAP, err, 0, 0);
  }
  st->in = in;
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cond, NULL);
  napi_create_string_utf8(env, "snaploader.stream", NAPI_AUTO_LENGTH, &name);
  napi_create_threadsafe_function(env, argv[4], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &st->tsfn);
  napi_create_external(env, st, stream_finalize, NULL, &handle);
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&th, &attr, stream_main, st) != 0) {
    /* No thread: report it as done at once, through the same path. */
    st->status = ST_NOMEM;
    st->finished = 1;
    release_input(st);
    emit(st, EV_DONE);
    napi_release_threadsafe_function(st->tsfn, napi_tsfn_release);
  }
  pthread_attr_destroy(&attr);
  return handle;
}

/* streamFeed(handle, buffer) -> true if there is room for more */
static napi_value stream_feed(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  void *p = NULL;
  size_t len = 0;
  bool is_buffer = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct stream *st = argc == 2 ? get_stream(env, argv[0]) : NULL;
  if (!st || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[1], &p, &len) != napi_ok) {
    return throw_type(env, "streamFeed(handle, buffer)");
  }
  bool room = true, wake = false;
  pthread_mutex_lock(&st->mu);
  if (!st->finished) {
    /* Never past the end: the caller feeds exactly compressedSize bytes, but check anyway. */
    uint64_t n = len <= st->in_size - st->filled ? len : st->in_size - st->filled;
    memcpy(st->in + st->filled, p, (size_t)n);
    st->filled += n;
    wake = st->wanted != 0 && st->filled >= st->wanted;
    if (st->filled < st->in_size && st->filled - st->released_in >= INPUT_WINDOW) {
      st->waiting_feeder = 1;
      room = false;
    }
  }
  pthread_mutex_unlock(&st->mu);
  /* After unlocking: a thread woken while the lock is held only blocks on it again. */
  if (wake) pthread_cond_signal(&st->cond);
  napi_get_boolean(env, room, &out);
  return out;
}

/* streamAbort(handle) */
static napi_value stream_abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct stream *st = argc == 1 ? get_stream(env, argv[0]) : NULL;
  if (!st) return throw_type(env, "streamAbort(handle)");
  pthread_mutex_lock(&st->mu);
  st->aborted = 1;
  pthread_cond_signal(&st->cond);
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"writeEntry", NULL, write_entry, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writeFiles", NULL, write_files, NULL, NULL, NULL, napi_enumerable, NULL},
    {"makeDirs", NULL, make_dirs, NULL, NULL, NULL, napi_enumerable, NULL},
    {"crc32", NULL, js_crc32, NULL, NULL, NULL, napi_enumerable, NULL},
    {"streamOpen", NULL, stream_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"streamFeed", NULL, stream_feed, NULL, NULL, NULL, napi_enumerable, NULL},
    {"streamAbort", NULL, stream_abort, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
