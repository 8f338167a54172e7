/*
** view.c — processors: from the session's call tree to the tree shown.
** Library frames are folded into the library frame the program called
** (unless show_all), totals are summed, small frames are dropped and
** children are sorted by time.
*/
#include <stdlib.h>

#include "report.h"


static ViewNode *vnode_new (int frame) {
  ViewNode *v = calloc(1, sizeof *v);
  if (v) v->frame = frame;
  return v;
}


void view_free (ViewNode *v) {
  int i;
  if (v == NULL) return;
  for (i = 0; i < v->nchildren; i++) view_free(v->children[i]);
  free(v->children);
  free(v);
}


/* The child of v for 'frame', made if new; NULL if memory ran out. */
static ViewNode *vchild (ViewNode *v, int frame) {
  ViewNode *w;
  int i;
  for (i = 0; i < v->nchildren; i++)
    if (v->children[i]->frame == frame) return v->children[i];
  if (v->nchildren == v->cap) {
    int cap = v->cap ? v->cap * 2 : 4;
    ViewNode **children = realloc(v->children, (size_t)cap * sizeof *children);
    if (children == NULL) return NULL;
    v->children = children;
    v->cap = cap;
  }
  w = vnode_new(frame);
  if (w) v->children[v->nchildren++] = w;
  return w;
}


static int is_user_code (const Frame *f) {
  return f->kind == FRAME_LUA && !f->library;
}


/*
** Adds the children of session node 'node' under v. 'in_library' says v
** is library code: then its callees that are not the program's own Lua
** code are hidden, their time and callees going to v.
*/
static void fold (const Session *S, int node, ViewNode *v, int in_library,
                  const RenderOptions *o) {
  int c;
  for (c = S->nodes[node].child; c >= 0; c = S->nodes[c].sibling) {
    const Node *n = &S->nodes[c];
    const Frame *f = &S->frames[n->frame];
    if ((f->internal && !o->show_internals)
        || (f->host && !o->show_host && v->frame < 0)) {
      /* the interpreter's own frames, the host above the root: their time
         and callees go to the frame above */
      v->self_ns += n->self_ns;
      v->samples += n->samples;
      fold(S, c, v, in_library, o);
    }
    else if (!o->show_all && in_library && !is_user_code(f)) {
      v->self_ns += n->self_ns;
      v->samples += n->samples;
      v->hidden++;
      if (v->hidden_file == NULL && f->kind == FRAME_LUA)
        v->hidden_file = f->file;
      fold(S, c, v, 1, o);
    }
    else {
      ViewNode *w = vchild(v, n->frame);
      if (w == NULL) continue;
      w->self_ns += n->self_ns;
      w->samples += n->samples;
      fold(S, c, w, f->library, o);
    }
  }
}


static void sum_totals (ViewNode *v) {
  int i;
  v->total_ns = v->self_ns;
  for (i = 0; i < v->nchildren; i++) {
    sum_totals(v->children[i]);
    v->total_ns += v->children[i]->total_ns;
  }
}


static int by_total (const void *a, const void *b) {
  const ViewNode *x = *(ViewNode *const *)a, *y = *(ViewNode *const *)b;
  if (x->total_ns != y->total_ns) return x->total_ns < y->total_ns ? 1 : -1;
  return x->frame - y->frame;  /* stable output for equal times */
}


/* Drops children under 'min_ns' (their time stays in v's total). */
static void prune_and_sort (ViewNode *v, uint64_t min_ns) {
  int i, kept = 0;
  for (i = 0; i < v->nchildren; i++) {
    ViewNode *w = v->children[i];
    if (w->total_ns < min_ns || w->total_ns == 0) view_free(w);
    else {
      prune_and_sort(w, min_ns);
      v->children[kept++] = w;
    }
  }
  v->nchildren = kept;
  if (kept > 1)
    qsort(v->children, (size_t)kept, sizeof *v->children, by_total);
}


ViewNode *view_build (const Session *S, const RenderOptions *o) {
  ViewNode *root = vnode_new(-1);
  if (root == NULL) return NULL;
  root->self_ns = S->nodes[0].self_ns;
  root->samples = S->nodes[0].samples;
  fold(S, 0, root, 0, o);
  sum_totals(root);
  prune_and_sort(root, o->show_all ? 0
                       : (uint64_t)(o->threshold * (double)root->total_ns));
  return root;
}
