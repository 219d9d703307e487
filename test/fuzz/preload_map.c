/*
 * Fuzz target: the mapping-file loader of preload-c/snaploader_preload.c on arbitrary bytes.
 * The library must accept exactly the files the format allows (compared with a reference
 * decoder), and then redirect exactly what the reference says, for each key and variants of
 * it (extra slashes, "." and ".." components, relative forms, directory forms).
 */
#include "preload_common.h"

static char variant[2 * PATH_MAX + 16];

static void lookups_for_key(const struct ref_record *r, long n, const char *key, size_t kl) {
  static const char *const wraps[][2] = {
      {"", ""}, {"/", ""}, {"/./", ""}, {"", "/"}, {"", "/."}, {"", "/.."}, {"/x/..", ""}, {"/../", ""},
  };
  for (size_t w = 0; w < sizeof wraps / sizeof wraps[0]; w++) {
    snprintf(variant, sizeof variant, "%s%.*s%s", wraps[w][0], (int)kl, key, wraps[w][1]);
    compare_lookup(r, n, variant);
  }
  /* The key without its leading slash: relative to the working directory, "/". */
  if (kl > 1 && key[0] == '/') compare_lookup(r, n, key + 1);
  /* "<parent>/../<parent>/<leaf>" */
  const char *slash = memrchr(key, '/', kl);
  if (slash != NULL && slash != key) {
    size_t parent = (size_t)(slash - key);
    const char *pslash = memrchr(key, '/', parent);
    if (pslash != NULL) {
      snprintf(variant, sizeof variant, "%.*s/../%.*s", (int)parent, key, (int)(kl - (size_t)(pslash - key)),
               pslash);
      compare_lookup(r, n, variant);
    }
  }
  /* Its last component alone, as a bare name (dlopen's basename lookup too). */
  if (slash != NULL) compare_lookup(r, n, slash + 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_common();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ref_record *r;
  load_bytes(data, size);
  long n = ref_decode(data, size, &r);
  CHECK((n >= 0) == (g_map.active != 0), "the library %s a file the reference %s (%zu bytes)",
        g_map.active ? "accepted" : "rejected", n >= 0 ? "accepts" : "rejects", size);
  if (n < 0) return 0;
  /* Every key, and variants of the first few short ones (byte loops are slow under the
   * comparison tracing; preload_lookup covers long paths). */
  for (long i = 0; i < n; i++) {
    if (i < 16 && r[i].key_len <= 512) lookups_for_key(r, n, r[i].key, r[i].key_len);
    else compare_lookup(r, n, r[i].key);
  }
  compare_lookup(r, n, "/");
  compare_lookup(r, n, "");
  free(r);
  return 0;
}
