/* A bank of memory already faulted in: see bank.h. */
#define _GNU_SOURCE
#include "bank.h"

#include <pthread.h>
#include <sys/mman.h>

static pthread_mutex_t bank_mu = PTHREAD_MUTEX_INITIALIZER;
static void *bank_chunks[BANK_KEEP];
static size_t bank_count;

size_t bank_round(size_t len) {
  return (len + BANK_CHUNK - 1) / BANK_CHUNK * BANK_CHUNK;
}

/* Takes up to `want` chunks into `out`; how many it took. */
static size_t bank_take(void **out, size_t want) {
  pthread_mutex_lock(&bank_mu);
  size_t n = want < bank_count ? want : bank_count;
  for (size_t i = 0; i < n; i++) out[i] = bank_chunks[--bank_count];
  pthread_mutex_unlock(&bank_mu);
  return n;
}

void *bank_map(size_t len, size_t fill) {
  size_t n = bank_round(len);
  unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return MAP_FAILED;
  size_t want = bank_round(fill < n ? fill : n) / BANK_CHUNK;
  void *chunks[BANK_KEEP];
  size_t got = bank_take(chunks, want < BANK_KEEP ? want : BANK_KEEP);
  for (size_t i = 0; i < got; i++) {
    /* Replaces the fresh chunk at p + i * BANK_CHUNK; on failure that one stays fresh. */
    if (mremap(chunks[i], BANK_CHUNK, BANK_CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, p + i * BANK_CHUNK) == MAP_FAILED) {
      munmap(chunks[i], BANK_CHUNK);
    }
  }
  return p;
}

void bank_unmap(void *p, size_t len) {
  unsigned char *c = p;
  size_t n = bank_round(len) / BANK_CHUNK;
  size_t kept = 0;
  pthread_mutex_lock(&bank_mu);
  while (kept < n && bank_count < BANK_KEEP) bank_chunks[bank_count++] = c + (kept++) * BANK_CHUNK;
  pthread_mutex_unlock(&bank_mu);
  if (kept < n) munmap(c + kept * BANK_CHUNK, (n - kept) * BANK_CHUNK);
}
