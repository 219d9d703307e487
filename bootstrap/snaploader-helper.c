/*
 * snaploader-helper: runs the init program, then becomes the runtime.
 *
 *   snaploader-helper <init program> [<arg>...] -- <runtime> [<arg>...]
 *
 * The wrapper execs this with `<node> <init.js> -- <runtime argv>`, so it has
 * the PID Lambda started. It runs the init program as a child and serves its
 * requests over a socketpair (protocol: docs/architecture.md, "The control
 * protocol"): it creates memfds (no MFD_CLOEXEC, so the runtime inherits them)
 * that the child fills through /proc/<our pid>/fd/N, and records environment
 * changes. When the child sends DONE and exits 0, the helper seals every memfd,
 * applies the environment changes and execs the runtime, which keeps our PID
 * and the memfds. Any other outcome is a failure: the helper says why and
 * exits 1, or with SNAPLOADER_ON_ERROR=continue starts the runtime untouched.
 * An init program still running after SNAPLOADER_TIMEOUT seconds (default 9, or 600
 * outside on-demand initialisation) is a failure too: its process group (it runs in one
 * of its own) gets SIGTERM, then SIGKILL a second later.
 *
 * Exit codes (shell conventions): 1 init failed, 2 usage, 126 the runtime
 * cannot be executed, 127 the runtime was not found.
 *
 * File descriptors this process inherited (Lambda's telemetry fd, stdio) are
 * never closed or reused: only fds created here are ever closed. Missing fds 0-2
 * get /dev/null first, so that nothing created here takes a stdio number.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../preload-c/log_json.h"

#ifdef SNAPLOADER_FUZZ
/* The fuzz targets in test/fuzz/ include this file and drive the protocol code directly. */
#define main snaploader_helper_main
int snaploader_helper_main(int argc, char **argv);
#endif

/* One request line, including its '\n': room for a value of ENV_STRING_MAX bytes even if every
 * byte of it is percent-encoded. The fuzz targets build with smaller limits. */
#ifndef REQUEST_MAX_BYTES
#define REQUEST_MAX_BYTES (512 * 1024)
#endif
/* The longest "NAME=value" string execve takes, with its NUL (Linux's MAX_ARG_STRLEN). */
#ifndef ENV_STRING_MAX
#define ENV_STRING_MAX (128 * 1024)
#endif
#define REPLY_MAX_BYTES 8192 /* one reply line, including its '\n'; also bounds messages */
#define MEMFD_NAME_MAX 249  /* longest name memfd_create accepts */
#define EXIT_INIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127
#define TIMEOUT_ON_DEMAND 9    /* s; Lambda gives an on-demand init 10 s */
#define TIMEOUT_OTHERWISE 600  /* s; SnapStart, provisioned concurrency */
#define TIMEOUT_MAX 3600       /* s; the largest SNAPLOADER_TIMEOUT accepted */
#define KILL_GRACE_MS 1000     /* SIGTERM, then SIGKILL this much later */
#define SEAL_BUSY_MS 1000      /* how long memfds may stay busy (EBUSY), in all, before sealing fails */
#define SEAL_FIRST_PAUSE_MS 5  /* the first pause between sealing attempts; it doubles */
#define SEAL_MAX_PAUSE_MS 100  /* up to this */
#define NO_DEADLINE INT64_MAX /* for serve_requests without a child (the fuzz targets) */

struct memfd {
	int fd;
	char *name;
};

struct env_change {
	char *name;
	char *value; /* NULL: unset */
};

static int debug;
static volatile sig_atomic_t child_pid; /* > 0 while signals are forwarded to it */
static volatile sig_atomic_t child_exited; /* a SIGCHLD arrived */

static struct memfd *memfds;
static size_t n_memfds, cap_memfds;
static struct env_change *env_changes;
static size_t n_env_changes, cap_env_changes;

static int got_done;
static char *init_error; /* the ERROR message, decoded; NULL if none */

static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP };
#define N_FORWARDED (sizeof forwarded_signals / sizeof forwarded_signals[0])
static struct sigaction saved_actions[N_FORWARDED], saved_sigchld;
static sigset_t saved_mask;
static sigset_t wait_mask; /* the mask while waiting in ppoll: saved_mask, SIGCHLD unblocked */

/* ---------------------------------------------------------------- messages */

static int log_min; /* 0: text lines; else JSON lines from this level up (preload-c/log_json.h) */

/* The errorCode of a failure that starts with one ("SOURCE_NOT_FOUND: ..."), else NULL. */
static const char *failure_code(const char *failure, char *code, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size && ((failure[i] >= 'A' && failure[i] <= 'Z') || failure[i] == '_' ||
				     (i > 0 && failure[i] >= '0' && failure[i] <= '9'));
	     i++)
		code[i] = failure[i];
	code[i] = '\0';
	return i > 0 && failure[i] == ':' && failure[i + 1] == ' ' ? code : NULL;
}

/*
 * Every line the helper writes: `<text_prefix><message>` as always, or with
 * AWS_LAMBDA_LOG_FORMAT=JSON one JSON object, and nothing below AWS_LAMBDA_LOG_LEVEL. `code`
 * is the errorCode (NULL: the one the message starts with, if any).
 */
static void say(int level, const char *text_prefix, const char *code, const char *message)
{
	static char line[6 * (REPLY_MAX_BYTES + 512) + SNAP_JSON_TAIL + 128];
	char found[48];
	const char *parts[1] = { message };
	size_t n;

	if (!log_min) {
		fprintf(stderr, "%s%s\n", text_prefix, message);
		return;
	}
	if (level < log_min)
		return;
	if (!code && level >= SNAP_WARN)
		code = failure_code(message, found, sizeof found);
	if (!code && level == SNAP_ERROR)
		code = "INIT_FAILED"; /* the helper's own failures: the message says which */
	n = snap_json_line(line, sizeof line, level, "helper", code, parts, 1);
	fwrite(line, 1, n, stderr);
}

static void sayf(int level, const char *text_prefix, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void sayf(int level, const char *text_prefix, const char *code, const char *fmt, ...)
{
	char message[REPLY_MAX_BYTES + 512]; /* a failure (up to REPLY_MAX_BYTES + 256) and our words */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	say(level, text_prefix, code, message);
}

static void debug_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void debug_msg(const char *fmt, ...)
{
	char line[1024], shown[1024 + 4];
	va_list ap;
	int n;
	size_t i;

	if (!debug)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* Requests are printed as received: keep each debug message on one line. */
	for (i = 0; line[i]; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	snprintf(shown, sizeof shown, "%s%s", line, (size_t)n >= sizeof line ? "..." : "");
	say(SNAP_DEBUG, "snaploader-helper: ", NULL, shown);
}

/* Copies text for a one-line message: control characters become spaces. */
static void one_line(char *out, size_t out_size, const char *text)
{
	size_t i;

	for (i = 0; text[i] && i + 1 < out_size; i++)
		out[i] = ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) ? ' ' : text[i];
	out[i] = '\0';
}

static const char *signal_name(int sig)
{
	static const struct { int sig; const char *name; } names[] = {
		{ SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" },
		{ SIGILL, "SIGILL" }, { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" },
		{ SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" }, { SIGKILL, "SIGKILL" },
		{ SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
		{ SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" },
		{ SIGCHLD, "SIGCHLD" }, { SIGCONT, "SIGCONT" }, { SIGSTOP, "SIGSTOP" },
		{ SIGTSTP, "SIGTSTP" }, { SIGTTIN, "SIGTTIN" }, { SIGTTOU, "SIGTTOU" },
		{ SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" }, { SIGXFSZ, "SIGXFSZ" },
		{ SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" }, { SIGWINCH, "SIGWINCH" },
		{ SIGIO, "SIGIO" }, { SIGSYS, "SIGSYS" },
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].sig == sig)
			return names[i].name;
	return NULL;
}

/* --------------------------------------------------------------- settings */

/*
 * The settings grammar (docs/architecture.md, "Settings grammar"), shared by every component:
 * surrounding ASCII whitespace is ignored, a value that is blank after that is the default,
 * words compare ASCII case-insensitively. setting_word reads an enumeration: the index of the
 * word in `words`, `fallback` when unset or blank, or -1 when the value is none of them;
 * `*value`/`*len` are the trimmed value, to quote in a message. A number is read as a word of
 * an empty list, and then checked digit by digit.
 */

static int is_setting_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int setting_word(const char *name, const char *const words[], int fallback, const char **value, size_t *len)
{
	const char *v = getenv(name);
	size_t n, i, w;

	*value = "";
	*len = 0;
	if (!v)
		return fallback;
	while (is_setting_space(*v))
		v++;
	for (n = strlen(v); n > 0 && is_setting_space(v[n - 1]); n--)
		;
	*value = v;
	*len = n;
	if (n == 0)
		return fallback;
	for (w = 0; words[w]; w++) {
		for (i = 0; i < n && words[w][i]; i++) {
			char c = v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] - 'A' + 'a') : v[i];
			if (c != words[w][i])
				break;
		}
		if (i == n && !words[w][i])
			return (int)w;
	}
	return -1;
}

/* A switch: 1 for 1/true/yes/on, 0 for 0/false/no/off or blank, -1 for anything else. */
static int setting_switch(const char *name, const char **value, size_t *len)
{
	static const char *const words[] = { "0", "false", "no", "off", "1", "true", "yes", "on", NULL };
	int w = setting_word(name, words, 0, value, len);

	return w < 0 ? -1 : w >= 4;
}

/* ------------------------------------------------------- percent-encoding */

static int must_encode(unsigned char c)
{
	return c <= 0x20 || c == '%' || c >= 0x7f;
}

/* Encodes src into out (always NUL-terminated), cutting at a whole byte. */
static void percent_encode(char *out, size_t out_size, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	const unsigned char *s;

	for (s = (const unsigned char *)src; *s; s++) {
		if (must_encode(*s)) {
			if (o + 3 >= out_size)
				break;
			out[o++] = '%';
			out[o++] = hex[*s >> 4];
			out[o++] = hex[*s & 15];
		} else {
			if (o + 1 >= out_size)
				break;
			out[o++] = (char)*s;
		}
	}
	out[o] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Decodes a field in place. Returns NULL on success, or why it is malformed:
 * a byte that should have been encoded, a bad %XX, or an encoded NUL.
 */
static const char *percent_decode(char *field)
{
	char *in = field, *out = field;

	while (*in) {
		unsigned char c = (unsigned char)*in;
		if (c == '%') {
			int hi = hex_value(in[1]), lo = hi < 0 ? -1 : hex_value(in[2]);
			if (hi < 0 || lo < 0)
				return "'%' is not followed by two hex digits";
			if (hi == 0 && lo == 0)
				return "it contains an encoded NUL byte (%00)";
			*out++ = (char)(hi << 4 | lo);
			in += 3;
		} else if (must_encode(c)) {
			return "it contains a byte that must be percent-encoded";
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
	return NULL;
}

/* -------------------------------------------------------- control socket */

static void send_reply(int sock, const char *reply)
{
	char line[REPLY_MAX_BYTES];
	size_t len, off = 0;

	len = (size_t)snprintf(line, sizeof line - 1, "%s", reply);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	debug_msg("reply: %.*s", (int)len - 1, line);
	while (off < len) {
		ssize_t n = send(sock, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* The child is gone or broken; its exit status tells the story. */
			debug_msg("cannot send the reply: %s", strerror(errno));
			return;
		}
		off += (size_t)n;
	}
}

static void reply_err(int sock, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_err(int sock, const char *fmt, ...)
{
	char message[REPLY_MAX_BYTES / 3], encoded[REPLY_MAX_BYTES - 8], reply[REPLY_MAX_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	percent_encode(encoded, sizeof encoded, message);
	snprintf(reply, sizeof reply, "ERR %s", encoded);
	send_reply(sock, reply);
}

/* --------------------------------------------------------------- requests */

static int valid_env_name(const char *name)
{
	const char *p;

	if (!((*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z') || *name == '_'))
		return 0;
	for (p = name + 1; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

/* Digits only, no sign, no overflow. Returns 0 on success. */
static int parse_size(const char *s, off_t *out)
{
	int64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if ((int64_t)(off_t)v != v)
		return -1;
	*out = (off_t)v;
	return 0;
}

static void *grow(void *array, size_t *cap, size_t elem_size)
{
	size_t new_cap = *cap ? *cap * 2 : 16;
	void *p = realloc(array, new_cap * elem_size);

	if (p)
		*cap = new_cap;
	return p;
}

static void request_memfd(int sock, char *size_field, char *name)
{
	const char *why;
	char shown[300], reply[32];
	off_t size;
	int fd;

	if (parse_size(size_field, &size) < 0) {
		char s[64];
		one_line(s, sizeof s, size_field);
		reply_err(sock, "bad memfd size \"%s\": expected a decimal number of bytes (digits only, at most %lld)",
			  s, (long long)INT64_MAX);
		return;
	}
	if ((why = percent_decode(name))) {
		reply_err(sock, "bad memfd name: %s", why);
		return;
	}
	if (strlen(name) > MEMFD_NAME_MAX)
		name[MEMFD_NAME_MAX] = '\0';
	one_line(shown, sizeof shown, name);
	if (n_memfds == cap_memfds) {
		struct memfd *p = grow(memfds, &cap_memfds, sizeof *memfds);
		if (!p) {
			reply_err(sock, "cannot create memfd \"%s\": %s", shown, strerror(errno));
			return;
		}
		memfds = p;
	}
	fd = memfd_create(name, MFD_ALLOW_SEALING);
	if (fd < 0) {
		reply_err(sock, "cannot create memfd \"%s\": %s", shown, strerror(errno));
		return;
	}
	while (ftruncate(fd, size) < 0) {
		if (errno == EINTR)
			continue;
		reply_err(sock, "cannot resize memfd \"%s\" to %lld bytes: %s", shown, (long long)size, strerror(errno));
		close(fd);
		return;
	}
	memfds[n_memfds].fd = fd;
	memfds[n_memfds].name = strdup(shown);
	if (!memfds[n_memfds].name) {
		reply_err(sock, "cannot create memfd \"%s\": %s", shown, strerror(errno));
		close(fd);
		return;
	}
	n_memfds++;
	snprintf(reply, sizeof reply, "OK %d", fd);
	send_reply(sock, reply);
}

/* value == NULL: UNSETENV */
static void request_env(int sock, char *name, char *value)
{
	const char *verb = value ? "SETENV" : "UNSETENV", *why;
	char shown[128];

	if ((why = percent_decode(name))) {
		reply_err(sock, "%s: bad variable name: %s", verb, why);
		return;
	}
	if (!valid_env_name(name)) {
		one_line(shown, sizeof shown, name);
		reply_err(sock, "%s: \"%s\" is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)", verb, shown);
		return;
	}
	if (value && (why = percent_decode(value))) {
		reply_err(sock, "SETENV %s: bad value: %s", name, why);
		return;
	}
	if (value && strlen(name) + 1 + strlen(value) + 1 > ENV_STRING_MAX) {
		reply_err(sock, "SETENV %s: a value of %zu bytes is too long: %s=<value> may have at most %d bytes with its NUL (the kernel's limit for one environment string)",
			  name, strlen(value), name, ENV_STRING_MAX);
		return;
	}
	if (n_env_changes == cap_env_changes) {
		struct env_change *p = grow(env_changes, &cap_env_changes, sizeof *env_changes);
		if (!p) {
			reply_err(sock, "%s %s: %s", verb, name, strerror(errno));
			return;
		}
		env_changes = p;
	}
	env_changes[n_env_changes].name = strdup(name);
	env_changes[n_env_changes].value = value ? strdup(value) : NULL;
	if (!env_changes[n_env_changes].name || (value && !env_changes[n_env_changes].value)) {
		reply_err(sock, "%s %s: %s", verb, name, strerror(errno));
		free(env_changes[n_env_changes].name);
		free(env_changes[n_env_changes].value);
		return;
	}
	n_env_changes++;
	send_reply(sock, "OK");
}

static void request_error(int sock, char *message)
{
	const char *why;
	char *copy;

	if ((why = percent_decode(message))) {
		reply_err(sock, "ERROR: bad message: %s", why);
		return;
	}
	copy = strdup(message);
	if (!copy) {
		reply_err(sock, "ERROR: %s", strerror(errno));
		return;
	}
	free(init_error);
	init_error = copy;
	send_reply(sock, "OK");
}

/* Handles one line (without its '\n'). Malformed requests change nothing. */
static void handle_request(int sock, char *line)
{
	char *fields[4];
	size_t n = 0;
	char *p = line, verb[32];

	debug_msg("request: %s", line);
	/* Fields are separated by exactly one space; a field may be empty. */
	for (;;) {
		char *sp = strchr(p, ' ');
		if (n == sizeof fields / sizeof fields[0]) {
			n++;
			break;
		}
		fields[n++] = p;
		if (!sp)
			break;
		*sp = '\0';
		p = sp + 1;
	}

	if (!strcmp(fields[0], "MEMFD") && n == 3)
		request_memfd(sock, fields[1], fields[2]);
	else if (!strcmp(fields[0], "SETENV") && n == 3)
		request_env(sock, fields[1], fields[2]);
	else if (!strcmp(fields[0], "UNSETENV") && n == 2)
		request_env(sock, fields[1], NULL);
	else if (!strcmp(fields[0], "ERROR") && n == 2)
		request_error(sock, fields[1]);
	else if (!strcmp(fields[0], "DONE") && n == 1) {
		got_done = 1;
		send_reply(sock, "OK");
	} else if (!strcmp(fields[0], "MEMFD") || !strcmp(fields[0], "SETENV") || !strcmp(fields[0], "UNSETENV") ||
		   !strcmp(fields[0], "ERROR") || !strcmp(fields[0], "DONE"))
		reply_err(sock, "%s: wrong number of fields (%zu%s)", fields[0], n > 3 ? (size_t)3 : n - 1,
			  n > 3 ? " or more" : "");
	else {
		one_line(verb, sizeof verb, fields[0]);
		reply_err(sock, "unknown request \"%s\"", verb);
	}
}

/* ------------------------------------------------------------------ clock */

/* Milliseconds on the monotonic clock: wall-clock steps do not move deadlines. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ppoll's timeout for the time left until `deadline` (> 0 ms). */
static struct timespec time_left(int64_t deadline)
{
	int64_t left = deadline - now_ms();
	struct timespec ts;

	if (left > (int64_t)TIMEOUT_MAX * 2000) /* NO_DEADLINE: wake up now and then, harmlessly */
		left = (int64_t)TIMEOUT_MAX * 2000;
	ts.tv_sec = (time_t)(left / 1000);
	ts.tv_nsec = (long)(left % 1000) * 1000000;
	return ts;
}

/* Whether the child has exited, without reaping it (so its pid cannot be reused yet). */
static int child_has_exited(pid_t pid)
{
	siginfo_t info;

	memset(&info, 0, sizeof info);
	if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno != EINTR; /* ECHILD: nothing to wait for; let the caller's waitpid say so */
	return info.si_pid == pid;
}

/*
 * Waits until the child has exited (1) or the deadline passed (0). SIGCHLD is blocked except
 * inside ppoll, so an exit between the check and the wait still ends the wait at once.
 */
static int wait_exit_until(pid_t pid, int64_t deadline)
{
	for (;;) {
		struct timespec ts;

		if (child_has_exited(pid))
			return 1;
		if (now_ms() >= deadline)
			return 0;
		ts = time_left(deadline);
		ppoll(NULL, 0, &ts, &wait_mask);
	}
}

/* ------------------------------------------------------------------ serving */

enum served {
	SERVED_EOF,          /* the child closed its end */
	SERVED_CHILD_EXITED, /* the child exited; what it had sent was served (a grandchild may hold the socket) */
	SERVED_TIMEOUT,      /* the deadline passed */
	SERVED_ERROR,        /* the socket cannot be read (errno set) */
};

/* Input not yet served: at most one line, or the end of one too long to serve. The bytes live
 * in one static buffer (request_buf), touched only as far as lines reach. */
struct line_buffer {
	char *buf; /* REQUEST_MAX_BYTES + 1 bytes */
	size_t len, scanned;
	int discarding; /* inside a line longer than REQUEST_MAX_BYTES */
};

static char request_buf[REQUEST_MAX_BYTES + 1];

/* Serves every complete line in b, after new bytes were appended to it; what is left of an
 * unfinished line is moved to the front once, whatever the number of lines served. */
static void serve_lines(int sock, struct line_buffer *b)
{
	size_t start = 0;

	for (;;) {
		char *line = b->buf + start, *nl = memchr(b->buf + b->scanned, '\n', b->len - b->scanned);
		size_t line_len;
		if (!nl) {
			b->scanned = b->len;
			break;
		}
		line_len = (size_t)(nl - line);
		if (b->discarding) {
			b->discarding = 0;
			reply_err(sock, "request line is longer than %d bytes", REQUEST_MAX_BYTES);
		} else if (memchr(line, '\0', line_len)) {
			reply_err(sock, "request line contains a NUL byte");
		} else {
			*nl = '\0';
			handle_request(sock, line);
		}
		start += line_len + 1;
		b->scanned = start;
	}
	if (start > 0) {
		memmove(b->buf, b->buf + start, b->len - start);
		b->len -= start;
		b->scanned -= start;
	}
	if (b->len == REQUEST_MAX_BYTES) { /* full and still no '\n' */
		b->discarding = 1;
		b->len = b->scanned = 0;
	}
}

/*
 * Serves requests until the child closes its end, the child exits (pid > 0) or the deadline
 * passes. A child that exits while a grandchild still holds the socket does not keep the
 * helper waiting: what it sent before exiting is served, then the helper moves on.
 */
static enum served serve_requests(int sock, pid_t pid, int64_t deadline)
{
	struct line_buffer b;
	int draining = 0; /* the child has exited: serve what is queued, wait for nothing */

	b.buf = request_buf;
	b.len = b.scanned = 0;
	b.discarding = 0;
	for (;;) {
		ssize_t n;

		if (now_ms() >= deadline)
			return SERVED_TIMEOUT;
		if (!draining && pid > 0 && child_exited && child_has_exited(pid))
			draining = 1;
		if (!draining) {
			struct pollfd pfd;
			struct timespec ts = time_left(deadline);
			int r;

			pfd.fd = sock;
			pfd.events = POLLIN;
			pfd.revents = 0;
			r = ppoll(&pfd, 1, &ts, &wait_mask);
			if (r < 0 && errno != EINTR)
				return SERVED_ERROR;
			if (r <= 0)
				continue; /* a signal (SIGCHLD?) or the deadline: checked above */
		}
		n = recv(sock, b.buf + b.len, REQUEST_MAX_BYTES - b.len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (draining) {
				if (b.len > 0 || b.discarding)
					debug_msg("ignoring an unfinished last line: the init program has exited");
				return SERVED_CHILD_EXITED;
			}
			continue;
		}
		/* ECONNRESET: the child exited with a reply unread (e.g. after DONE); that is its end too. */
		if (n < 0 && errno != ECONNRESET)
			return SERVED_ERROR;
		if (n <= 0) {
			if (b.len > 0 || b.discarding)
				debug_msg("ignoring an unfinished last line at end of input");
			return SERVED_EOF;
		}
		b.len += (size_t)n;
		serve_lines(sock, &b);
	}
}

/* ------------------------------------------------------------ child, signals */

static void forward_signal(int sig)
{
	int saved_errno = errno;
	pid_t pid = child_pid;

	if (pid > 0)
		kill(pid, sig);
	errno = saved_errno;
}

/* Wakes the ppoll that waits for the child (see wait_mask). */
static void note_child_exit(int sig)
{
	(void)sig;
	child_exited = 1;
}

/* Blocks the forwarded signals and SIGCHLD (SIGCHLD then arrives only inside ppoll). */
static void block_handled_signals(void)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < N_FORWARDED; i++)
		sigaddset(&set, forwarded_signals[i]);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

/* Puts back the dispositions and the mask the helper started with (SIGCHLD included: a
 * caller that ignores it passes that on to the runtime, as before the helper existed). */
static void restore_signals(void)
{
	size_t i;

	for (i = 0; i < N_FORWARDED; i++)
		sigaction(forwarded_signals[i], &saved_actions[i], NULL);
	sigaction(SIGCHLD, &saved_sigchld, NULL);
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
}

/* Runs in the child: never returns. */
static void exec_init_program(char **init_argv, int child_sock, pid_t helper_pid)
{
	char num[32], message[REPLY_MAX_BYTES / 3], encoded[REPLY_MAX_BYTES - 16], line[REPLY_MAX_BYTES];
	int flags = fcntl(child_sock, F_GETFD), err;
	size_t len, off = 0;

	restore_signals();
	if (flags < 0 || fcntl(child_sock, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
		err = errno;
		snprintf(message, sizeof message, "cannot pass the control socket to the init program: %s", strerror(err));
		goto fail;
	}
	/* LD_PRELOAD (our preload library first) and NODE_OPTIONS are the runtime's: the init
	 * program is a plain Node.js process of ours, not to be redirected or --require'd into.
	 * The runtime still gets both, from our own environment. */
	if (unsetenv("LD_PRELOAD") < 0 || unsetenv("NODE_OPTIONS") < 0)
		goto setenv_failed;
	snprintf(num, sizeof num, "%d", child_sock);
	if (setenv("SNAPLOADER_CONTROL_FD", num, 1) < 0)
		goto setenv_failed;
	snprintf(num, sizeof num, "%ld", (long)helper_pid);
	if (setenv("SNAPLOADER_HELPER_PID", num, 1) < 0)
		goto setenv_failed;
	execvp(init_argv[0], init_argv);
	err = errno;
	snprintf(message, sizeof message, "cannot start init program %s: %s", init_argv[0], strerror(err));
	goto fail;
setenv_failed:
	snprintf(message, sizeof message, "cannot start init program %s: %s", init_argv[0], strerror(errno));
fail:
	percent_encode(encoded, sizeof encoded, message);
	len = (size_t)snprintf(line, sizeof line, "ERROR %s\n", encoded);
	while (off < len) {
		ssize_t n = send(child_sock, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	_exit(EXIT_NOT_FOUND);
}

/*
 * Starts the init program with the child's end of the control socket.
 * Returns its pid, or -1 with a message in `failure`.
 */
static pid_t start_init_program(char **init_argv, int sock[2], char *failure, size_t failure_size)
{
	struct sigaction sa;
	sigset_t mask;
	pid_t helper_pid = getpid(), pid;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* Block first so no signal is lost or half-handled while the child starts. */
	sigprocmask(SIG_BLOCK, NULL, &saved_mask);
	block_handled_signals();
	for (i = 0; i < N_FORWARDED; i++)
		sigaction(forwarded_signals[i], &sa, &saved_actions[i]);
	/* Our own SIGCHLD handler: it wakes the waits below, and a caller that ignores SIGCHLD
	 * (children reaped by the kernel, waitpid failing with ECHILD) cannot hide the outcome. */
	sa.sa_handler = note_child_exit;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, &saved_sigchld);
	child_exited = 0;

	pid = fork();
	if (pid == 0) {
		/* Its own process group, so that a timeout stops whatever it started too. */
		setpgid(0, 0);
		close(sock[0]);
		exec_init_program(init_argv, sock[1], helper_pid);
	}
	if (pid > 0)
		setpgid(pid, pid); /* also here, so the group exists before any signal is sent to it */
	if (pid < 0) {
		snprintf(failure, failure_size, "cannot start init program %s: fork: %s", init_argv[0], strerror(errno));
		restore_signals();
		return -1;
	}
	child_pid = pid;
	/* The caller's mask again, but SIGCHLD only inside ppoll (wait_mask), so no exit is missed. */
	mask = saved_mask;
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	wait_mask = saved_mask;
	sigdelset(&wait_mask, SIGCHLD);
	debug_msg("started init program %s (pid %ld)", init_argv[0], (long)pid);
	return pid;
}

/* A signal for the init program's process group (it and what it started), or for the init
 * program alone if it has no group of its own. */
static void signal_init_group(pid_t pid, int sig)
{
	if (kill(-pid, sig) < 0)
		kill(pid, sig);
}

/*
 * The init program is past its deadline: SIGTERM to its process group, and SIGKILL to the
 * group once the init program has exited or the grace period is over, so that nothing it
 * started (a grandchild that ignores SIGTERM) outlives it. The init program is not reaped
 * yet, so its group id cannot be reused by then.
 */
static void stop_init_program(pid_t pid, int timeout_s)
{
	debug_msg("init program (pid %ld) still running after %d s: sending SIGTERM", (long)pid, timeout_s);
	signal_init_group(pid, SIGTERM);
	if (!wait_exit_until(pid, now_ms() + KILL_GRACE_MS))
		debug_msg("init program (pid %ld) still running %d ms after SIGTERM: sending SIGKILL", (long)pid,
			  KILL_GRACE_MS);
	signal_init_group(pid, SIGKILL);
}

/* Reaps the child once it has exited (or waits for it) and stops forwarding signals to it. */
static int wait_init_program(pid_t pid)
{
	siginfo_t info;
	int status;

	/* Wait without reaping, so the pid cannot be reused while a signal is forwarded. */
	do
		memset(&info, 0, sizeof info);
	while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR);
	block_handled_signals();
	child_pid = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			sayf(SNAP_ERROR, "snaploader: ", "HELPER_FAILED", "cannot wait for the init program (pid %ld): %s", (long)pid,
			     strerror(errno));
			status = EXIT_INIT_FAILED << 8; /* report it as a failed exit */
			break;
		}
	}
	restore_signals();
	return status;
}

/* ------------------------------------------------------------------- outcome */

static void describe_exit(char *out, size_t out_size, int status)
{
	if (WIFSIGNALED(status)) {
		const char *name = signal_name(WTERMSIG(status));
		if (name)
			snprintf(out, out_size, "init program was killed by signal %d (%s)", WTERMSIG(status), name);
		else
			snprintf(out, out_size, "init program was killed by signal %d", WTERMSIG(status));
	} else if (WEXITSTATUS(status) != 0) {
		snprintf(out, out_size, got_done ? "init program exited with status %d after DONE"
						 : "init program exited with status %d before finishing",
			 WEXITSTATUS(status));
	} else {
		snprintf(out, out_size, "init program exited without finishing (no DONE)");
	}
}

/*
 * Adds the seals to one memfd. F_SEAL_WRITE fails with EBUSY while some process still maps the
 * file shared and writable, or while a page of it still has an extra reference after the kernel
 * waited ~150 ms for it (memfd_wait_for_pins; page migration by compaction holds one briefly).
 * Both can pass, so EBUSY is retried with a growing pause until `*give_up` (set at the first
 * EBUSY of all the memfds: SEAL_BUSY_MS in all, not per memfd).
 */
static int seal_memfd(const struct memfd *m, int seals, int64_t *give_up)
{
	int pause_ms = SEAL_FIRST_PAUSE_MS;

	while (fcntl(m->fd, F_ADD_SEALS, seals) < 0) {
		struct timespec ts;
		int64_t left_ms;

		if (errno != EBUSY)
			return -1;
		if (!*give_up)
			*give_up = now_ms() + SEAL_BUSY_MS;
		left_ms = *give_up - now_ms();
		if (left_ms <= 0)
			return -1; /* errno is still EBUSY */
		debug_msg("memfd \"%s\" (fd %d) is busy; sealing again in %d ms (%lld ms left)", m->name, m->fd, pause_ms,
			  (long long)left_ms);
		ts.tv_sec = 0;
		ts.tv_nsec = (long)pause_ms * 1000000;
		nanosleep(&ts, NULL);
		pause_ms = pause_ms * 2 > SEAL_MAX_PAUSE_MS ? SEAL_MAX_PAUSE_MS : pause_ms * 2;
	}
	return 0;
}

static int seal_memfds(char *failure, size_t failure_size)
{
	const int seals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
	int64_t give_up = 0;
	size_t i;

	for (i = 0; i < n_memfds; i++) {
		if (seal_memfd(&memfds[i], seals, &give_up) == 0)
			continue;
		if (errno == EBUSY)
			snprintf(failure, failure_size,
				 "cannot seal memfd \"%s\" (fd %d): still busy (EBUSY) after %d ms of retries: a process "
				 "may still map it writable, or the kernel still holds one of its pages; start the function "
				 "again (SNAPLOADER_DEBUG=1 shows each retry)",
				 memfds[i].name, memfds[i].fd, SEAL_BUSY_MS);
		else
			snprintf(failure, failure_size, "cannot seal memfd \"%s\" (fd %d): %s", memfds[i].name,
				 memfds[i].fd, strerror(errno));
		return -1;
	}
	debug_msg("sealed %zu memfd%s", n_memfds, n_memfds == 1 ? "" : "s");
	return 0;
}

static int apply_env_changes(char *failure, size_t failure_size)
{
	size_t i;

	for (i = 0; i < n_env_changes; i++) {
		const struct env_change *c = &env_changes[i];
		int r = c->value ? setenv(c->name, c->value, 1) : unsetenv(c->name);
		if (r < 0) {
			snprintf(failure, failure_size, "cannot %s %s: %s", c->value ? "set" : "unset", c->name,
				 strerror(errno));
			return -1;
		}
		debug_msg("%s %s", c->value ? "setenv" : "unsetenv", c->name);
	}
	return 0;
}

/* The failure path: the runtime starts untouched, or not at all. */
static void fail_or_continue(const char *failure, int continue_on_error)
{
	size_t i;

	if (!continue_on_error) {
		say(SNAP_ERROR, "snaploader: ", NULL, failure);
		exit(EXIT_INIT_FAILED);
	}
	sayf(SNAP_WARN, "snaploader: warning: ", NULL,
	     "%s; starting the runtime without the archive (SNAPLOADER_ON_ERROR=continue)", failure);
	for (i = 0; i < n_memfds; i++)
		close(memfds[i].fd);
	n_memfds = 0;
	n_env_changes = 0;
}

static void exec_runtime(char **runtime_argv)
{
	char cmd[512] = "";
	size_t used = 0, i;
	int err;

	for (i = 0; runtime_argv[i] && used < sizeof cmd; i++)
		used += (size_t)snprintf(cmd + used, sizeof cmd - used, "%s%s", i ? " " : "", runtime_argv[i]);
	debug_msg("exec %s", cmd);
	execvp(runtime_argv[0], runtime_argv);
	err = errno;
	sayf(SNAP_ERROR, "snaploader: ", "RUNTIME_NOT_STARTED", "cannot execute %s: %s", runtime_argv[0], strerror(err));
	exit(err == ENOENT || err == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/*
 * The seconds the init program may run: SNAPLOADER_TIMEOUT (a number in the settings grammar:
 * digits only once surrounding whitespace is dropped, 1..3600), else 9 for an on-demand init
 * (AWS_LAMBDA_INITIALIZATION_TYPE unset, blank or "on-demand") and 600 for any other
 * (snap-start, provisioned-concurrency). Returns -1 with a message if invalid.
 */
static int init_timeout(int *seconds, char *failure, size_t failure_size)
{
	static const char *const no_words[] = { NULL }, *const on_demand[] = { "on-demand", NULL };
	const char *v, *type;
	size_t len, type_len, i;
	long n = 0;
	char shown[64];

	/* A number is read as a word that matches none: blank gives the fallback (-2). */
	if (setting_word("SNAPLOADER_TIMEOUT", no_words, -2, &v, &len) == -2) {
		int t = setting_word("AWS_LAMBDA_INITIALIZATION_TYPE", on_demand, 0, &type, &type_len);
		*seconds = t == 0 ? TIMEOUT_ON_DEMAND : TIMEOUT_OTHERWISE;
		return 0;
	}
	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9' && n <= TIMEOUT_MAX; i++)
		n = n * 10 + (v[i] - '0');
	if (i < len || n < 1 || n > TIMEOUT_MAX) {
		one_line(shown, len + 1 < sizeof shown ? len + 1 : sizeof shown, v);
		snprintf(failure, failure_size,
			 "SNAPLOADER_TIMEOUT=\"%s%s\" is not valid: give the whole seconds the init program may run, "
			 "from 1 to %d (digits only)",
			 shown, len >= sizeof shown ? "..." : "", TIMEOUT_MAX);
		return -1;
	}
	*seconds = (int)n;
	return 0;
}

/*
 * Fds 0-2 that the helper was started without get /dev/null, before anything is opened:
 * otherwise the control socket or a memfd would take that number, and the helper's own
 * messages, the init program's stderr or the runtime's would go into it. Exits if /dev/null
 * cannot be opened (the message then goes wherever fd 2 leads, if anywhere).
 */
static void ensure_stdio(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		int got;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		got = open("/dev/null", O_RDWR);
		if (got != fd) {
			int err = got < 0 ? errno : EBADF;
			dprintf(2, "snaploader: cannot open /dev/null for the closed fd %d: %s\n", fd, strerror(err));
			exit(EXIT_INIT_FAILED);
		}
	}
}

static void usage(const char *problem)
{
	say(SNAP_ERROR, "snaploader: ", "HELPER_USAGE", problem);
	fprintf(stderr, "usage: snaploader-helper <init program> [<arg>...] -- <runtime> [<arg>...]\n");
	exit(EXIT_USAGE);
}

/* --------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static const char *const on_error_words[] = { "fail", "continue", NULL };
	const char *value;
	size_t len;
	int continue_on_error;
	char failure[REPLY_MAX_BYTES + 256] = "", shown[64];
	char **init_argv, **runtime_argv;
	int sock[2] = { -1, -1 }, sep, status, timeout_s = 0;
	int64_t deadline;
	pid_t pid;

	ensure_stdio();
	log_min = snap_log_min_level(getenv("AWS_LAMBDA_LOG_FORMAT"), getenv("AWS_LAMBDA_LOG_LEVEL"));
	/* A diagnostic switch: a value it does not know turns it on, with a warning, never stops us. */
	debug = setting_switch("SNAPLOADER_DEBUG", &value, &len);
	if (debug < 0) {
		debug = 1;
		one_line(shown, len + 1 < sizeof shown ? len + 1 : sizeof shown, value);
		sayf(SNAP_WARN, "snaploader-helper: warning: ", NULL,
		     "SNAPLOADER_DEBUG=\"%s%s\" is not one of 1, true, yes, on, 0, false, no, off: taken as on", shown,
		     len >= sizeof shown ? "..." : "");
	}
	/* An enumeration: a value it does not know stops the init before anything runs. */
	continue_on_error = setting_word("SNAPLOADER_ON_ERROR", on_error_words, 0, &value, &len);
	if (continue_on_error < 0) {
		one_line(shown, len + 1 < sizeof shown ? len + 1 : sizeof shown, value);
		sayf(SNAP_ERROR, "snaploader: ", "CONFIG_INVALID", "SNAPLOADER_ON_ERROR=\"%s%s\" is not valid: use fail or continue",
		     shown, len >= sizeof shown ? "..." : "");
		exit(EXIT_INIT_FAILED);
	}
	debug_msg("settings: on error %s; debug on", continue_on_error ? "continue" : "fail");

	/* 1. Parse the command line: <init program> [<arg>...] -- <runtime> [<arg>...] */
	for (sep = 1; sep < argc && strcmp(argv[sep], "--"); sep++)
		;
	if (sep == argc)
		usage("missing \"--\" between the init program and the runtime command");
	if (sep == 1)
		usage("missing the init program before \"--\"");
	if (sep == argc - 1)
		usage("missing the runtime command after \"--\"");
	init_argv = argv + 1;
	runtime_argv = argv + sep + 1;

	/* 2. Start the init program with one end of the control socket, and a deadline. */
	if (init_timeout(&timeout_s, failure, sizeof failure) < 0) {
		/* failure says why; the init program does not run */
	} else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) {
		snprintf(failure, sizeof failure, "cannot create the control socket: %s", strerror(errno));
	} else {
		debug_msg("init timeout %d s", timeout_s);
		argv[sep] = NULL; /* terminates init_argv; runtime_argv is already NULL-terminated */
		deadline = now_ms() + (int64_t)timeout_s * 1000;
		pid = start_init_program(init_argv, sock, failure, sizeof failure);
		close(sock[1]);

		/* 3. Serve its requests until it closes the socket or exits, then 4. wait for it,
		 * all within the deadline. */
		if (pid > 0) {
			int timed_out = 0;

			switch (serve_requests(sock[0], pid, deadline)) {
			case SERVED_TIMEOUT:
				timed_out = 1;
				break;
			case SERVED_ERROR:
				snprintf(failure, sizeof failure, "cannot read the control socket: %s", strerror(errno));
				close(sock[0]); /* so a child still writing gets EPIPE and ends */
				sock[0] = -1;
				break;
			case SERVED_EOF:
			case SERVED_CHILD_EXITED:
				break;
			}
			if (!timed_out && !wait_exit_until(pid, deadline))
				timed_out = 1;
			if (timed_out)
				stop_init_program(pid, timeout_s);
			status = wait_init_program(pid);
			debug_msg("init program %s %d%s", WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
				  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), got_done ? "" : " (no DONE)");
			if (timed_out) {
				snprintf(failure, sizeof failure,
					 "init program did not finish within %d s (SNAPLOADER_TIMEOUT=%d): check the network "
					 "to S3 and the archive size, or raise SNAPLOADER_TIMEOUT",
					 timeout_s, timeout_s);
			} else if (!failure[0] && !(got_done && WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
				if (init_error && *init_error)
					one_line(failure, sizeof failure, init_error);
				else
					describe_exit(failure, sizeof failure, status);
			}
		}
		if (sock[0] >= 0)
			close(sock[0]);
	}

	/* 5. Seal the memfds and 6. apply the environment changes, or fail. */
	if (!failure[0] && seal_memfds(failure, sizeof failure) == 0)
		apply_env_changes(failure, sizeof failure);
	if (failure[0])
		fail_or_continue(failure, continue_on_error);

	/* 7. Become the runtime: same PID, memfds inherited. */
	exec_runtime(runtime_argv);
	return EXIT_NOT_FOUND; /* not reached */
}
