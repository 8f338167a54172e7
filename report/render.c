/*
** render.c — the table of renderers.
*/
#include <string.h>

#include "report.h"


RenderOptions report_default_options (void) {
  RenderOptions o;
  o.show_all = 0;
  o.color = 0;
  o.threshold = 0.01;  /* as pyinstrument: frames under 1% are noise */
  o.self_threshold = 0.2;  /* as pyinstrument, which shows such frames */
  o.show_internals = 0;
  o.show_host = 0;
  return o;
}


/* The format a file's name asks for, as pyinstrument's -o does: ".html",
** ".json" (".speedscope.json"), ".pb.gz", ".collapsed"...; else text. */
const char *report_format_of (const char *path) {
  static const char *const by_suffix[][2] = {
    {".html", "html"}, {".htm", "html"},
    {".speedscope.json", "speedscope"}, {".json", "json"},  /* that order */
    {".pb.gz", "pprof"}, {".pb", "pprof"}, {".pprof", "pprof"},
    {".collapsed", "collapsed"}, {".folded", "collapsed"},
    {NULL, NULL}
  };
  size_t len = strlen(path);
  int i;
  for (i = 0; by_suffix[i][0]; i++) {
    size_t n = strlen(by_suffix[i][0]);
    if (len > n && strcmp(path + len - n, by_suffix[i][0]) == 0)
      return by_suffix[i][1];
  }
  return "text";
}


const char *report_formats (void) {
  return "text, html, collapsed, json, speedscope or pprof";
}


int report_render (const Session *S, const char *format,
                   const RenderOptions *o, Buf *out) {
  if (strcmp(format, "text") == 0) render_text(S, o, out);
  else if (strcmp(format, "collapsed") == 0) render_collapsed_shown(S, o, out);
  else if (strcmp(format, "json") == 0) render_json(S, out);
  else if (strcmp(format, "html") == 0) render_html(S, o, out);
  else if (strcmp(format, "speedscope") == 0) render_speedscope(S, o, out);
  else if (strcmp(format, "pprof") == 0) render_pprof(S, o, out);
  else return 0;
  return 1;
}
