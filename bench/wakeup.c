/*
** wakeup.c — what the wall clock's sampler thread costs before it does
** anything: a thread that sleeps to the next tick, TICKS times, and the
** CPU time it used per wake-up (timer interrupt, scheduling, context
** switches; far more in a virtual machine than on bare metal).
**   build/bench/wakeup [interval_us [ticks]]      (default 1000 2000)
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_us (void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


int main (int argc, char **argv) {
  long step_ns = (argc > 1 ? atol(argv[1]) : 1000) * 1000;
  int ticks = argc > 2 ? atoi(argv[2]) : 2000, i;
  struct timespec next;
  double c0;
  if (step_ns <= 0 || ticks <= 0) {
    fprintf(stderr, "usage: wakeup [interval_us [ticks]]\n");
    return 1;
  }
  c0 = cpu_us();
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (i = 0; i < ticks; i++) {
    next.tv_nsec += step_ns;
    while (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      next.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  printf("%.2f us of CPU per wake-up, %.2f%% of a CPU at one per %ld us\n",
         (cpu_us() - c0) / ticks, (cpu_us() - c0) / ticks / (step_ns / 1e3) * 100,
         step_ns / 1000);
  return 0;
}
