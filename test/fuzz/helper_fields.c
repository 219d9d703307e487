/*
 * Fuzz target: the helper's field parsers (bootstrap/snaploader-helper.c) compared with
 * references written from docs/architecture.md: percent-decoding (and that encoding then
 * decoding gives the bytes back, also when the encoding is cut short), sizes, variable names,
 * one-line copies of messages, and SNAPLOADER_TIMEOUT (in the settings grammar).
 */
#include "helper_common.h"

#include <stdlib.h>
#include <strings.h>

static int ref_size(const char *s, int64_t *out)
{
	unsigned __int128 v = 0;

	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > (unsigned __int128)INT64_MAX)
			return 0;
	}
	*out = (int64_t)v;
	return 1;
}

static int ref_env_name(const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
		if (!alpha && (i == 0 || c < '0' || c > '9'))
			return 0;
	}
	return s[0] != '\0';
}

/* The settings grammar: surrounding ASCII whitespace dropped, blank = default, words ASCII
 * case-insensitive; a number is digits only. */
static int ref_space(char c)
{
	return c && strchr(" \t\n\v\f\r", c) != NULL;
}

static size_t ref_trim(const char **v)
{
	size_t n;

	while (ref_space(**v))
		(*v)++;
	for (n = strlen(*v); n > 0 && ref_space((*v)[n - 1]); n--)
		;
	return n;
}

static int ref_timeout(const char *v, const char *type)
{
	size_t n = v ? ref_trim(&v) : 0;
	if (n == 0) {
		size_t tn = type ? ref_trim(&type) : 0;
		return tn == 0 || (tn == 9 && !strncasecmp(type, "on-demand", 9)) ? 9 : 600;
	}
	size_t zeros = 0;
	while (zeros < n && v[zeros] == '0')
		zeros++;
	if (n > 4 + zeros)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return -1;
	long x = strtol(v, NULL, 10);
	return x >= 1 && x <= 3600 ? (int)x : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cut = data[0];
	data++;
	size--;
	size_t len = strnlen((const char *)data, size);
	char *s = malloc(len + 1), *copy = malloc(len + 1), *ref = malloc(len + 1), *enc = malloc(3 * len + 1);
	char *back = malloc(3 * len + 1), small[300];
	CHECK(s && copy && ref && enc && back, "malloc");
	memcpy(s, data, len);
	s[len] = '\0';

	/* percent_decode, against the reference */
	memcpy(copy, s, len + 1);
	const char *why = percent_decode(copy);
	int ok = ref_decode_field(s, ref);
	CHECK((why == NULL) == ok, "\"%s\": decoder says %s, the reference %s", s, why ? why : "valid",
	      ok ? "valid" : "malformed");
	if (ok)
		CHECK(!strcmp(copy, ref), "\"%s\" decodes differently", s);

	/* encode, then decode: the same bytes; cut short: a prefix of them */
	percent_encode(enc, 3 * len + 1, s);
	for (const char *e = enc; *e; e++)
		CHECK(*e == '%' || !must_encode((unsigned char)*e), "encoding of \"%s\" left a raw byte", s);
	memcpy(back, enc, strlen(enc) + 1);
	CHECK(percent_decode(back) == NULL || len == 0, "the encoding of \"%s\" does not decode", s);
	CHECK(!strcmp(back, s), "encoding then decoding \"%s\" gives \"%s\"", s, back);
	size_t small_size = cut % sizeof small + 1;
	percent_encode(small, small_size, s);
	CHECK(strlen(small) < small_size, "percent_encode overran its output");
	CHECK(percent_decode(small) == NULL, "a cut encoding does not decode");
	CHECK(!strncmp(small, s, strlen(small)), "a cut encoding is not a prefix");

	/* sizes and variable names */
	off_t got;
	int64_t want;
	int parsed = parse_size(s, &got) == 0, want_parsed = ref_size(s, &want);
	CHECK(parsed == want_parsed, "size \"%s\": %d vs reference %d", s, parsed, want_parsed);
	if (parsed)
		CHECK((int64_t)got == want, "size \"%s\" parsed as %lld", s, (long long)got);
	CHECK(valid_env_name(s) == ref_env_name(s), "variable name \"%s\"", s);

	/* one_line: cut to the buffer, no control bytes */
	size_t out_size = cut % 64 + 1;
	one_line(small, out_size, s);
	CHECK(strlen(small) == (len < out_size - 1 ? len : out_size - 1), "one_line length");
	for (const char *c = small; *c; c++)
		CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "one_line kept a control byte");

	/* SNAPLOADER_TIMEOUT (the type from the cut byte's low bits) */
	static const char *const types[] = { NULL, "", "on-demand", "snap-start", " On-Demand\t", "on-demand!", "\v", "ON-DEMANDS" };
	const char *type = types[cut & 7];
	setenv("SNAPLOADER_TIMEOUT", s, 1);
	if (type)
		setenv("AWS_LAMBDA_INITIALIZATION_TYPE", type, 1);
	else
		unsetenv("AWS_LAMBDA_INITIALIZATION_TYPE");
	int seconds = -1;
	char failure[512] = "";
	int r = init_timeout(&seconds, failure, sizeof failure);
	int want_seconds = ref_timeout(s, type);
	CHECK((r == 0 ? seconds : -1) == want_seconds, "SNAPLOADER_TIMEOUT=\"%s\": %d, reference %d", s,
	      r == 0 ? seconds : -1, want_seconds);
	if (r < 0)
		CHECK(!strncmp(failure, "SNAPLOADER_TIMEOUT=\"", 20) && !strchr(failure, '\n'), "message \"%s\"", failure);

	free(s);
	free(copy);
	free(ref);
	free(enc);
	free(back);
	return 0;
}
