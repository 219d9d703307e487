/*
 * Fuzz target: lookups of fuzzer-chosen paths against a fuzzer-chosen, always valid map
 * (the path normalisation, the pre-filter, the common-prefix check and the hash tables of
 * preload-c/snaploader_preload.c), compared with a reference that normalises with a stack
 * and searches the records one by one.
 *
 * Input: fields separated by NUL bytes. The first byte picks how many of the first fields are
 * keys (1..16); a key field starting with '@' is a DLOPEN_BASENAME key (the rest), any other a
 * PATH key. The remaining fields are paths to look up.
 */
#include "preload_common.h"

#define MAX_KEYS 16

static uint8_t file[16 + MAX_KEYS * (12 + 4097 + 32)];
static char path[PATH_MAX + 8];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_common();
  return 0;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t want_keys = data[0] % MAX_KEYS + 1, at = 1, n_keys = 0, len = 16;
  memcpy(file, "SNAPMAP\x01", 8);
  put32(file + 12, 0);
  while (n_keys < want_keys && at < size) {
    const uint8_t *end = memchr(data + at, 0, size - at);
    size_t fl = end ? (size_t)(end - (data + at)) : size - at;
    const uint8_t *field = data + at;
    at += fl + 1;
    uint8_t kind = 1;
    if (fl > 0 && field[0] == '@') {
      kind = 2;
      field++;
      fl--;
    }
    if (fl > 4096) fl = 4096;
    char value[32];
    int vl = snprintf(value, sizeof value, "/tree/%zu", n_keys);
    uint8_t *rec = file + len;
    memset(rec, 0, 12);
    rec[0] = kind;
    put32(rec + 4, (uint32_t)fl);
    put32(rec + 8, (uint32_t)vl);
    memcpy(rec + 12, field, fl);
    rec[12 + fl] = 0;
    memcpy(rec + 12 + fl + 1, value, (size_t)vl + 1);
    len += 12 + fl + 1 + (size_t)vl + 1;
    n_keys++;
  }
  put32(file + 8, (uint32_t)n_keys);
  load_bytes(file, len);
  struct ref_record *r;
  long n = ref_decode(file, len, &r);
  CHECK(n == (long)n_keys, "the reference rejects the harness's own file");
  CHECK(g_map.active, "the library rejected a valid file of %zu records", n_keys);

  while (at < size) { /* the paths */
    const uint8_t *end = memchr(data + at, 0, size - at);
    size_t fl = end ? (size_t)(end - (data + at)) : size - at;
    if (fl > PATH_MAX + 4) fl = PATH_MAX + 4; /* over PATH_MAX still passes through */
    memcpy(path, data + at, fl);
    path[fl] = '\0';
    at += (end ? (size_t)(end - (data + at)) : size - at) + 1;
    compare_lookup(r, n, path);
  }
  for (long i = 0; i < n; i++) compare_lookup(r, n, r[i].key);
  free(r);
  return 0;
}
