/*
 * Shared by the helper fuzz targets: bootstrap/snaploader-helper.c itself, included whole
 * (built with -DSNAPLOADER_FUZZ, which renames its main), and a check macro.
 */
/* Small protocol limits, so that inputs of a few KiB reach the over-long line and the
 * over-long environment string (the helper's own are 512 KiB and 128 KiB). */
#define REQUEST_MAX_BYTES 8192
#define ENV_STRING_MAX 2048
#include "../../bootstrap/snaploader-helper.c"

/* The helper writes its debug lines to stderr, which the targets point at /dev/null; a
 * failed check goes to fd 2 itself, like the sanitizers' reports. */
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dprintf(2, "check failed: %s: ", #cond);                                   \
			dprintf(2, __VA_ARGS__);                                                   \
			dprintf(2, "\n");                                                          \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The protocol's percent-decoding, written from docs/architecture.md: NULL if malformed. */
static int ref_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int ref_decode_field(const char *in, char *out)
{
	size_t o = 0;

	for (size_t i = 0; in[i]; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			int hi = in[i + 1] ? ref_hex((unsigned char)in[i + 1]) : -1;
			int lo = hi >= 0 && in[i + 2] ? ref_hex((unsigned char)in[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return 0;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (c <= 0x20 || c >= 0x7f) {
			return 0;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return 1;
}
