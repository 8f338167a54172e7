/*
** stacks.c — the stacks as exported to other tools (speedscope, pprof):
** every frame as recorded, except what the reports hide whatever the
** threshold — the interpreter's own native frames and the host's frames
** above the Lua root, unless the options ask for them — as the collapsed
** output does. Library code is not folded: the reader's views do that.
*/
#include <stdlib.h>

#include "report.h"


static int hidden (const Frame *f, const RenderOptions *o, int below_shown) {
  return (f->internal && !o->show_internals)
      || (f->host && !o->show_host && !below_shown);
}


/* Numbers the frames that some shown node has, in the session's order. */
static void number_frames (ShownTree *t, const Session *S) {
  int i;
  for (i = 0; i < S->nframes; i++) t->id[i] = -1;
  for (i = 1; i < S->nnodes; i++)
    if (t->node[i] == i) t->id[S->nodes[i].frame] = 0;
  for (i = 0; i < S->nframes; i++)
    if (t->id[i] == 0) t->id[i] = t->nids++;
}


/* Nodes are made after their parents, so one pass from the root does. */
int shown_build (ShownTree *t, const Session *S, const RenderOptions *o) {
  size_t n = (size_t)S->nnodes;
  int i;
  t->node = malloc(n * sizeof *t->node);
  t->parent = malloc(n * sizeof *t->parent);
  t->depth = malloc(n * sizeof *t->depth);
  t->id = malloc(((size_t)S->nframes + 1) * sizeof *t->id);
  t->max_depth = t->nids = 0;
  if (t->node == NULL || t->parent == NULL || t->depth == NULL
      || t->id == NULL) {
    shown_free(t);
    return 0;
  }
  t->node[0] = 0;
  t->parent[0] = -1;
  t->depth[0] = 0;
  for (i = 1; i < S->nnodes; i++) {
    const Node *nd = &S->nodes[i];
    int up = t->node[nd->parent];  /* the shown node above */
    if (hidden(&S->frames[nd->frame], o, up != 0)) {
      t->node[i] = up;
      t->parent[i] = t->depth[i] = -1;
    }
    else {
      t->node[i] = i;
      t->parent[i] = up;
      t->depth[i] = t->depth[up] + 1;
      if (t->depth[i] > t->max_depth) t->max_depth = t->depth[i];
    }
  }
  number_frames(t, S);
  return 1;
}


void shown_free (ShownTree *t) {
  free(t->node);
  free(t->parent);
  free(t->depth);
  free(t->id);
  t->node = t->parent = t->depth = t->id = NULL;
}
