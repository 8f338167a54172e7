/*
** view.c — processors: from the session's call tree to the tree shown.
** Library frames are folded into the library frame the program called
** (unless show_all), except those with a large own time; totals are
** summed, small frames are dropped and children are sorted by time.
*/
#include <stdlib.h>
#include <string.h>

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


/* Counts f among the frames hidden into v. The file named for them is
** that of the Lua frame with the most own time, whatever the order the
** tree was built in (a session read back from JSON has another). */
static void hide (ViewNode *v, const Node *n, const Frame *f) {
  v->hidden_ns += n->self_ns;
  v->samples += n->samples;
  v->hidden++;
  if (f->kind != FRAME_LUA) return;
  if (v->hidden_file == NULL) v->hidden_files = 1;
  else if (strcmp(v->hidden_file, f->file) != 0) v->hidden_files = 2;
  if (v->hidden_file == NULL || n->self_ns > v->hidden_file_ns
      || (n->self_ns == v->hidden_file_ns
          && strcmp(f->file, v->hidden_file) < 0)) {
    v->hidden_file = f->file;
    v->hidden_file_ns = n->self_ns;
  }
}


typedef struct Folding {
  const Session *S;
  const RenderOptions *o;
  double hot_share_ns;  /* own time from which a library frame shows anyway
                          (a double, compared as the HTML report's JS does) */
} Folding;


/* A node's own time as shown: with that of the interpreter's own frames
** under it, which fold into it. */
static uint64_t own_ns (const Folding *F, int node) {
  const Session *S = F->S;
  uint64_t ns = S->nodes[node].self_ns;
  int c;
  for (c = S->nodes[node].child; c >= 0; c = S->nodes[c].sibling)
    if (S->frames[S->nodes[c].frame].internal && !F->o->show_internals)
      ns += own_ns(F, c);
  return ns;
}


static int is_hot (const Folding *F, int node) {
  uint64_t ns = own_ns(F, node);
  return ns > 0 && (double)ns >= F->hot_share_ns;
}


/*
** Adds the children of session node 'node' under v. 'in_library' says v
** is library code: then its callees that are not the program's own Lua
** code are hidden into v (the group), with their callees, unless their
** own time is at least hot_share_ns: such a frame shows under v, the frames
** between them staying hidden. 'hidden' says 'node' itself was hidden.
*/
static void fold (const Folding *F, int node, ViewNode *v, int in_library,
                  int hidden) {
  const Session *S = F->S;
  const RenderOptions *o = F->o;
  int c;
  for (c = S->nodes[node].child; c >= 0; c = S->nodes[c].sibling) {
    const Node *n = &S->nodes[c];
    const Frame *f = &S->frames[n->frame];
    if ((f->internal && !o->show_internals)
        || (f->host && !o->show_host && v->frame < 0)) {
      /* the interpreter's own frames, the host above the root: their time
         and callees go to the frame above */
      if (hidden) v->hidden_ns += n->self_ns;
      else v->self_ns += n->self_ns;
      v->samples += n->samples;
      fold(F, c, v, in_library, hidden);
    }
    else if (!o->show_all && in_library && !is_user_code(f)
             && !is_hot(F, c)) {
      hide(v, n, f);
      fold(F, c, v, 1, 1);
    }
    else {
      ViewNode *w = vchild(v, n->frame);
      if (w == NULL) continue;
      w->self_ns += n->self_ns;
      w->samples += n->samples;
      fold(F, c, w, f->library || (in_library && !is_user_code(f)), 0);
    }
  }
}


static void sum_totals (ViewNode *v) {
  int i;
  v->total_ns = v->self_ns + v->hidden_ns;
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
  Folding F;
  uint64_t total = 0;
  int i;
  if (root == NULL) return NULL;
  for (i = 0; i < S->nnodes; i++) total += S->nodes[i].self_ns;
  F.S = S;
  F.o = o;
  F.hot_share_ns = o->self_threshold * (double)total;
  root->self_ns = S->nodes[0].self_ns;
  root->samples = S->nodes[0].samples;
  fold(&F, 0, root, 0, 0);
  sum_totals(root);
  prune_and_sort(root, o->show_all ? 0
                       : (uint64_t)(o->threshold * (double)root->total_ns));
  return root;
}
