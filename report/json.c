/*
** json.c — the saved session (format "sprof-session", version 1): the
** frames, and each distinct stack as a list of frame indices, root first,
** with its weight and sample count, and for a memory profile its bytes
** and objects allocated and live. The schema is in README.md.
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
  if (S->memory_rate > 0)
    buf_printf(out, "\"memory_rate\":%.17g,\n", S->memory_rate);
}


/* The heap's size at each sample written, if any is known (a session
** loaded from a file without it has none). */
static void put_heap (const Session *S, Buf *out, const int *stack_of) {
  int i, n = 0, known = 0;
  for (i = 0; i < S->nmoments && !known; i++)
    known = S->moments[i].heap_bytes > 0 && stack_of[S->moments[i].node] >= 0;
  if (!known) return;
  buf_puts(out, ",\n\"heap\":[");
  for (i = 0; i < S->nmoments; i++)
    if (stack_of[S->moments[i].node] >= 0)
      buf_printf(out, n++ ? ",%llu" : "%llu",
                 (unsigned long long)S->moments[i].heap_bytes);
  buf_putc(out, ']');
}


/* The timeline: when each kept sample was taken (ns since the start) and
** its stack, as an index into "stacks". (A loaded file may have put a
** sample on a stack with no time, no samples and no memory: such stacks
** are not written, nor are their samples.) */
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
  buf_putc(out, ']');
  put_heap(S, out, stack_of);
  buf_putc(out, '}');
}


static int has_weight (const Node *n) {
  return n->samples || n->self_ns || n->alloc_bytes || n->alloc_objects
         || n->live_bytes || n->live_objects;
}


/* A stack's memory, each field written when not zero. */
static void put_memory (const Node *n, Buf *out) {
  static const char *const keys[] = {"alloc_bytes", "alloc_objects",
                                     "live_bytes", "live_objects"};
  uint64_t values[4];  /* the estimates, rounded as info() rounds them */
  int i;
  values[0] = (uint64_t)(n->alloc_bytes + 0.5);
  values[1] = (uint64_t)(n->alloc_objects + 0.5);
  values[2] = (uint64_t)(n->live_bytes + 0.5);
  values[3] = (uint64_t)(n->live_objects + 0.5);
  for (i = 0; i < 4; i++)
    if (values[i] > 0)
      buf_printf(out, ",\"%s\":%llu", keys[i], (unsigned long long)values[i]);
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
    if (!has_weight(n)) continue;
    stack_of[i] = nstacks++;
    buf_puts(out, first ? "\n{\"frames\":[" : ",\n{\"frames\":[");
    first = 0;
    if (i > 0) put_path(S, out, i);
    buf_printf(out, "],\"weight_ns\":%llu,\"samples\":%llu",
               (unsigned long long)n->self_ns,
               (unsigned long long)n->samples);
    put_memory(n, out);
    buf_putc(out, '}');
  }
  buf_putc(out, ']');
  put_timeline(S, out, stack_of);
  buf_puts(out, "}\n");
  free(stack_of);
}
