/*
** json.c — the saved session (format "sprof-session", version 1): the
** frames, and each distinct stack as a list of frame indices, root first,
** with its weight and sample count. The schema is in README.md.
*/
#include <stdlib.h>

#include "report.h"

static const char *const kind_names[] = {"lua", "c", "native", "pseudo"};


static void put_path (const Session *S, Buf *out, int node) {
  int parent = S->nodes[node].parent;
  if (parent > 0) {
    put_path(S, out, parent);
    buf_putc(out, ',');
  }
  buf_printf(out, "%d", S->nodes[node].frame);
}


static void put_meta (const Session *S, Buf *out) {
  buf_puts(out, "{\"format\":\"sprof-session\",\"version\":1,\n\"program\":");
  if (S->program) buf_json_string(out, S->program);
  else buf_puts(out, "null");
  buf_printf(out, ",\"start_time\":%.6f,\"interval\":%.9g,\"clock\":\"%s\",\n",
             S->start_time, S->interval,
             S->clock == CLOCK_KIND_CPU ? "cpu" : "wall");
  buf_printf(out, "\"duration_ns\":%llu,\"cpu_ns\":%llu,\"samples\":%llu,"
             "\"overhead_ns\":%llu,\"sampler_ns\":%llu,\n",
             (unsigned long long)S->duration_ns,
             (unsigned long long)S->cpu_ns,
             (unsigned long long)S->samples,
             (unsigned long long)S->overhead_ns,
             (unsigned long long)S->sampler_ns);
}


/* The timeline: when each kept sample was taken (ns since the start) and
** its stack, as an index into "stacks". (A loaded file may have put a
** sample on a stack with no time and no samples: such stacks are not
** written, nor are their samples.) */
static void put_timeline (const Session *S, Buf *out, const int *stack_of) {
  int i, n = 0;
  buf_puts(out, ",\n\"timeline\":{\"t_ns\":[");
  for (i = 0; i < S->nmoments; i++)
    if (stack_of[S->moments[i].node] >= 0)
      buf_printf(out, n++ ? ",%llu" : "%llu",
                 (unsigned long long)S->moments[i].t_ns);
  buf_puts(out, "],\n\"stack\":[");
  for (i = 0, n = 0; i < S->nmoments; i++)
    if (stack_of[S->moments[i].node] >= 0)
      buf_printf(out, n++ ? ",%d" : "%d", stack_of[S->moments[i].node]);
  buf_puts(out, "]}");
}


void render_json (const Session *S, Buf *out) {
  int i, first = 1, nstacks = 0;
  int *stack_of = malloc((size_t)S->nnodes * sizeof *stack_of);
  if (stack_of == NULL) { out->failed = 1; return; }
  put_meta(S, out);
  buf_puts(out, "\"frames\":[");
  for (i = 0; i < S->nframes; i++) {
    const Frame *f = &S->frames[i];
    buf_puts(out, i ? ",\n{\"name\":" : "\n{\"name\":");
    buf_json_string(out, f->name);
    buf_puts(out, ",\"file\":");
    buf_json_string(out, f->file);
    buf_printf(out, ",\"line\":%d,\"kind\":\"%s\",\"library\":%s", f->line,
               kind_names[f->kind], f->library ? "true" : "false");
    /* only native frames have these: written when set */
    if (f->internal) buf_puts(out, ",\"internal\":true");
    if (f->host) buf_puts(out, ",\"host\":true");
    buf_putc(out, '}');
  }
  buf_puts(out, "],\n\"stacks\":[");
  for (i = 0; i < S->nnodes; i++) {
    const Node *n = &S->nodes[i];
    stack_of[i] = -1;
    if (n->samples == 0 && n->self_ns == 0) continue;
    stack_of[i] = nstacks++;
    buf_puts(out, first ? "\n{\"frames\":[" : ",\n{\"frames\":[");
    first = 0;
    if (i > 0) put_path(S, out, i);
    buf_printf(out, "],\"weight_ns\":%llu,\"samples\":%llu}",
               (unsigned long long)n->self_ns,
               (unsigned long long)n->samples);
  }
  buf_putc(out, ']');
  put_timeline(S, out, stack_of);
  buf_puts(out, "}\n");
  free(stack_of);
}
