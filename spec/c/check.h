/*
** check.h — the C tests' one assertion: a failed CHECK prints where and
** what, and the test goes on; main returns report() as its status.
*/
#ifndef sprof_check_h
#define sprof_check_h

#include <stdio.h>

static int failures;

#define CHECK(cond) check((cond), #cond, __FILE__, __LINE__)

static void check (int ok, const char *what, const char *file, int line) {
  if (!ok) {
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    failures++;
  }
}


static int report (void) {
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}

#endif
