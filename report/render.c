/*
** render.c — the table of renderers.
*/
#include <stdlib.h>
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
  o.view = VIEW_DEFAULT;
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


int report_known_format (const char *format) {
  static const char *const names[] = {
    "text", "html", "collapsed", "json", "speedscope", "pprof", NULL
  };
  int i;
  for (i = 0; names[i]; i++)
    if (strcmp(format, names[i]) == 0) return 1;
  return 0;
}


const char *report_formats (void) {
  return "text, html, collapsed, json, speedscope or pprof";
}


/* "time", "alloc" or "live" as a ReportView; -1 if none of them. */
int report_view_of (const char *name) {
  if (strcmp(name, "time") == 0) return VIEW_TIME;
  if (strcmp(name, "alloc") == 0) return VIEW_ALLOC;
  if (strcmp(name, "live") == 0) return VIEW_LIVE;
  return -1;
}


/*
** A memory view of S: the same frames and tree, with each node's bytes
** (allocated, or live at the end) as its weight and its objects as its
** samples, so that the renderers of time draw it unchanged; they show
** bytes where weights_bytes says so. No timeline: it is of time. The
** frames are S's: free only the nodes.
*/
static int memory_view (const Session *S, int view, Session *M) {
  int i;
  *M = *S;
  M->nodes = malloc((size_t)S->nnodes * sizeof *M->nodes);
  if (M->nodes == NULL) return 0;
  M->weight_ns = M->samples = 0;
  for (i = 0; i < S->nnodes; i++) {
    Node *n = &M->nodes[i];
    *n = S->nodes[i];
    n->self_ns = (uint64_t)((view == VIEW_LIVE ? n->live_bytes
                                               : n->alloc_bytes) + 0.5);
    n->samples = (uint64_t)((view == VIEW_LIVE ? n->live_objects
                                               : n->alloc_objects) + 0.5);
    M->weight_ns += n->self_ns;
    M->samples += n->samples;
  }
  M->nmoments = 0;
  M->weights_bytes = 1;
  return 1;
}


static void render (const Session *S, const char *format,
                    const RenderOptions *o, Buf *out) {
  if (strcmp(format, "text") == 0) render_text(S, o, out);
  else if (strcmp(format, "collapsed") == 0) render_collapsed_shown(S, o, out);
  else if (strcmp(format, "json") == 0) render_json(S, out);
  else if (strcmp(format, "html") == 0) render_html(S, o, out);
  else if (strcmp(format, "speedscope") == 0) render_speedscope(S, o, out);
  else if (strcmp(format, "pprof") == 0) render_pprof(S, o, out);
}


/* json and html carry every view; pprof has a sample type for each. */
int report_render (const Session *S, const char *format,
                   const RenderOptions *o, Buf *out) {
  int view = o->view;
  Session M;
  if (!report_known_format(format)) return 0;
  if (view == VIEW_DEFAULT) view = S->memory_rate > 0 ? VIEW_ALLOC : VIEW_TIME;
  if (view == VIEW_TIME || strcmp(format, "json") == 0
      || strcmp(format, "html") == 0 || strcmp(format, "pprof") == 0) {
    render(S, format, o, out);
    return 1;
  }
  if (!memory_view(S, view, &M)) {
    out->failed = 1;
    return 1;
  }
  render(&M, format, o, out);
  free(M.nodes);
  return 1;
}
