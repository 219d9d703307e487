/*
 * Semaphore timings for bench/shm.mjs: the same code against glibc with /dev/shm and through
 * libsnaploader.so without it. Prints one number, nanoseconds per operation.
 *
 *   shm-bench post-wait <name> <iterations>   sem_post + sem_wait in one process (uncontended)
 *   shm-bench ping-pong <name> <iterations>   two processes hand a turn back and forth over
 *                                             two named semaphores: one round trip per iteration
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static sem_t *make(const char *name, const char *suffix) {
  char full[256];
  snprintf(full, sizeof full, "%s%s", name, suffix);
  sem_t *s = sem_open(full, O_CREAT | O_EXCL, 0600, 0);
  if (s == SEM_FAILED) {
    fprintf(stderr, "shm-bench: sem_open %s failed: %s\n", full, strerror(errno));
    exit(1);
  }
  sem_unlink(full);
  return s;
}

static double post_wait(const char *name, long n) {
  sem_t *s = make(name, "-pw");
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    sem_post(s);
    sem_wait(s);
  }
  return (now_ns() - t0) / n;
}

static double ping_pong(const char *name, long n) {
  sem_t *ping = make(name, "-ping"), *pong = make(name, "-pong");
  pid_t pid = fork();
  if (pid == 0) {
    for (long i = 0; i < n; i++) {
      sem_wait(ping);
      sem_post(pong);
    }
    _exit(0);
  }
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    sem_post(ping);
    sem_wait(pong);
  }
  double per = (now_ns() - t0) / n;
  waitpid(pid, NULL, 0);
  return per;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: shm-bench post-wait|ping-pong <name> <iterations>\n");
    return 2;
  }
  long n = atol(argv[3]);
  double per = strcmp(argv[1], "post-wait") == 0 ? post_wait(argv[2], n) : ping_pong(argv[2], n);
  printf("%.1f\n", per);
  return 0;
}
