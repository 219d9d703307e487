/*
 * Where inflated bytes go: a file descriptor, written with pwrite from a small window of
 * memory that is reused, never through a mapping of the file. Memory written through a fresh
 * mapping (or freed and given again) is faulted in page by page, which costs the kernel as much
 * CPU as inflating does; a window that stays mapped is faulted in once.
 *
 * A sink counts what it has written, refuses to write past the declared size, and carries the
 * CRC-32 of everything written. It is libdeflate's flush hook (src/native/libdeflate.patch):
 * when the window is nearly full, what it holds goes out but the last 32 KiB (which later
 * matches may copy from), and those move to the window's start.
 */
#ifndef SNAPLOADER_OUTPUT_H
#define SNAPLOADER_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "libdeflate.h"

/* Bytes of an inflate window: at least deflate's history (32 KiB) plus a stored block (64 KiB).
 * Each threadpool thread keeps one; each stream has its own. */
#define OUTPUT_WINDOW (512 * 1024)

struct sink {
  int fd;
  uint64_t limit;          /* the declared size: nothing is written past it */
  unsigned char *window;   /* OUTPUT_WINDOW bytes */
  uint64_t base;           /* file offset of window[0] */
  uint64_t done;           /* bytes written to fd so far, from offset 0 */
  uint32_t crc;
  int err;                 /* pwrite's errno, if it failed */
  int too_large;           /* the output ran past `limit` */
};

/* pwritev of every iovec at `position`, through short writes and EINTR; 0 or an errno. */
int write_all(int fd, struct iovec *iov, size_t n, uint64_t position);

void sink_init(struct sink *s, int fd, uint64_t limit, unsigned char *window);

/*
 * Inflates `in` (a whole raw deflate stream) through the sink with decompressor `d`, writing
 * the rest of the window at the end. LIBDEFLATE_SUCCESS, or the failure; s->err and
 * s->too_large say when a write or the size limit was the cause.
 */
enum libdeflate_result sink_inflate(struct sink *s, struct libdeflate_decompressor *d, const void *in, size_t in_len, size_t *actual_in);

/* The window memory of the calling thread (allocated once, kept), or NULL without memory. */
unsigned char *thread_window(void);

#endif
