/* Inflating into a reused window and pwrite: see output.h. */
#define _GNU_SOURCE
#include "output.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Deflate's history: the farthest back a match may copy from. */
#define DEFLATE_HISTORY 32768

int write_all(int fd, struct iovec *iov, size_t n, uint64_t position) {
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

void sink_init(struct sink *s, int fd, uint64_t limit, unsigned char *window) {
  memset(s, 0, sizeof *s);
  s->fd = fd;
  s->limit = limit;
  s->window = window;
}

/* Writes the window's bytes not yet written, up to `end`; 1, or 0 with err or too_large set. */
static int sink_write(struct sink *s, size_t end) {
  size_t from = (size_t)(s->done - s->base);
  size_t n = end - from;
  if (s->done + n > s->limit) {
    s->too_large = 1;
    return 0;
  }
  s->crc = libdeflate_crc32(s->crc, s->window + from, n);
  struct iovec one = {s->window + from, n};
  if ((s->err = write_all(s->fd, &one, 1, s->done)) != 0) return 0;
  s->done += n;
  return 1;
}

/* libdeflate's flush hook: write out, keep the history, say how far the output moves back. */
static size_t flush_hook(void *ctx, const void *out_next) {
  struct sink *s = ctx;
  size_t end = (size_t)((const unsigned char *)out_next - s->window);
  if (!sink_write(s, end)) return 0;
  size_t keep = end < DEFLATE_HISTORY ? end : DEFLATE_HISTORY;
  memmove(s->window, s->window + end - keep, keep);
  s->base += end - keep;
  return end - keep;
}

enum libdeflate_result sink_inflate(struct sink *s, struct libdeflate_decompressor *d, const void *in, size_t in_len, size_t *actual_in) {
  size_t actual_out = 0;
  libdeflate_set_flush_hook(d, flush_hook, s);
  enum libdeflate_result r = libdeflate_deflate_decompress_ex(d, in, in_len, s->window, OUTPUT_WINDOW, actual_in, &actual_out);
  libdeflate_set_flush_hook(d, NULL, NULL);
  if (r == LIBDEFLATE_SUCCESS && !sink_write(s, actual_out)) r = LIBDEFLATE_INSUFFICIENT_SPACE;
  return r;
}

static _Thread_local unsigned char *tls_window;

unsigned char *thread_window(void) {
  if (!tls_window) {
    void *p = mmap(NULL, OUTPUT_WINDOW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) tls_window = p;
  }
  return tls_window;
}
