/*
** fuzz_load.c — libFuzzer target for the JSON session loader (spec/fuzz/run).
** Whatever the bytes, the loader either refuses them with a one-line
** reason and leaves the session untouched, or takes them; a session it
** took renders in every format, loads twice (sessions sum), and its JSON
** reads back to the same JSON.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../report/report.h"


static void fail (const char *what) {
  fprintf(stderr, "fuzz_load: %s\n", what);
  abort();
}


static void render_all (const Session *S) {
  RenderOptions o;  /* report_default_options(), which is in render.c */
  Buf out;
  memset(&o, 0, sizeof o);
  o.threshold = 0.01;
  buf_init(&out);
  render_text(S, &o, &out);
  render_speedscope(S, &o, &out);
  render_pprof(S, &o, &out);
  o.show_all = o.show_internals = o.show_host = 1;
  render_text(S, &o, &out);
  render_collapsed(S, &out);
  render_collapsed_shown(S, &o, &out);
  render_speedscope(S, &o, &out);
  render_pprof(S, &o, &out);
  buf_free(&out);
}


static void json_of (const Session *S, Buf *out) {
  buf_init(out);
  render_json(S, out);
  if (out->failed || out->data == NULL) fail("render_json failed");
}


/* Loads the JSON of S into a new session T; ours must always load. */
static void reload (const Session *S, Session *T, Buf *json) {
  char why[256];
  json_of(S, json);
  if (!session_init(T)) fail("out of memory");
  if (!report_load_json_text(T, json->data, json->len, why, sizeof why)) {
    fprintf(stderr, "refused: %s\n%s\n", why, json->data);
    fail("our own JSON is refused");
  }
}


/* Once written by us, a session's JSON reads back to the same JSON. (The
** first writing may differ from the file: invalid UTF-8 became U+FFFD,
** frames and stacks given twice became one.) */
static void check_round_trip (const Session *S) {
  Session T, U;
  Buf first, second, third;
  reload(S, &T, &first);
  reload(&T, &U, &second);
  json_of(&U, &third);
  if (second.len != third.len || memcmp(second.data, third.data, second.len)) {
    fprintf(stderr, "%s\n---\n%s\n", second.data, third.data);
    fail("JSON changed in a round trip");
  }
  buf_free(&first);
  buf_free(&second);
  buf_free(&third);
  session_free(&T);
  session_free(&U);
}


int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  Session S;
  char why[256] = "";
  const char *text = (const char *)data;
  if (!session_init(&S)) return 0;
  if (report_load_json_text(&S, text, size, why, sizeof why)) {
    check_round_trip(&S);
    if (!report_load_json_text(&S, text, size, why, sizeof why))
      fail("a session loaded once is refused the second time");
    render_all(&S);
  }
  else {
    if (why[0] == '\0' || strchr(why, '\n')) fail("no one-line reason");
    if (S.nframes != 0 || S.nnodes != 1 || S.nmoments != 0 || S.samples != 0
        || S.program != NULL || S.memory_rate != 0)
      fail("a refused file changed the session");
  }
  session_free(&S);
  return 0;
}
