/*
** timers.c — what each way of being woken costs a thread that computes:
** a busy loop runs SECONDS of wall time alone ("none"), with a thread
** that sleeps to each tick ("thread", the wall clock's sampler), with a
** timer on the monotonic clock signalling the loop's thread ("mono"),
** and with a timer on the thread's CPU clock ("cpu", sprof's CPU timer:
** the kernel fires it at its own tick). Prints the loop's work per
** second of the process's CPU time, relative to "none", and how many
** wake-ups a second each got. The modes run by turns, ROUNDS times;
** medians of the per-round ratios.
**   build/bench/timers [interval_us [seconds [rounds]]]   (1000 1 5)
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NMODES 4

static const char *const mode_names[NMODES] = {"none", "thread", "mono", "cpu"};
static atomic_long wakeups;
static atomic_int stopping;
static long step_ns;


static double seconds (clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void on_tick (int sig) {
  (void)sig;
  atomic_fetch_add(&wakeups, 1);
}


static void *sleeper (void *arg) {
  struct timespec next;
  (void)arg;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!atomic_load(&stopping)) {
    next.tv_nsec += step_ns;
    while (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    atomic_fetch_add(&wakeups, 1);
  }
  return NULL;
}


static int start_timer (clockid_t clock, timer_t *timer) {
  struct sigevent sev;
  struct itimerspec its;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGPROF;
  sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  if (timer_create(clock, &sev, timer) != 0) return -1;
  its.it_interval.tv_sec = step_ns / 1000000000;
  its.it_interval.tv_nsec = step_ns % 1000000000;
  its.it_value = its.it_interval;
  return timer_settime(*timer, 0, &its, NULL);
}


/* Runs the loop for 'secs' of wall time in mode m; returns its work per
** CPU second of the process, and the wake-ups a second in *rate. */
static double run (int m, double secs, double *rate) {
  pthread_t thread;
  timer_t timer;
  double t0, c0, cpu;
  unsigned long x = 1, rounds = 0;
  int i;
  atomic_store(&wakeups, 0);
  atomic_store(&stopping, 0);
  if (m == 1) pthread_create(&thread, NULL, sleeper, NULL);
  if (m >= 2 && start_timer(m == 2 ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID,
                            &timer) != 0) {
    perror("timer");
    exit(1);
  }
  t0 = seconds(CLOCK_MONOTONIC);
  c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  while (seconds(CLOCK_MONOTONIC) - t0 < secs) {
    for (i = 0; i < 100000; i++)
      x = x * 6364136223846793005UL + 1442695040888963407UL;
    rounds++;
  }
  cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
  *rate = atomic_load(&wakeups) / secs;
  atomic_store(&stopping, 1);
  if (m == 1) pthread_join(thread, NULL);
  if (m >= 2) timer_delete(timer);
  return (rounds + (x & 1)) / cpu;  /* x: keep the loop */
}


static int compare (const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}


static double median (double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, compare);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}


int main (int argc, char **argv) {
  double secs = argc > 2 ? atof(argv[2]) : 1;
  int rounds = argc > 3 ? atoi(argv[3]) : 5, r, m;
  double work[NMODES][64], rate[NMODES][64], ratio[64];
  struct sigaction sa;
  step_ns = (argc > 1 ? atol(argv[1]) : 1000) * 1000;
  if (step_ns <= 0 || secs <= 0 || rounds <= 0 || rounds > 64) {
    fprintf(stderr, "usage: timers [interval_us [seconds [rounds (<= 64)]]]\n");
    return 1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_tick;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPROF, &sa, NULL);
  for (r = 0; r < rounds; r++)
    for (m = 0; m < NMODES; m++) {
      int k = (m + r) % NMODES;  /* the order rotates by round */
      work[k][r] = run(k, secs, &rate[k][r]);
    }
  printf("interval %ld us, %d rounds of %.1f s; work per CPU second against none\n",
         step_ns / 1000, rounds, secs);
  for (m = 0; m < NMODES; m++) {
    for (r = 0; r < rounds; r++) ratio[r] = work[m][r] / work[0][r];
    printf("%-7s %.3f  %6.0f wake-ups/s\n", mode_names[m],
           median(ratio, rounds), median(rate[m], rounds));
  }
  return 0;
}
