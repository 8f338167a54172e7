/*
** test_formats.c — speedscope and pprof from sessions made through the
** session API, where the cases are easy to set up: a thinned timeline,
** stacks with no sample on it, time outside Lua, hidden native frames.
** (The real readers check real runs: spec/formats_spec.lua and
** spec/browser/speedscope.test.mjs.)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../report/report.h"
#include "check.h"


/* The numbers of the speedscope file's "weights" array, summed. */
static unsigned long long sum_weights (const char *json, int *n) {
  const char *p = strstr(json, "\"weights\":[");
  unsigned long long sum = 0;
  *n = 0;
  if (p == NULL) return 0;
  for (p += strlen("\"weights\":["); *p && *p != ']'; ) {
    char *end;
    sum += strtoull(p, &end, 10);
    (*n)++;
    p = *end == ',' ? end + 1 : end;
  }
  return sum;
}


static int count (const char *s, const char *what) {
  int n = 0;
  for (; (s = strstr(s, what)) != NULL; s += strlen(what)) n++;
  return n;
}


static void test_speedscope_weights (void) {
  Session S;
  RenderOptions o = report_default_options();
  Buf out;
  int f[3], a, b, i, n;
  CHECK(session_init(&S));
  f[0] = session_frame(&S, FRAME_LUA, "main", "app.lua", 0, NULL);
  f[1] = session_frame(&S, FRAME_LUA, "hot", "app.lua", 3, NULL);
  f[2] = session_frame(&S, FRAME_LUA, "cold", "app.lua", 9, NULL);
  /* a and b take turns for long enough that the timeline is thinned */
  a = session_add_stack(&S, f, 2, 0, 0);
  b = session_add_stack(&S, (int[]){f[0], f[2]}, 2, 0, 0);
  for (i = 0; i < 3 * SESSION_MAX_MOMENTS; i++) {
    int node = (i / 1000) % 2 ? b : a;
    S.nodes[node].self_ns += 1000 + (uint64_t)(i % 7);
    S.nodes[node].samples++;
    session_add_moment(&S, (uint64_t)i * 1000, node, 0);
  }
  session_add_stack(&S, f, 1, 5000, 1);  /* no sample on the timeline */
  session_add_weight(&S, 0, 777);         /* time outside Lua */
  buf_init(&out);
  render_speedscope(&S, &o, &out);
  CHECK(!out.failed && out.data != NULL);
  {
    unsigned long long total = 0;
    for (i = 0; i < S.nnodes; i++) total += S.nodes[i].self_ns;
    CHECK(sum_weights(out.data, &n) == total);
    /* a and b alternate in runs of 1000: about one merged sample a run,
       not one per sample */
    CHECK(n > 3 * SESSION_MAX_MOMENTS / 1000 * 8 / 10
          && n < 3 * SESSION_MAX_MOMENTS / 1000 * 2 + 10);
    CHECK(strstr(out.data, "{\"name\":\"(outside Lua)\"}") != NULL);
    CHECK(strstr(out.data, "\"unit\":\"nanoseconds\"") != NULL);
  }
  buf_free(&out);
  session_free(&S);
}


/* The interpreter's own frames are hidden (their time goes to the frame
** above), and so are the host's above the root, unless asked for. */
static void test_hidden_frames (void) {
  Session S;
  RenderOptions o = report_default_options();
  Buf out;
  int f[4];
  CHECK(session_init(&S));
  f[0] = session_frame(&S, FRAME_NATIVE, "main", "host.c", 10, NULL);
  f[1] = session_frame(&S, FRAME_LUA, "handler", "app.lua", 5, NULL);
  f[2] = session_frame(&S, FRAME_NATIVE, "luaV_execute", "lvm.c", 1, NULL);
  f[3] = session_frame(&S, FRAME_C, "string.rep", "[C]", 0, NULL);
  S.frames[f[0]].host = 1;
  S.frames[f[2]].internal = 1;
  session_add_stack(&S, f, 4, 3000, 3);
  session_add_stack(&S, f, 3, 2000, 2);
  buf_init(&out);
  render_speedscope(&S, &o, &out);
  CHECK(strstr(out.data, "luaV_execute") == NULL);
  CHECK(strstr(out.data, "\"main\"") == NULL);
  /* handler (with luaV_execute's time), then handler;string.rep */
  CHECK(strstr(out.data, "\"samples\":[[0],[0,1]]") != NULL);
  buf_free(&out);
  o.show_internals = o.show_host = 1;
  buf_init(&out);
  render_speedscope(&S, &o, &out);
  CHECK(count(out.data, "{\"name\":") == 5);  /* 4 frames + (outside Lua) */
  CHECK(strstr(out.data, "\"samples\":[[0,1,2],[0,1,2,3]]") != NULL);
  buf_free(&out);
  buf_init(&out);
  render_pprof(&S, &o, &out);
  CHECK(!out.failed && out.len > 20);
  CHECK((unsigned char)out.data[0] == 0x1f && (unsigned char)out.data[1] == 0x8b);
  buf_free(&out);
  session_free(&S);
}


int main (void) {
  test_speedscope_weights();
  test_hidden_frames();
  return report();
}
