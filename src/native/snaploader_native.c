/*
 * snaploader_native: the init program's data plane, as a Node-API addon.
 *
 * Each call queues one job on libuv's threadpool and returns a promise, so the main thread
 * only hands over buffers and every core inflates, checksums and writes:
 *
 *   writeEntry(fd, parts, method, size)  a whole entry: gather the compressed parts, inflate
 *                                        (libdeflate) or copy, CRC-32, pwrite at offset 0,
 *                                        close fd (always, also on failure)
 *   writeAt(fd, parts, position, crc)    part of a streamed entry: CRC-32 continued from
 *                                        `crc`, pwritev at `position`; fd stays open
 *   crc32(buffer, crc)                   synchronous, for small things on the main thread
 *
 * and, for a deflated entry too big to hold in memory, a stream on a thread of its own:
 *
 *   streamOpen(fd, size, compressedSize, onEvent)  -> handle; its thread maps fd's first `size` bytes
 *   streamFeed(handle, buffer) -> boolean          copies the next compressed bytes in;
 *                                                  false: wait for a drain event
 *   streamAbort(handle)                            stops it (the done event still comes)
 *
 * The thread inflates with libdeflate straight into the shared mapping of fd, waiting at each
 * deflate block for its input (libdeflate_set_block_hook, our addition in src/native/libdeflate.patch), and
 * hands back the input it consumed and the output it wrote (MADV_DONTNEED), so memory stays
 * at a few MiB whatever the entry's size. onEvent(0) is a drain; onEvent(1, result) the end.
 *
 * Both jobs resolve (never reject) with [status, errno, crc32, bytesWritten]; src/native.ts
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

enum status {
  ST_OK = 0,
  ST_CORRUPT = 1,   /* the deflate data is invalid */
  ST_TOO_LARGE = 2, /* it inflates past the declared size */
  ST_WRITE = 3,     /* pwrite failed: errno */
  ST_CLOSE = 4,     /* close failed: errno */
  ST_NOMEM = 5,     /* no memory for the output or the gathered input */
  ST_BLOCK = 6,     /* a deflate block spans more compressed bytes than LOOKAHEAD */
  ST_ABORTED = 7,   /* streamAbort */
  ST_MAP = 8,       /* the output could not be mapped: errno */
};

/* Buffers from this size on are mapped and unmapped directly, so their memory goes back to the
 * system at once rather than staying in an allocator arena of the thread that freed it. */
#define MMAP_FROM (256 * 1024)
#define MAX_PARTS 4096
/* Whole entries from this size on are inflated straight into a shared mapping of their file:
 * no output buffer to fault in and zero, no copy by pwrite. Smaller ones are cheaper written. */
#define MAP_OUTPUT_FROM (1024 * 1024)

struct job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  int fd;
  int whole; /* writeEntry: inflate/copy a whole entry and close fd */
  int method;
  uint64_t position;
  uint64_t size;
  uint32_t crc;
  size_t nparts;
  struct iovec *parts;
  /* results */
  int status;
  int err;
  uint64_t written;
};

static _Thread_local struct libdeflate_decompressor *tls_decompressor;

static void *big_alloc(size_t n) {
  if (n < MMAP_FROM) return malloc(n ? n : 1);
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void big_free(void *p, size_t n) {
  if (!p) return;
  if (n < MMAP_FROM) free(p);
  else munmap(p, n);
}

/* pwritev of every iovec at `position`, through short writes and EINTR; 0 or an errno. */
static int write_all(int fd, struct iovec *iov, size_t n, uint64_t position) {
  for (;;) {
    while (n > 0 && iov->iov_len == 0) {
      iov++;
      n--;
    }
    if (n == 0) return 0;
    int cnt = n > IOV_MAX ? IOV_MAX : (int)n;
    ssize_t w = pwritev(fd, iov, cnt, (off_t)position);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    position += (uint64_t)w;
    size_t left = (size_t)w;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
}

/*
 * Gives fd its first `size` bytes for real (disk blocks, or memory for a memfd) before they are
 * written through a mapping: a full /tmp then answers ENOSPC here, instead of killing the
 * process with SIGBUS at the first write to a page it has no room for. 0 or an errno.
 */
static int reserve(int fd, uint64_t size) {
  /* A memfd (the helper's are sealable) has no filesystem to fill: its pages come out of the
   * function's memory, which the plan has budgeted. Sizing it is enough, and its pages are then
   * allocated as they are written, alongside the download, not all at once up front. */
  int seals = fcntl(fd, F_GET_SEALS); /* a tmpfs file answers too, with F_SEAL_SEAL set */
  if (seals >= 0 && !(seals & F_SEAL_SEAL)) return ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
  if (fallocate(fd, 0, 0, (off_t)size) == 0) return 0;
  if (errno != EOPNOTSUPP && errno != ENOSYS) return errno;
  return ftruncate(fd, (off_t)size) == 0 ? 0 : errno; /* sized, not reserved: the best there is */
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

/* Inflates the whole entry into a fresh buffer, checks its size, writes it at offset 0. */
static void run_inflate(struct job *j) {
  if (!tls_decompressor && !(tls_decompressor = libdeflate_alloc_decompressor())) {
    j->status = ST_NOMEM;
    return;
  }
  const void *in = j->parts[0].iov_base;
  size_t in_len = (size_t)total_len(j->parts, j->nparts);
  void *gathered = NULL;
  if (j->nparts > 1) {
    if (!(gathered = big_alloc(in_len))) {
      j->status = ST_NOMEM;
      return;
    }
    size_t at = 0;
    for (size_t i = 0; i < j->nparts; i++) {
      memcpy((char *)gathered + at, j->parts[i].iov_base, j->parts[i].iov_len);
      at += j->parts[i].iov_len;
    }
    in = gathered;
  }
  size_t out_len = (size_t)j->size;
  void *out = NULL;
  int mapped = 0;
  struct stat sb;
  if (out_len >= MAP_OUTPUT_FROM && fstat(j->fd, &sb) == 0 && S_ISREG(sb.st_mode)) { /* a file or memfd, not a device */
    if ((j->err = reserve(j->fd, out_len)) != 0) {
      big_free(gathered, in_len);
      j->status = ST_WRITE;
      return;
    }
    out = mmap(NULL, out_len, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
    if (out == MAP_FAILED) out = NULL; /* then a buffer and pwrite, as for small entries */
    else mapped = 1;
  }
  if (!out) out = big_alloc(out_len);
  if (!out) {
    big_free(gathered, in_len);
    j->status = ST_NOMEM;
    return;
  }
  size_t actual = 0;
  enum libdeflate_result r = libdeflate_deflate_decompress(tls_decompressor, in, in_len, out, out_len, &actual);
  big_free(gathered, in_len);
  if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
    j->status = ST_TOO_LARGE;
  } else if (r != LIBDEFLATE_SUCCESS) {
    j->status = ST_CORRUPT;
  } else {
    j->crc = libdeflate_crc32(0, out, actual);
    struct iovec one = {out, actual};
    if (!mapped && (j->err = write_all(j->fd, &one, 1, 0)) != 0) j->status = ST_WRITE;
    else j->written = actual;
  }
  if (mapped) {
    munmap(out, out_len);
    /* Shorter than declared: the file keeps the size it was given; the caller reports the mismatch. */
  } else {
    big_free(out, out_len);
  }
}

static void execute(napi_env env, void *data) {
  (void)env;
  struct job *j = data;
  if (j->whole && j->method == 8) {
    run_inflate(j);
  } else {
    /* Stored bytes (a whole stored entry, or a piece of a streamed one): CRC and write as they are. */
    uint64_t len = total_len(j->parts, j->nparts);
    if (j->whole && len > j->size) {
      j->status = ST_TOO_LARGE;
    } else {
      j->crc = crc_parts(j->crc, j->parts, j->nparts); /* a whole entry's crc and position are 0 */
      if ((j->err = write_all(j->fd, j->parts, j->nparts, j->position)) != 0) j->status = ST_WRITE;
      else j->written = len;
    }
  }
  if (j->whole && close(j->fd) != 0 && j->status == ST_OK) {
    j->status = ST_CLOSE;
    j->err = errno;
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

static void complete(napi_env env, napi_status st, void *data) {
  struct job *j = data;
  if (st == napi_cancelled) {
    j->status = ST_WRITE;
    j->err = ECANCELED;
  }
  napi_resolve_deferred(env, j->deferred, result_array(env, j->status, j->err, j->crc, j->written));
  napi_delete_reference(env, j->keep);
  napi_delete_async_work(env, j->work);
  free(j->parts);
  free(j);
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Reads the array of Buffers `arr` into j->parts and keeps the array alive. */
static int take_parts(napi_env env, napi_value arr, struct job *j) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) return 0;
  napi_get_array_length(env, arr, &n);
  if (n == 0 || n > MAX_PARTS) return 0;
  if (!(j->parts = calloc(n, sizeof(struct iovec)))) return 0;
  j->nparts = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    bool is_buffer = false;
    void *p = NULL;
    size_t len = 0;
    napi_get_element(env, arr, i, &el);
    if (napi_is_buffer(env, el, &is_buffer) != napi_ok || !is_buffer) return 0;
    if (napi_get_buffer_info(env, el, &p, &len) != napi_ok) return 0;
    j->parts[i].iov_base = p;
    j->parts[i].iov_len = len;
  }
  return napi_create_reference(env, arr, 1, &j->keep) == napi_ok;
}

static napi_value queue(napi_env env, struct job *j) {
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "snaploader.write", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

/* writeEntry(fd, parts, method, size) */
static napi_value write_entry(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *j = calloc(1, sizeof *j);
  if (!j) return throw_type(env, "out of memory");
  int64_t size = -1;
  j->whole = 1;
  if (argc != 4 || napi_get_value_int32(env, argv[0], &j->fd) != napi_ok ||
      napi_get_value_int32(env, argv[2], &j->method) != napi_ok || (j->method != 0 && j->method != 8) ||
      napi_get_value_int64(env, argv[3], &size) != napi_ok || size < 0 || !take_parts(env, argv[1], j)) {
    free(j->parts);
    free(j);
    return throw_type(env, "writeEntry(fd, buffers, method 0|8, size)");
  }
  j->size = (uint64_t)size;
  return queue(env, j);
}

/* writeAt(fd, parts, position, crc) */
static napi_value write_at(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *j = calloc(1, sizeof *j);
  if (!j) return throw_type(env, "out of memory");
  int64_t position = -1;
  if (argc != 4 || napi_get_value_int32(env, argv[0], &j->fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok || position < 0 ||
      napi_get_value_uint32(env, argv[3], &j->crc) != napi_ok || !take_parts(env, argv[1], j)) {
    free(j->parts);
    free(j);
    return throw_type(env, "writeAt(fd, buffers, position, crc)");
  }
  j->position = (uint64_t)position;
  return queue(env, j);
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
/* Compressed bytes the feeder may be ahead of the decompressor before it is asked to wait. */
#define INPUT_WINDOW (4 * 1024 * 1024)
/* Output handed back (and checksummed) every this many bytes. */
#define RELEASE_STEP (4 * 1024 * 1024)
#define HISTORY 65536

struct stream {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  napi_threadsafe_function tsfn;
  int fd;
  uint64_t size;
  uint64_t in_size;
  unsigned char *in;      /* anonymous mapping of in_size bytes */
  unsigned char *out;     /* shared mapping of fd's first `size` bytes */
  size_t page;
  /* under mu */
  uint64_t filled;        /* compressed bytes fed */
  uint64_t limit;         /* how far the current block may read: what had arrived, at most LOOKAHEAD on */
  uint64_t released_in;
  int waiting_feeder;     /* streamFeed said false: send a drain when there is room */
  int aborted;
  int finished;
  /* thread only */
  uint64_t crc_at;
  uint64_t released_out;
  uint32_t crc;
  int status;
  int err;
  uint64_t written;
};

static uint64_t align_down(uint64_t v, size_t page) { return v - v % page; }

/* To JS: a drain (no data), or the end (the stream itself, whose results are final). Nothing
 * is allocated, so the end cannot be lost. */
enum { EV_DRAIN, EV_DONE };

static void emit(struct stream *st, int kind) {
  napi_call_threadsafe_function(st->tsfn, kind == EV_DONE ? st : NULL, napi_tsfn_blocking);
}

/* Checksums the output up to `to` and hands back what is behind the history window. */
static void settle_output(struct stream *st, uint64_t to, int final) {
  if (to > st->crc_at) {
    st->crc = libdeflate_crc32(st->crc, st->out + st->crc_at, (size_t)(to - st->crc_at));
    st->crc_at = to;
  }
  uint64_t keep = final ? to : (to > HISTORY ? to - HISTORY : 0);
  uint64_t upto = align_down(keep, st->page);
  if (upto > st->released_out && (final || upto - st->released_out >= RELEASE_STEP)) {
    madvise(st->out + st->released_out, (size_t)(upto - st->released_out), MADV_DONTNEED);
    st->released_out = upto;
  }
}

static int block_hook(void *ctx, const void *in_next, const void *out_next) {
  struct stream *st = ctx;
  uint64_t in_pos = (uint64_t)((const unsigned char *)in_next - st->in);
  settle_output(st, (uint64_t)((const unsigned char *)out_next - st->out), 0);
  pthread_mutex_lock(&st->mu);
  if (in_pos > st->limit) {
    /* The block just done read bytes that had not arrived when it started. */
    st->status = ST_BLOCK;
    pthread_mutex_unlock(&st->mu);
    return 1;
  }
  uint64_t behind = in_pos > HISTORY ? align_down(in_pos - HISTORY, st->page) : 0;
  if (behind > st->released_in) {
    madvise(st->in + st->released_in, (size_t)(behind - st->released_in), MADV_DONTNEED);
    st->released_in = behind;
  }
  if (st->waiting_feeder && st->filled - st->released_in < INPUT_WINDOW / 2) {
    st->waiting_feeder = 0;
    emit(st, EV_DRAIN);
  }
  uint64_t need = in_pos + LOOKAHEAD < st->in_size ? in_pos + LOOKAHEAD : st->in_size;
  while (st->filled < need && !st->aborted) pthread_cond_wait(&st->cond, &st->mu);
  /* The next block may read up to LOOKAHEAD, not up to whatever has arrived: a block
   * spanning more is refused whatever the timing, so an archive is accepted or refused
   * the same way on every run. */
  st->limit = st->filled < need ? st->filled : need;
  int stop = st->aborted;
  if (stop) st->status = ST_ABORTED;
  pthread_mutex_unlock(&st->mu);
  return stop;
}

static void *stream_main(void *arg) {
  struct stream *st = arg;
  struct libdeflate_decompressor *d = NULL;
  /* Reserving a big file takes a while (a memfd's pages are allocated): here, not on the
   * main thread. */
  if ((st->err = reserve(st->fd, st->size)) != 0) {
    st->status = ST_WRITE;
  } else {
    void *out = mmap(NULL, (size_t)st->size, PROT_READ | PROT_WRITE, MAP_SHARED, st->fd, 0);
    if (out == MAP_FAILED) {
      st->err = errno;
      st->status = ST_MAP;
    } else {
      st->out = out;
    }
  }
  if (st->status != ST_OK) {
    /* nothing to inflate into */
  } else if (!(d = libdeflate_alloc_decompressor())) {
    st->status = ST_NOMEM;
  } else {
    libdeflate_set_block_hook(d, block_hook, st);
    size_t actual_in = 0, actual_out = 0;
    enum libdeflate_result r = libdeflate_deflate_decompress_ex(d, st->in, (size_t)st->in_size, st->out, (size_t)st->size,
                                                                &actual_in, &actual_out);
    libdeflate_free_decompressor(d);
    if (st->status == ST_OK) {
      if (r == LIBDEFLATE_INSUFFICIENT_SPACE) st->status = ST_TOO_LARGE;
      else if (r != LIBDEFLATE_SUCCESS) st->status = ST_CORRUPT;
      else if (actual_in > st->limit) st->status = ST_BLOCK;
      else {
        settle_output(st, actual_out, 1);
        st->written = actual_out;
      }
    }
  }
  if (st->out) munmap(st->out, (size_t)st->size);
  pthread_mutex_lock(&st->mu);
  st->finished = 1;
  munmap(st->in, (size_t)st->in_size);
  st->in = NULL;
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

/* streamOpen(fd, size, compressedSize, onEvent) -> handle, or a result array if its input
 * buffer cannot be mapped */
static napi_value stream_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], handle, name;
  int fd = -1;
  int64_t size = -1, in_size = -1;
  napi_valuetype t = napi_undefined;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &size) != napi_ok ||
      size <= 0 || napi_get_value_int64(env, argv[2], &in_size) != napi_ok || in_size <= 0 ||
      napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function) {
    return throw_type(env, "streamOpen(fd, size > 0, compressedSize > 0, onEvent)");
  }
  struct stream *st = calloc(1, sizeof *st);
  if (!st) return throw_type(env, "out of memory");
  st->fd = fd;
  st->size = (uint64_t)size;
  st->in_size = (uint64_t)in_size;
  st->page = (size_t)sysconf(_SC_PAGESIZE);
  void *in = mmap(NULL, (size_t)in_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (in == MAP_FAILED) {
    int err = errno;
    free(st);
    return result_array(env, ST_MAP, err, 0, 0);
  }
  st->in = in;
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cond, NULL);
  napi_create_string_utf8(env, "snaploader.stream", NAPI_AUTO_LENGTH, &name);
  napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &st->tsfn);
  napi_create_external(env, st, stream_finalize, NULL, &handle);
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&th, &attr, stream_main, st) != 0) {
    /* No thread: report it as done at once, through the same path. */
    st->status = ST_NOMEM;
    st->finished = 1;
    munmap(st->in, (size_t)st->in_size);
    st->in = NULL;
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
  bool room = true;
  pthread_mutex_lock(&st->mu);
  if (!st->finished) {
    /* Never past the end: the caller feeds exactly compressedSize bytes, but check anyway. */
    uint64_t n = len <= st->in_size - st->filled ? len : st->in_size - st->filled;
    memcpy(st->in + st->filled, p, (size_t)n);
    st->filled += n;
    pthread_cond_signal(&st->cond);
    if (st->filled < st->in_size && st->filled - st->released_in >= INPUT_WINDOW) {
      st->waiting_feeder = 1;
      room = false;
    }
  }
  pthread_mutex_unlock(&st->mu);
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
    {"writeAt", NULL, write_at, NULL, NULL, NULL, napi_enumerable, NULL},
    {"crc32", NULL, js_crc32, NULL, NULL, NULL, napi_enumerable, NULL},
    {"streamOpen", NULL, stream_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"streamFeed", NULL, stream_feed, NULL, NULL, NULL, napi_enumerable, NULL},
    {"streamAbort", NULL, stream_abort, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
