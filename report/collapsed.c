/*
** collapsed.c — the folded-stacks format of flamegraph.pl, inferno and
** speedscope: one line per distinct stack, root first, frames joined by
** ';', then a space and the weight in integer microseconds.
*/
#include "report.h"


/* ';' separates frames and '\n' ends the line: neither may be in a name. */
static void put_clean (Buf *out, const char *s) {
  for (; *s; s++)
    buf_putc(out, *s == ';' ? ',' : (*s == '\n' || *s == '\r') ? ' ' : *s);
}


static void put_frame (Buf *out, const Frame *f) {
  put_clean(out, f->name);
  if (f->kind == FRAME_LUA) {
    buf_putc(out, ' ');
    put_clean(out, f->file);
    buf_printf(out, ":%d", f->line);
  }
}


static void put_path (const Session *S, Buf *out, int node) {
  int parent = S->nodes[node].parent;
  if (parent > 0) {
    put_path(S, out, parent);
    buf_putc(out, ';');
  }
  put_frame(out, &S->frames[S->nodes[node].frame]);
}


void render_collapsed (const Session *S, Buf *out) {
  int i;
  for (i = 1; i < S->nnodes; i++) {
    uint64_t us = (S->nodes[i].self_ns + 500) / 1000;
    if (us == 0) continue;
    put_path(S, out, i);
    buf_printf(out, " %llu\n", (unsigned long long)us);
  }
  if (S->nodes[0].self_ns >= 500)  /* time with no Lua stack */
    buf_printf(out, "(outside Lua) %llu\n",
               (unsigned long long)((S->nodes[0].self_ns + 500) / 1000));
}
