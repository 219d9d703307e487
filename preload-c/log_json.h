/*
 * Lambda's JSON log lines (docs/architecture.md, "Logs"), for the C components: the helper
 * (bootstrap/snaploader-helper.c includes this header) and the preload library. With
 * AWS_LAMBDA_LOG_FORMAT=JSON every line is one JSON object with Lambda's fields (timestamp,
 * level, message) and ours (logger, component, errorCode); AWS_LAMBDA_LOG_LEVEL drops the lines
 * below it. No allocation, no stdio: the preload library calls this from inside its hooks.
 */
#ifndef SNAPLOADER_LOG_JSON_H
#define SNAPLOADER_LOG_JSON_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum snap_level { SNAP_DEBUG = 1, SNAP_INFO, SNAP_WARN, SNAP_ERROR };

/* Room kept at the end of a line for the fields after the message and the newline. */
#define SNAP_JSON_TAIL 192

static int snap_log_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The index of `v` (trimmed, ASCII case-insensitive) in `words`, or -1 (also when unset). */
static int snap_log_word(const char *v, const char *const words[])
{
	size_t n, i, w;

	if (!v)
		return -1;
	while (snap_log_space(*v))
		v++;
	for (n = strlen(v); n > 0 && snap_log_space(v[n - 1]); n--)
		;
	for (w = 0; words[w]; w++) {
		for (i = 0; i < n && words[w][i]; i++)
			if ((v[i] >= 'A' && v[i] <= 'Z' ? v[i] - 'A' + 'a' : v[i]) != words[w][i])
				break;
		if (i == n && !words[w][i])
			return (int)w;
	}
	return -1;
}

/*
 * Reads the values of AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL: returns 0 for text (all
 * lines, as always), or for JSON the lowest level shown (1 = all; an unknown level drops none).
 */
static int snap_log_min_level(const char *format, const char *level)
{
	static const char *const json[] = { "json", NULL };
	static const char *const levels[] = { "trace", "debug", "info", "warn", "error", "fatal", NULL };
	int l;

	if (snap_log_word(format, json) != 0)
		return 0;
	l = snap_log_word(level, levels);
	return l < 1 ? 1 : l;
}

/* The length of the UTF-8 sequence at p (at most n bytes), or 0 if it is not valid UTF-8. */
static size_t snap_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Appends `s` to out[*used..limit) as JSON string content: quotes, backslashes and control
 * bytes escaped, a byte that is not UTF-8 as U+FFFD. Returns 0 if it had to stop short. */
static int snap_json_escape(char *out, size_t *used, size_t limit, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		char esc[8];
		const char *piece = esc;
		size_t len = snap_utf8_len(p, n), take = len ? len : 1;

		if (len == 0) {
			piece = "\\ufffd", len = 6;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\', esc[1] = (char)*p, len = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(esc, "\\u00", 4), esc[4] = hex[*p >> 4], esc[5] = hex[*p & 15], len = 6;
		} else {
			piece = (const char *)p;
		}
		if (*used + len > limit)
			return 0;
		memcpy(out + *used, piece, len);
		*used += len;
		p += take, n -= take;
	}
	return 1;
}

/*
 * One JSON line, newline included, from the message `parts` (NULL ones skipped) into out (size
 * > SNAP_JSON_TAIL + 64); `code` (may be NULL) is the errorCode field. A message too long for
 * out ends in "...". Returns the line's length.
 */
static size_t snap_json_line(char *out, size_t size, int level, const char *component, const char *code,
			     const char *const parts[], size_t n_parts)
{
	static const char *const names[] = { "", "DEBUG", "INFO", "WARN", "ERROR" };
	struct timespec ts;
	struct tm tm;
	size_t used = 0, i, limit = size - SNAP_JSON_TAIL;
	int whole = 1;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	used = (size_t)snprintf(out, size, "{\"timestamp\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"message\":\"",
				tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				ts.tv_nsec / 1000000, names[level]);
	for (i = 0; i < n_parts && whole; i++)
		if (parts[i])
			whole = snap_json_escape(out, &used, limit, parts[i]);
	if (!whole) {
		memcpy(out + used, "...", 3);
		used += 3;
	}
	used += (size_t)snprintf(out + used, size - used, "\",\"logger\":\"snaploader\",\"component\":\"%s\"", component);
	if (code) {
		memcpy(out + used, ",\"errorCode\":\"", 14);
		used += 14;
		snap_json_escape(out, &used, size - 3, code);
		out[used++] = '"';
	}
	out[used++] = '}';
	out[used++] = '\n';
	return used;
}

/*
 * The preload library's lines: `text_prefix` and the parts (NULL or empty ones skipped) as one
 * text line when min_level is 0, else one JSON line if `level` is shown. One write, errno kept.
 */
static inline void snap_log_parts(int min_level, int level, const char *component, const char *text_prefix,
				  const char *const parts[], size_t n_parts)
{
	int saved = errno;
	ssize_t ignored;

	if (min_level == 0) {
		struct iovec iov[8];
		int n = 0;
		size_t i;

		iov[n].iov_base = (void *)text_prefix, iov[n++].iov_len = strlen(text_prefix);
		for (i = 0; i < n_parts && n < 7; i++) {
			if (parts[i] == NULL || parts[i][0] == '\0')
				continue;
			iov[n].iov_base = (void *)parts[i], iov[n++].iov_len = strlen(parts[i]);
		}
		iov[n].iov_base = (void *)"\n", iov[n++].iov_len = 1;
		ignored = writev(STDERR_FILENO, iov, n);
	} else if (level >= min_level) {
		char line[4096];

		ignored = write(STDERR_FILENO, line, snap_json_line(line, sizeof line, level, component, NULL, parts, n_parts));
	}
	(void)ignored;
	errno = saved;
}

#endif
