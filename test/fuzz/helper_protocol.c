/*
 * Fuzz target: the helper's control-protocol server (bootstrap/snaploader-helper.c) on an
 * arbitrary byte stream from the "init program": line splitting, over-long lines, NUL bytes,
 * field splitting, percent-decoding, sizes, variable names, real memfds. Checks that every
 * reply is well formed, that there is at most one per line sent, that every OK <fd> is a
 * memfd the helper kept, and that only valid variable names, and environment strings within
 * the limit, are recorded.
 */
#include "helper_common.h"

#include <poll.h>
#include <pthread.h>

struct peer {
	int fd;
	const uint8_t *data;
	size_t size;
	char *replies;
	size_t len, cap;
};

/* The init program's side: writes the input and reads every reply, without blocking either
 * direction on the other (the helper answers while the rest of the input is still coming). */
static void *peer_main(void *arg)
{
	struct peer *p = arg;
	size_t sent = 0;
	int open_for_write = 1;

	fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
	for (;;) {
		struct pollfd pfd = { p->fd, POLLIN | (open_for_write ? POLLOUT : 0), 0 };
		if (open_for_write && sent == p->size) {
			shutdown(p->fd, SHUT_WR);
			open_for_write = 0;
			continue;
		}
		if (poll(&pfd, 1, -1) < 0)
			continue;
		if (open_for_write && (pfd.revents & POLLOUT)) {
			ssize_t n = send(p->fd, p->data + sent, p->size - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				open_for_write = 0; /* the helper closed its end */
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			if (p->cap - p->len < 65536) {
				p->cap = p->cap * 2 + 65536;
				p->replies = realloc(p->replies, p->cap);
				CHECK(p->replies != NULL, "realloc");
			}
			ssize_t n = recv(p->fd, p->replies + p->len, p->cap - p->len, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return NULL;
			if (n > 0)
				p->len += (size_t)n;
		}
	}
}

static void reset_state(void)
{
	for (size_t i = 0; i < n_memfds; i++) {
		close(memfds[i].fd);
		free(memfds[i].name);
	}
	for (size_t i = 0; i < n_env_changes; i++) {
		free(env_changes[i].name);
		free(env_changes[i].value);
	}
	n_memfds = n_env_changes = 0;
	free(init_error);
	init_error = NULL;
	got_done = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	debug = 1; /* the debug lines are built (and cut) too, then thrown away */
	stderr = fopen("/dev/null", "w");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer p = { -1, data, size, NULL, 0, 0 };
	pthread_t thread;
	int sv[2];
	size_t lines_sent = 0, replies = 0, ok_fds = 0;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	p.fd = sv[1];
	CHECK(pthread_create(&thread, NULL, peer_main, &p) == 0, "pthread_create");
	enum served outcome = serve_requests(sv[0], 0, NO_DEADLINE);
	CHECK(outcome == SERVED_EOF, "serve_requests returned %d", (int)outcome);
	close(sv[0]);
	pthread_join(thread, NULL);
	close(sv[1]);

	for (size_t i = 0; i < size; i++)
		lines_sent += data[i] == '\n';
	CHECK(p.len == 0 || p.replies[p.len - 1] == '\n', "the last reply is not a whole line");
	for (size_t at = 0; at < p.len;) {
		char *line = p.replies + at, *nl = memchr(line, '\n', p.len - at);
		size_t len = (size_t)(nl - line);
		*nl = '\0';
		at += len + 1;
		replies++;
		CHECK(len < REPLY_MAX_BYTES, "a reply of %zu bytes", len);
		CHECK(strlen(line) == len, "a reply with a NUL byte");
		if (!strcmp(line, "OK"))
			continue;
		if (!strncmp(line, "OK ", 3)) {
			char *end;
			long fd = strtol(line + 3, &end, 10);
			CHECK(*end == '\0' && line[3] >= '0' && line[3] <= '9', "bad reply \"%s\"", line);
			CHECK(ok_fds < n_memfds && memfds[ok_fds].fd == fd, "reply \"%s\" names no memfd the helper kept",
			      line);
			CHECK(fcntl((int)fd, F_GET_SEALS) >= 0, "fd %ld is not a sealable memfd", fd);
			ok_fds++;
			continue;
		}
		CHECK(!strncmp(line, "ERR ", 4) && line[4], "bad reply \"%s\"", line);
		char *decoded = malloc(len + 1);
		CHECK(decoded != NULL, "malloc");
		CHECK(ref_decode_field(line + 4, decoded), "ERR message not percent-encoded: \"%s\"", line);
		free(decoded);
	}
	CHECK(replies <= lines_sent, "%zu replies to %zu lines", replies, lines_sent);
	CHECK(ok_fds == n_memfds, "%zu memfds kept, %zu reported", n_memfds, ok_fds);
	for (size_t i = 0; i < n_env_changes; i++) {
		CHECK(valid_env_name(env_changes[i].name), "recorded variable name \"%s\"", env_changes[i].name);
		CHECK(!env_changes[i].value || strlen(env_changes[i].name) + strlen(env_changes[i].value) + 2 <= ENV_STRING_MAX,
		      "recorded %s=<%zu bytes>, over ENV_STRING_MAX", env_changes[i].name, strlen(env_changes[i].value));
	}
	free(p.replies);
	reset_state();
	return 0;
}
