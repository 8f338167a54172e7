/*
** test_session.c — the call tree, frame interning, JSON escaping, library
** folding and the JSON round trip, without a Lua program in the way.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "../../report/report.h"
#include "check.h"


/* A new directory under $TMPDIR (or /tmp) for the files a test writes:
** never the working directory, which may be the source tree. */
static int temp_dir (char *dir, size_t size) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || *base == '\0') base = "/tmp";
  if ((size_t)snprintf(dir, size, "%s/sprof-test-XXXXXX", base) >= size) return 0;
  return mkdtemp(dir) != NULL;
}


static void test_interning (void) {
  Session S;
  int a, b, c, d;
  CHECK(session_init(&S));
  a = session_frame(&S, FRAME_LUA, "(anonymous)", "app.lua", 10, NULL);
  b = session_frame(&S, FRAME_LUA, "handler", "app.lua", 10, NULL);
  c = session_frame(&S, FRAME_LUA, "handler", "app.lua", 11, NULL);
  d = session_frame(&S, FRAME_C, "string.rep", "[C]", 0, (void *)&S);
  CHECK(a == b);                                /* one function, one frame */
  CHECK(strcmp(S.frames[a].name, "handler") == 0);  /* the better name */
  CHECK(a != c && c != d);
  CHECK(session_frame(&S, FRAME_C, "rep", "[C]", 0, (void *)&S) == d);
  CHECK(!S.frames[a].library);
  CHECK(S.frames[session_frame(&S, FRAME_LUA, "f",
                   "/usr/share/lua/5.4/json.lua", 1, NULL)].library);
  session_free(&S);
}


static void test_tree (void) {
  Session S;
  int f[3], i;
  CHECK(session_init(&S));
  for (i = 0; i < 3; i++) {
    char name[8];
    snprintf(name, sizeof name, "f%d", i);
    f[i] = session_frame(&S, FRAME_LUA, name, "t.lua", i, NULL);
  }
  for (i = 0; i < 1000; i++) {  /* many samples, few stacks */
    session_add_stack(&S, f, 3, 1000, 1);
    session_add_stack(&S, f, 2, 3000, 1);
  }
  CHECK(S.nnodes == 4);  /* root, f0, f0>f1, f0>f1>f2 */
  CHECK(S.samples == 2000);
  CHECK(S.weight_ns == 4000000);
  session_free(&S);
}


static void test_json_escaping (void) {
  Buf b;
  buf_init(&b);
  buf_json_string(&b, "</script><img src=x onerror=alert(1)>");
  CHECK(strchr(b.data, '<') == NULL && strchr(b.data, '>') == NULL);
  buf_free(&b);
  buf_json_string(&b, "a\xe2\x80\xa8" "b\xff" "c\"\n");
  CHECK(strcmp(b.data, "\"a\\u2028b\\ufffdc\\\"\\n\"") == 0);
  buf_free(&b);
}


static void test_library_folding (void) {
  Session S;
  RenderOptions o = report_default_options();
  ViewNode *v, *encode;
  int stack[4];
  CHECK(session_init(&S));
  stack[0] = session_frame(&S, FRAME_LUA, "main", "app.lua", 0, NULL);
  stack[1] = session_frame(&S, FRAME_LUA, "encode", "/usr/share/lua/5.4/json.lua", 5, NULL);
  stack[2] = session_frame(&S, FRAME_LUA, "walk", "/usr/share/lua/5.4/json.lua", 50, NULL);
  stack[3] = session_frame(&S, FRAME_LUA, "callback", "app.lua", 9, NULL);
  session_add_stack(&S, stack, 4, 5000, 1);
  session_add_stack(&S, stack, 3, 5000, 1);   /* walk's own: 10% of the run */
  session_add_stack(&S, stack, 2, 1000, 1);   /* encode's own */
  session_add_stack(&S, stack, 1, 39000, 1);  /* main's own */
  v = view_build(&S, &o);
  /* main > encode [1 hidden] > callback: walk's time is the group's */
  encode = v->children[0]->children[0];
  CHECK(v->nchildren == 1 && v->children[0]->nchildren == 1);
  CHECK(encode->hidden == 1 && encode->nchildren == 1);
  CHECK(encode->self_ns == 1000 && encode->hidden_ns == 5000);
  CHECK(encode->total_ns == 11000 && v->total_ns == 50000);
  view_free(v);
  /* own time over self_threshold: walk shows in the group */
  o.self_threshold = 0.09;
  v = view_build(&S, &o);
  encode = v->children[0]->children[0];
  CHECK(encode->hidden == 0 && encode->hidden_ns == 0);
  CHECK(encode->nchildren == 1 && encode->children[0]->frame == stack[2]);
  CHECK(encode->children[0]->children[0]->frame == stack[3]);
  view_free(v);
  o = report_default_options();
  o.show_all = 1;
  v = view_build(&S, &o);
  CHECK(v->children[0]->children[0]->hidden == 0);
  CHECK(v->children[0]->children[0]->children[0]->frame == stack[2]);
  view_free(v);
  session_free(&S);
}


static void test_json_round_trip (void) {
  Session S, T;
  Buf a, b, json;
  int stack[2];
  char why[200], dir[200], path[240], missing[240];
  FILE *f;
  CHECK(temp_dir(dir, sizeof dir));
  snprintf(path, sizeof path, "%s/round_trip.json", dir);
  snprintf(missing, sizeof missing, "%s/missing.json", dir);
  CHECK(session_init(&S) && session_init(&T));
  stack[0] = session_frame(&S, FRAME_LUA, "main", "app.lua", 0, NULL);
  stack[1] = session_frame(&S, FRAME_C, "string.rep", "[C]", 0, (void *)&S);
  session_add_moment(&S, 1000, session_add_stack(&S, stack, 2, 7000000, 7), 0);
  session_add_moment(&S, 2000, session_add_stack(&S, stack, 1, 3000000, 3), 0);
  S.duration_ns = 10000000;
  buf_init(&json);
  render_json(&S, &json);
  f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f == NULL) return;
  fwrite(json.data, 1, json.len, f);
  fclose(f);
  CHECK(report_load_json_file(&T, path, why, sizeof why));
  buf_init(&a); buf_init(&b);
  render_collapsed(&S, &a);
  render_collapsed(&T, &b);
  CHECK(a.data && b.data && strcmp(a.data, b.data) == 0);
  CHECK(T.samples == 10 && T.duration_ns == 10000000);
  CHECK(T.nmoments == 2 && T.moments[1].t_ns == 2000);
  CHECK(T.nodes[T.moments[1].node].frame == T.nodes[T.moments[0].node].frame
        || T.nodes[T.moments[0].node].parent == T.moments[1].node);
  /* a second load sums */
  CHECK(report_load_json_file(&T, path, why, sizeof why));
  CHECK(T.samples == 20 && T.weight_ns == 20000000);
  CHECK(T.nmoments == 4 && T.moments[2].t_ns == 10000000 + 1000);
  CHECK(!report_load_json_file(&T, missing, why, sizeof why));
  CHECK(remove(path) == 0 && rmdir(dir) == 0);
  buf_free(&a); buf_free(&b); buf_free(&json);
  session_free(&S);
  session_free(&T);
}


static void test_timeline_thinning (void) {
  Session S;
  int f, node, i;
  CHECK(session_init(&S));
  f = session_frame(&S, FRAME_LUA, "f", "t.lua", 1, NULL);
  node = session_add_stack(&S, &f, 1, 1, 1);
  for (i = 0; i < 3 * SESSION_MAX_MOMENTS; i++)
    session_add_moment(&S, (uint64_t)i, node, 0);
  CHECK(S.nmoments <= SESSION_MAX_MOMENTS);
  CHECK(S.nmoments >= SESSION_MAX_MOMENTS / 2);
  for (i = 1; i < S.nmoments; i++)
    if (S.moments[i].t_ns <= S.moments[i - 1].t_ns) break;
  CHECK(i == S.nmoments);  /* still in time order */
  CHECK(S.moments[S.nmoments - 1].t_ns > 2 * SESSION_MAX_MOMENTS);
  session_free(&S);
}


int main (void) {
  test_timeline_thinning();
  test_interning();
  test_tree();
  test_json_escaping();
  test_library_folding();
  test_json_round_trip();
  return report();
}
