/*
** speedscope.c — speedscope's file format (schema:
** https://www.speedscope.app/file-format-schema.json): one "sampled"
** profile in nanoseconds. Samples follow the timeline, so speedscope's
** "Time Order" view is the run as it happened; each stack's time is split
** evenly over its samples on the timeline, so the weights add up to the
** session's sampled time exactly. Stacks with time but no sample on the
** timeline (it is thinned past SESSION_MAX_MOMENTS; time with no Lua
** stack) come last. The stacks are those of stacks.c.
** A memory view (weights_bytes) has no timeline: its profile, in bytes,
** lists each stack once with its bytes.
*/
#include <stdio.h>
#include <stdlib.h>

#include "../ext/sprof.h"
#include "report.h"

typedef struct Scope {
  const Session *S;
  Buf *out;
  ShownTree shown;   /* the stack written for each node */
  int *path;         /* scratch: one stack, root first */
  uint64_t *hits;    /* hits[node]: its samples on the timeline */
  uint64_t *given;   /* hits[node] already written */
  int outside;       /* the frame number of "(outside Lua)" */
  int nsamples;      /* samples written so far */
} Scope;


static void put_frame (Buf *out, const Frame *f) {
  buf_puts(out, "{\"name\":");
  buf_json_string(out, f->name);
  if (f->kind != FRAME_C && f->file[0] != '[' && f->file[0] != '\0') {
    buf_puts(out, ",\"file\":");
    buf_json_string(out, f->file);
    if (f->line > 0) buf_printf(out, ",\"line\":%d", f->line);
  }
  buf_putc(out, '}');
}


/* The frames shown, numbered as stacks.c does, then "(outside Lua)". */
static void put_frames (Scope *sc) {
  const Session *S = sc->S;
  int i;
  buf_puts(sc->out, "\"shared\":{\"frames\":[");
  for (i = 0; i < S->nframes; i++) {
    if (sc->shown.id[i] < 0) continue;
    put_frame(sc->out, &S->frames[i]);
    buf_puts(sc->out, ",\n");
  }
  buf_puts(sc->out, "{\"name\":\"(outside Lua)\"}]},\n");
}


static void put_stack (Scope *sc, int node) {
  const ShownTree *t = &sc->shown;
  int n, i;
  node = t->node[node];
  if (node == 0) {  /* time with no Lua stack (or none shown) */
    buf_printf(sc->out, "[%d]", sc->outside);
    return;
  }
  n = t->depth[node];
  for (i = n - 1; i >= 0; i--, node = t->parent[node])
    sc->path[i] = t->id[sc->S->nodes[node].frame];
  buf_putc(sc->out, '[');
  for (i = 0; i < n; i++) buf_printf(sc->out, i ? ",%d" : "%d", sc->path[i]);
  buf_putc(sc->out, ']');
}


/* The weight of the next timeline sample of 'node': an even share of its
** time, the remainder going to its first samples. */
static uint64_t next_share (Scope *sc, int node) {
  uint64_t self = sc->S->nodes[node].self_ns, n = sc->hits[node];
  uint64_t share = self / n + (sc->given[node] < self % n);
  sc->given[node]++;
  return share;
}


static void put_sample (Scope *sc, Buf *weights, int node, uint64_t w) {
  const char *sep = sc->nsamples++ ? "," : "";
  buf_puts(sc->out, sep);
  put_stack(sc, node);
  buf_printf(weights, "%s%llu", sep, (unsigned long long)w);
}


/* Runs of timeline samples on one stack become one sample. */
static void put_samples (Scope *sc, Buf *weights) {
  const Session *S = sc->S;
  int i, node;
  for (i = 0; i < S->nmoments; i++) sc->hits[S->moments[i].node]++;
  for (i = 0; i < S->nmoments; ) {
    uint64_t w = 0;
    node = S->moments[i].node;
    for (; i < S->nmoments && S->moments[i].node == node; i++)
      w += next_share(sc, node);
    if (w > 0) put_sample(sc, weights, node, w);
  }
  for (node = 0; node < S->nnodes; node++)
    if (sc->hits[node] == 0 && S->nodes[node].self_ns > 0)
      put_sample(sc, weights, node, S->nodes[node].self_ns);
}


static void put_profile (Scope *sc, const char *name, const char *unit) {
  const Session *S = sc->S;
  Buf weights;
  uint64_t total = 0;
  int i;
  for (i = 0; i < S->nnodes; i++) total += S->nodes[i].self_ns;
  buf_init(&weights);
  buf_puts(sc->out, "\"profiles\":[{\"type\":\"sampled\",\"name\":");
  buf_json_string(sc->out, name);
  buf_printf(sc->out, ",\"unit\":\"%s\",\"startValue\":0,"
             "\"endValue\":%llu,\n\"samples\":[", unit,
             (unsigned long long)total);
  put_samples(sc, &weights);
  buf_puts(sc->out, "],\n\"weights\":[");
  if (weights.data) buf_add(sc->out, weights.data, weights.len);
  if (weights.failed) sc->out->failed = 1;
  buf_puts(sc->out, "]}]}\n");
  buf_free(&weights);
}


/* The profile's name: the program's, and in a memory view what the
** bytes are. */
static const char *profile_name (const Session *S, const RenderOptions *o,
                                 char *buf, size_t len) {
  const char *name = S->program ? S->program : "sprof";
  if (!S->weights_bytes) return name;
  snprintf(buf, len, "%s (%s bytes)", name,
           o->view == VIEW_LIVE ? "live" : "allocated");
  return buf;
}


void render_speedscope (const Session *S, const RenderOptions *o,
                        Buf *out) {
  const char *name = S->program ? S->program : "sprof";
  char pname[512];
  Scope sc;
  size_t n = (size_t)S->nnodes;
  sc.S = S;
  sc.out = out;
  sc.nsamples = sc.outside = 0;
  sc.hits = calloc(n, sizeof *sc.hits);
  sc.given = calloc(n, sizeof *sc.given);
  sc.path = NULL;
  if (shown_build(&sc.shown, S, o)) {
    sc.path = malloc(((size_t)sc.shown.max_depth + 1) * sizeof *sc.path);
    sc.outside = sc.shown.nids;
  }
  if (sc.hits && sc.given && sc.path) {
    buf_puts(out, "{\"$schema\":\"https://www.speedscope.app/"
             "file-format-schema.json\",\n\"exporter\":\"sprof "
             SPROF_VERSION "\",\"name\":");
    buf_json_string(out, name);
    buf_puts(out, ",\"activeProfileIndex\":0,\n");
    put_frames(&sc);
    put_profile(&sc, profile_name(S, o, pname, sizeof pname),
                S->weights_bytes ? "bytes" : "nanoseconds");
  }
  else out->failed = 1;
  shown_free(&sc.shown);
  free(sc.path);
  free(sc.hits);
  free(sc.given);
}
