/*
** collapsed.c — the folded-stacks format of flamegraph.pl, inferno and
** speedscope: one line per distinct stack, root first, frames joined by
** ';', then a space and the weight in integer microseconds (in a memory
** view, integer bytes).
*/
#include "report.h"


/* A node's weight as written: microseconds, rounded, or bytes. */
static uint64_t weight (const Session *S, uint64_t w) {
  return S->weights_bytes ? w : (w + 500) / 1000;
}


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


/* Every stack as recorded, interpreter internals and host frames too. */
void render_collapsed (const Session *S, Buf *out) {
  int i;
  for (i = 1; i < S->nnodes; i++) {
    uint64_t w = weight(S, S->nodes[i].self_ns);
    if (w == 0) continue;
    put_path(S, out, i);
    buf_printf(out, " %llu\n", (unsigned long long)w);
  }
  if (weight(S, S->nodes[0].self_ns) > 0)  /* time with no Lua stack */
    buf_printf(out, "(outside Lua) %llu\n",
               (unsigned long long)weight(S, S->nodes[0].self_ns));
}


/* The stacks of the tree as shown: no library folding and no threshold
** (that is the reader's business), but without the interpreter's own
** frames and the host's unless asked for, as in the other reports. */
static void put_view (const Session *S, const ViewNode *v, Buf *out,
                      Buf *path) {
  size_t mark = path->len;
  int i;
  if (v->frame >= 0) {
    if (path->len > 0) buf_putc(path, ';');
    put_frame(path, &S->frames[v->frame]);
    if (weight(S, v->self_ns) > 0 && path->data) {
      buf_add(out, path->data, path->len);
      buf_printf(out, " %llu\n", (unsigned long long)weight(S, v->self_ns));
    }
  }
  for (i = 0; i < v->nchildren; i++) put_view(S, v->children[i], out, path);
  path->len = mark;
  if (path->data) path->data[mark] = '\0';
}


void render_collapsed_shown (const Session *S, const RenderOptions *o,
                             Buf *out) {
  RenderOptions all = *o;
  ViewNode *root;
  Buf path;
  all.show_all = 1;
  root = view_build(S, &all);
  if (root == NULL) { out->failed = 1; return; }
  buf_init(&path);
  put_view(S, root, out, &path);
  if (weight(S, root->self_ns) > 0)
    buf_printf(out, "(outside Lua) %llu\n",
               (unsigned long long)weight(S, root->self_ns));
  buf_free(&path);
  view_free(root);
}
