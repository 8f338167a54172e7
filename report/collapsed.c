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


/* Every stack as recorded, interpreter internals and host frames too. */
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
    if ((v->self_ns + 500) / 1000 > 0 && path->data) {
      buf_add(out, path->data, path->len);
      buf_printf(out, " %llu\n", (unsigned long long)((v->self_ns + 500) / 1000));
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
  if (root->self_ns >= 500)
    buf_printf(out, "(outside Lua) %llu\n",
               (unsigned long long)((root->self_ns + 500) / 1000));
  buf_free(&path);
  view_free(root);
}
