/*
 * The benchmark's process runner: runs one command and reports what the kernel counted for it.
 *
 *   rusage-run [--cpus LIST] [--report-fd N] -- <command> [args...]
 *
 * --cpus LIST (e.g. "0", "1", "0-1", "0,2"): the command runs pinned to those CPUs
 * (sched_setaffinity before exec; its children inherit the mask). The command's stdin, stdout
 * and stderr are left as they are. On the report descriptor (default 3; it is not passed on to
 * the command) the runner writes the command's PID on a line of its own right after the fork,
 * so that the harness can follow the process while it runs, and, once it has exited, one JSON
 * line: wall time from before the fork to after wait4, and wait4's resource usage, which
 * covers the command and every descendant it (or they) reaped: user and system CPU time,
 * minor and major page faults, voluntary and involuntary context switches, and the largest
 * peak RSS among them. Exits with the command's status (128 + the signal if it was killed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, int err) {
  fprintf(stderr, "rusage-run: %s failed: %s\n", what, strerror(err));
  exit(125);
}

/* Parses "0", "0-3", "0,2-3" into `set`; returns 0, or -1 with a message on a malformed list. */
static int parse_cpus(const char *list, cpu_set_t *set) {
  CPU_ZERO(set);
  const char *p = list;
  while (*p) {
    char *end;
    long a = strtol(p, &end, 10);
    if (end == p || a < 0 || a >= CPU_SETSIZE) goto bad;
    long b = a;
    if (*end == '-') {
      p = end + 1;
      b = strtol(p, &end, 10);
      if (end == p || b < a || b >= CPU_SETSIZE) goto bad;
    }
    for (long c = a; c <= b; c++) CPU_SET((int)c, set);
    if (*end == ',') end++;
    else if (*end) goto bad;
    p = end;
  }
  if (CPU_COUNT(set) > 0) return 0;
bad:
  fprintf(stderr, "rusage-run: --cpus %s is not a CPU list (use e.g. 0, 1, 0-1 or 0,2)\n", list);
  return -1;
}

static double ms(const struct timeval *tv) { return tv->tv_sec * 1e3 + tv->tv_usec / 1e3; }

static double now_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) die("clock_gettime(CLOCK_MONOTONIC)", errno);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  const char *cpus = NULL;
  int report_fd = 3;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) cpus = argv[++i];
    else if (strcmp(argv[i], "--report-fd") == 0 && i + 1 < argc) report_fd = atoi(argv[++i]);
    else {
      fprintf(stderr, "rusage-run: unknown argument %s; usage: rusage-run [--cpus LIST] [--report-fd N] -- <command> [args...]\n", argv[i]);
      return 125;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "rusage-run: no command given; usage: rusage-run [--cpus LIST] [--report-fd N] -- <command> [args...]\n");
    return 125;
  }
  cpu_set_t set;
  if (cpus && parse_cpus(cpus, &set) != 0) return 125;
  FILE *report = fdopen(report_fd, "w");
  if (!report) die("fdopen of the report descriptor (the caller must open it)", errno);
  if (fcntl(report_fd, F_SETFD, FD_CLOEXEC) != 0) die("fcntl(FD_CLOEXEC) on the report descriptor", errno);

  double t0 = now_ms();
  pid_t pid = fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    if (cpus && sched_setaffinity(0, sizeof set, &set) != 0) {
      fprintf(stderr, "rusage-run: sched_setaffinity(%s) failed: %s\n", cpus, strerror(errno));
      _exit(125);
    }
    execvp(argv[i], &argv[i]);
    fprintf(stderr, "rusage-run: exec of %s failed: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  fprintf(report, "%d\n", (int)pid);
  fflush(report);

  int status = 0;
  struct rusage ru;
  pid_t got;
  do got = wait4(pid, &status, 0, &ru);
  while (got < 0 && errno == EINTR);
  if (got < 0) die("wait4 of the command", errno);
  double wall = now_ms() - t0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  fprintf(report,
          "{\"pid\":%d,\"wall_ms\":%.3f,\"user_ms\":%.3f,\"sys_ms\":%.3f,\"minflt\":%ld,\"majflt\":%ld,"
          "\"nvcsw\":%ld,\"nivcsw\":%ld,\"maxrss_kib\":%ld,\"exit\":%d,\"signal\":%d}\n",
          (int)pid, wall, ms(&ru.ru_utime), ms(&ru.ru_stime), ru.ru_minflt, ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw,
          ru.ru_maxrss, code, sig);
  if (fclose(report) != 0) die("writing the report", errno);
  return sig ? 128 + sig : code;
}
