/*
** test_periods.c — what the controller (ext/control.c) does with
** sessions: one report of several states (session_merge), a new period
** on the same frames (session_clear_tree), the labels of a pprof file.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../report/report.h"
#include "check.h"


/* The self time of the node at the end of the given frames, or -1. */
static long long weight_of (const Session *S, const char *const *names, int n) {
  int node = 0, i;
  for (i = 0; i < n; i++) {
    int c;
    for (c = S->nodes[node].child; c >= 0; c = S->nodes[c].sibling)
      if (strcmp(S->frames[S->nodes[c].frame].name, names[i]) == 0) break;
    if (c < 0) return -1;
    node = c;
  }
  return (long long)S->nodes[node].self_ns;
}


static void test_merge (void) {
  Session a, b, out;
  int main_a, hot, main_b, other, unused, stack[2];
  const char *const a_hot[] = {"main", "hot"}, *const b_hot[] = {"main", "hot"};
  const char *const b_other[] = {"main", "other"}, *const b_unused[] = {"main", "unused"};
  CHECK(session_init(&a) && session_init(&b) && session_init(&out));
  main_a = session_frame(&a, FRAME_LUA, "main", "app.lua", 0, NULL);
  hot = session_frame(&a, FRAME_LUA, "hot", "app.lua", 3, NULL);
  stack[0] = main_a; stack[1] = hot;
  session_add_stack(&a, stack, 2, 700, 7);
  session_add_weight(&a, 0, 300);            /* outside Lua */
  a.start_time = 100.5; a.duration_ns = 1000;
  /* the same functions in another state, interned in another order */
  other = session_frame(&b, FRAME_LUA, "other", "app.lua", 9, NULL);
  main_b = session_frame(&b, FRAME_LUA, "main", "app.lua", 0, NULL);
  hot = session_frame(&b, FRAME_LUA, "hot", "app.lua", 3, NULL);
  unused = session_frame(&b, FRAME_LUA, "unused", "app.lua", 20, NULL);
  stack[0] = main_b; stack[1] = hot;
  session_add_stack(&b, stack, 2, 200, 2);
  stack[1] = other;
  session_add_stack(&b, stack, 2, 100, 1);
  stack[1] = unused;
  session_add_stack(&b, stack, 2, 0, 0);     /* a stack that weighs nothing */
  b.start_time = 100.25; b.duration_ns = 900;
  CHECK(session_merge(&out, &a));
  CHECK(session_merge(&out, &b));
  CHECK(weight_of(&out, a_hot, 2) == 900);   /* the states' weights add up */
  CHECK(weight_of(&out, b_hot, 2) == 900);
  CHECK(weight_of(&out, b_other, 2) == 100);
  CHECK(weight_of(&out, b_unused, 2) == -1); /* not copied */
  CHECK(out.nodes[0].self_ns == 300);
  CHECK(out.weight_ns == 1300 && out.samples == 10);
  CHECK(out.duration_ns == 1000);            /* the longest */
  CHECK(out.start_time == 100.25);           /* the earliest */
  CHECK(out.nframes == 3);                   /* main, hot, other */
  session_free(&a);
  session_free(&b);
  session_free(&out);
}


static void test_clear_tree (void) {
  Session S;
  int f, g, stack[2];
  const char *const path[] = {"main", "hot"};
  CHECK(session_init(&S));
  f = session_frame(&S, FRAME_LUA, "main", "app.lua", 0, NULL);
  g = session_frame(&S, FRAME_NATIVE, "crunch", "crunch.c", 5, (void *)&S);
  stack[0] = f; stack[1] = g;
  session_add_stack(&S, stack, 2, 500, 5);
  session_add_moment(&S, 1, 2, 0);
  S.duration_ns = 500;
  session_clear_tree(&S);
  CHECK(S.nnodes == 1 && S.nodes[0].child == -1 && S.nodes[0].self_ns == 0);
  CHECK(S.samples == 0 && S.weight_ns == 0 && S.duration_ns == 0);
  CHECK(S.nmoments == 0);
  /* the frames stay, with their indices: caches that hold them still work */
  CHECK(S.nframes == 2);
  CHECK(session_find_frame(&S, FRAME_LUA, "", "app.lua", 0, NULL) == f);
  CHECK(session_find_frame(&S, FRAME_NATIVE, "x", "", 0, (void *)&S) == g);
  /* and the next period's tree grows again */
  stack[1] = session_frame(&S, FRAME_LUA, "hot", "app.lua", 3, NULL);
  CHECK(session_path(&S, session_add_stack(&S, stack, 2, 40, 1), stack, 2) == 2);
  CHECK(stack[0] == f);
  CHECK(weight_of(&S, path, 2) == 40 && S.weight_ns == 40);
  session_free(&S);
}


static void test_labels (void) {
  Session S;
  Buf out;
  RenderOptions ro = report_default_options();
  CHECK(session_init(&S));
  CHECK(session_set_label(&S, "service", "checkout"));
  CHECK(session_set_label(&S, "pid", "42"));
  CHECK(session_set_label(&S, "service", "api"));  /* replaced */
  CHECK(S.nlabels == 2 && strcmp(S.label_values[0], "api") == 0);
  session_clear(&S);                                /* kept, as settings */
  CHECK(S.nlabels == 2 && strcmp(S.label_keys[1], "pid") == 0);
  session_add_weight(&S, 0, 1000);
  buf_init(&out);
  CHECK(report_render(&S, "pprof", &ro, &out) && !out.failed && out.len > 0);
  buf_free(&out);
  session_free(&S);
}


int main (void) {
  test_merge();
  test_clear_tree();
  test_labels();
  return report();
}
