/*
** test_merge.c — merging a native capture: a capture that a signal took
** inside sprof's own hook keeps none of the hook's frames, only what
** called it.
*/
#include <string.h>

#include "../../ext/native.h"
#include "check.h"


/* Stand-ins: 'hook' for sprof's hook, 'callee' for what it calls (the
** clock), 'program' for the code the hook interrupted. */
__attribute__((noinline)) int hook (int x) { return x * 3 + 1; }
__attribute__((noinline)) int callee (int x) { return x * 5 + 2; }
__attribute__((noinline)) int program (int x) { return x * 7 + 3; }


/* Whether the merged frames hold the function starting at 'fn'. */
static int holds (const Session *S, const int *frames, int n, void *fn) {
  int i;
  for (i = 0; i < n; i++)
    if (S->frames[frames[i]].addr == fn) return 1;
  return 0;
}


static int merge (NativeNames *N, Session *S, const NativeCapture *c,
                  int *out) {
  int host_from, lua_from;
  return native_merge(N, S, c, NULL, NULL, 0, out, 16, &host_from, &lua_from);
}


int main (void) {
  Session S;
  NativeCapture c;
  NativeNames *N = native_names_new((uintptr_t)hook);
  int out[16], n;
  CHECK(N != NULL && session_init(&S));
  if (N == NULL) return report();
  memset(&c, 0, sizeof c);
  c.in_lua = 1;
  /* innermost first: callee (interrupted), hook, then program (return
     addresses point just past a call, inside the caller) */
  c.ip[0] = (uintptr_t)callee;
  c.ip[1] = (uintptr_t)hook + 1;
  c.ip[2] = (uintptr_t)program + 1;
  c.n = 3;
  n = merge(N, &S, &c, out);
  CHECK(n == 1 && holds(&S, out, n, (void *)program));
  CHECK(!holds(&S, out, n, (void *)hook) && !holds(&S, out, n, (void *)callee));
  /* without our hook in it, a capture keeps all its frames */
  c.ip[1] = (uintptr_t)callee + 1;
  n = merge(N, &S, &c, out);
  CHECK(n == 3 && holds(&S, out, n, (void *)callee) && holds(&S, out, n, (void *)program));
  native_names_free(N);
  session_free(&S);
  return report();
}
