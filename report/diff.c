/*
** diff.c — the comparison of two profiles: both call trees, shaped as the
** reports shape them (view.c: library grouping, with no threshold), merged
** into one tree by frame; each function's total and own weight in both
** runs; the change of each, in shares of each run (the default) or in
** seconds (bytes). Also the HTML page of a diff: the report's page, with
** both sessions as its data.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"


/* ------------------------------------------------------------ the view */

static const char *view_word (int view) {
  return view == VIEW_ALLOC ? "alloc" : view == VIEW_LIVE ? "live" : "time";
}


/* What both runs are weighed by: the view asked for, else bytes allocated
** when both are memory profiles, else time. 0 (and why) if one of them
** has no such weight, or the two would be weighed differently. */
static int diff_view (const DiffRuns *r, const RenderOptions *o, int *view,
                      char *why, size_t whylen) {
  int mem_before = r->before->memory_rate > 0;
  int mem_after = r->after->memory_rate > 0;
  *view = o->view;
  if (*view == VIEW_DEFAULT && mem_before != mem_after) {
    snprintf(why, whylen, "'%s' is a memory profile and '%s' is not: "
             "compare their time with --memory-view time",
             mem_before ? r->before_name : r->after_name,
             mem_before ? r->after_name : r->before_name);
    return 0;
  }
  if (*view == VIEW_DEFAULT) *view = mem_before ? VIEW_ALLOC : VIEW_TIME;
  if (*view != VIEW_TIME && !(mem_before && mem_after)) {
    snprintf(why, whylen, "'%s' is not a memory profile: compare time "
             "(--memory-view time), or profile both with --memory",
             mem_before ? r->after_name : r->before_name);
    return 0;
  }
  return 1;
}


/* S weighed as the view asks, in M: for time S itself; for a memory view
** its nodes' bytes as their weights, as render.c's memory views do (the
** frames are S's: free only those nodes). 0 if memory ran out. */
static int weighed (const Session *S, int view, Session *M) {
  int i;
  *M = *S;
  if (view == VIEW_TIME) return 1;
  M->nodes = malloc((size_t)S->nnodes * sizeof *M->nodes);
  if (M->nodes == NULL) return 0;
  for (i = 0; i < S->nnodes; i++) {
    Node *n = &M->nodes[i];
    *n = S->nodes[i];
    n->self_ns = (uint64_t)((view == VIEW_LIVE ? n->live_bytes
                                               : n->alloc_bytes) + 0.5);
  }
  M->weights_bytes = 1;
  return 1;
}


/* ---------------------------------------------------------- the frames */

/*
** A function is the same in both runs when its kind, name and file are:
** the line where it is defined is left out, as editing the code between
** the runs moves it. Anonymous functions and markers ("(anonymous)",
** "[truncated]") are told apart by their line as well.
*/
static int by_line (const Frame *f) {
  return f->name[0] == '(' || f->name[0] == '[';
}


static uint64_t hash_str (uint64_t h, const char *s) {
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return (h ^ 0xff) * 0x100000001b3ULL;  /* "ab","c" differs from "a","bc" */
}


static uint64_t identity (const Frame *f) {
  uint64_t h = 0xcbf29ce484222325ULL ^ f->kind;
  h = hash_str(hash_str(h, f->name), f->file);
  if (by_line(f)) h = (h ^ (uint64_t)(unsigned)f->line) * 0x100000001b3ULL;
  return h;
}


static int same_function (const Frame *a, const Frame *b) {
  return a->kind == b->kind && strcmp(a->name, b->name) == 0
         && strcmp(a->file, b->file) == 0
         && (!by_line(a) || a->line == b->line);
}


/* The diff's frame for f, added if new; -1 if memory ran out. */
static int diff_frame (Diff *d, IntMap *index, const Frame *f) {
  uint64_t key = identity(f);
  uint32_t j = map_slot(index, key);
  for (; index->vals[j] >= 0; j = (j + 1) & (index->cap - 1))
    if (index->keys[j] == key && same_function(d->frames[index->vals[j]], f))
      return index->vals[j];
  if (!map_put(index, key, d->nframes)) return -1;
  d->frames[d->nframes] = f;
  return d->nframes++;
}


/* of_before[i], of_after[i]: the diff's frame of each run's frame i. The
** after run's frames come first, so a function shows as it is now. */
static int merge_frames (Diff *d, int *of_before, int *of_after) {
  IntMap index;
  int i, ok = 1;
  d->frames = malloc(((size_t)d->after.nframes + d->before.nframes + 1)
                     * sizeof *d->frames);
  if (d->frames == NULL || !map_init(&index, 64)) return 0;
  for (i = 0; ok && i < d->after.nframes; i++)
    ok = (of_after[i] = diff_frame(d, &index, &d->after.frames[i])) >= 0;
  for (i = 0; ok && i < d->before.nframes; i++)
    ok = (of_before[i] = diff_frame(d, &index, &d->before.frames[i])) >= 0;
  map_free(&index);
  return ok;
}


/* ------------------------------------------------------------ the tree */

static DiffNode *dnode_new (int frame) {
  DiffNode *n = calloc(1, sizeof *n);
  if (n) n->frame = frame;
  return n;
}


static void dnode_free (DiffNode *n) {
  int i;
  if (n == NULL) return;
  for (i = 0; i < n->nchildren; i++) dnode_free(n->children[i]);
  free(n->children);
  free(n);
}


static DiffNode *dchild (DiffNode *n, int frame) {
  DiffNode *c;
  int i;
  for (i = 0; i < n->nchildren; i++)
    if (n->children[i]->frame == frame) return n->children[i];
  if (n->nchildren == n->cap) {
    int cap = n->cap ? n->cap * 2 : 4;
    DiffNode **children = realloc(n->children, (size_t)cap * sizeof *children);
    if (children == NULL) return NULL;
    n->children = children;
    n->cap = cap;
  }
  c = dnode_new(frame);
  if (c) n->children[n->nchildren++] = c;
  return c;
}


/* Adds the view tree v of one run (after: 1) under n; 0 if memory ran out. */
static int add_view (DiffNode *n, const ViewNode *v, const int *frame_of,
                     int after) {
  int i;
  if (after) {
    n->after += (double)v->total_ns;
    n->after_self += (double)v->self_ns;
    if (v->hidden) n->hidden = v->hidden;
  }
  else {
    n->before += (double)v->total_ns;
    n->before_self += (double)v->self_ns;
    if (v->hidden && !n->hidden) n->hidden = v->hidden;
  }
  for (i = 0; i < v->nchildren; i++) {
    const ViewNode *w = v->children[i];
    DiffNode *c = dchild(n, frame_of[w->frame]);
    if (c == NULL || !add_view(c, w, frame_of, after)) return 0;
  }
  return 1;
}


/* A weight in the diff's unit: a share of its run, or itself. */
double diff_value (const Diff *d, double weight, int after) {
  double total = after ? d->after_total : d->before_total;
  if (d->runs->absolute) return weight;
  return total > 0 ? weight / total : 0;
}


/* The relative change from before to after (in the diff's unit): 1 is
** +100%, twice the share (or the time); HUGE_VAL if it is new. */
double diff_relative (const Diff *d, double before, double after) {
  double b = diff_value(d, before, 0), a = diff_value(d, after, 1);
  if (b <= 0) return a > 0 ? HUGE_VAL : 0;
  return a / b - 1;
}


/* Largest increase first, the largest decrease last; then the heavier. */
static int compare (double change_x, double after_x, double before_x,
                    double change_y, double after_y, double before_y) {
  if (change_x != change_y) return change_x < change_y ? 1 : -1;
  if (after_x != after_y) return after_x < after_y ? 1 : -1;
  if (before_x != before_y) return before_x < before_y ? 1 : -1;
  return 0;
}


static int by_change (const void *a, const void *b) {
  const DiffNode *x = *(DiffNode *const *)a, *y = *(DiffNode *const *)b;
  int c = compare(x->change, x->after, x->before,
                  y->change, y->after, y->before);
  return c ? c : x->frame - y->frame;
}


static void settle (const Diff *d, DiffNode *n) {
  int i;
  n->change = diff_value(d, n->after, 1) - diff_value(d, n->before, 0);
  for (i = 0; i < n->nchildren; i++) settle(d, n->children[i]);
  if (n->nchildren > 1)
    qsort(n->children, (size_t)n->nchildren, sizeof *n->children, by_change);
}


/* ------------------------------------------------------- the functions */

static int function_by_change (const void *a, const void *b) {
  const DiffFunction *x = a, *y = b;
  int c = compare(x->change, x->after, x->before,
                  y->change, y->after, y->before);
  return c ? c : x->frame - y->frame;
}


/* Adds n and below to the functions; depth[f]: calls of f above n (a
** recursive call's total is already in its caller's). */
static void add_functions (DiffFunction *fn, int *depth, const DiffNode *n) {
  int i;
  if (n->frame >= 0) {
    DiffFunction *f = &fn[n->frame];
    if (depth[n->frame]++ == 0) {
      f->before += n->before;
      f->after += n->after;
    }
    f->before_self += n->before_self;
    f->after_self += n->after_self;
  }
  for (i = 0; i < n->nchildren; i++) add_functions(fn, depth, n->children[i]);
  if (n->frame >= 0) depth[n->frame]--;
}


static int sum_functions (Diff *d) {
  DiffFunction *fn = calloc((size_t)d->nframes + 1, sizeof *fn);
  int *depth = calloc((size_t)d->nframes + 1, sizeof *depth);
  int i, n = 0;
  if (fn == NULL || depth == NULL) {
    free(fn);
    free(depth);
    return 0;
  }
  add_functions(fn, depth, d->root);
  free(depth);
  for (i = 0; i < d->nframes; i++) {
    DiffFunction f = fn[i];
    if (f.before <= 0 && f.after <= 0) continue;  /* shown in no tree */
    f.frame = i;
    f.change = diff_value(d, f.after, 1) - diff_value(d, f.before, 0);
    f.self_change = diff_value(d, f.after_self, 1)
                    - diff_value(d, f.before_self, 0);
    fn[n++] = f;
  }
  qsort(fn, (size_t)n, sizeof *fn, function_by_change);
  d->functions = fn;
  d->nfunctions = n;
  return 1;
}


/* ------------------------------------------------------------ building */

static int build_tree (Diff *d, const RenderOptions *o) {
  RenderOptions all = *o;
  int *of_before = malloc(((size_t)d->before.nframes + 1) * sizeof(int));
  int *of_after = malloc(((size_t)d->after.nframes + 1) * sizeof(int));
  ViewNode *vb = NULL, *va = NULL;
  int ok;
  all.threshold = 0;  /* the diff hides what is small in both runs */
  ok = of_before && of_after && merge_frames(d, of_before, of_after)
       && (vb = view_build(&d->before, &all)) != NULL
       && (va = view_build(&d->after, &all)) != NULL
       && (d->root = dnode_new(-1)) != NULL
       && add_view(d->root, vb, of_before, 0)
       && add_view(d->root, va, of_after, 1);
  if (ok) {
    d->before_total = d->root->before;
    d->after_total = d->root->after;
    settle(d, d->root);
    ok = sum_functions(d);
  }
  view_free(vb);
  view_free(va);
  free(of_before);
  free(of_after);
  return ok;
}


int diff_build (Diff *d, const DiffRuns *runs, const RenderOptions *o,
                char *why, size_t whylen) {
  memset(d, 0, sizeof *d);
  d->runs = runs;
  if (!diff_view(runs, o, &d->view, why, whylen)) return 0;
  d->bytes = d->view != VIEW_TIME;
  d->before.nodes = d->after.nodes = NULL;
  if (!weighed(runs->before, d->view, &d->before)
      || !weighed(runs->after, d->view, &d->after) || !build_tree(d, o)) {
    snprintf(why, whylen, "out of memory");
    diff_free(d);
    return 0;
  }
  return 1;
}


void diff_free (Diff *d) {
  if (d->bytes) {  /* the copies weighed() made */
    free(d->before.nodes);
    free(d->after.nodes);
  }
  free(d->frames);
  free(d->functions);
  dnode_free(d->root);
  memset(d, 0, sizeof *d);
}


/* ------------------------------------------------------------ the page */

/*
** The HTML report in its diff mode: the page render_html makes, whose data
** (the JSON between the sprof-data element's tags, where render_json's
** escaping of '<' guarantees no "</script>" of its own) is replaced by
** both sessions. The page compares them itself, as this file does.
*/
static void render_page (const DiffRuns *r, const RenderOptions *o, int view,
                         Buf *out) {
  static const char marker[] = "id=\"sprof-data\">";
  RenderOptions po = *o;
  Session empty;
  Buf page;
  const char *data, *end;
  buf_init(&page);
  po.view = view;
  if (!session_init(&empty)) { out->failed = 1; return; }
  render_html(&empty, &po, &page);
  session_free(&empty);
  data = page.data ? strstr(page.data, marker) : NULL;
  end = data ? strstr(data, "</script>") : NULL;
  if (page.failed || end == NULL) {
    out->failed = 1;
    buf_free(&page);
    return;
  }
  data += strlen(marker);
  buf_add(out, page.data, (size_t)(data - page.data));
  buf_printf(out, "{\"format\":\"sprof-diff\",\"version\":1,\"mode\":\"%s\","
             "\"view\":\"%s\",\n\"before_file\":",
             r->absolute ? "absolute" : "share", view_word(view));
  buf_json_string(out, r->before_name);
  buf_puts(out, ",\"after_file\":");
  buf_json_string(out, r->after_name);
  buf_puts(out, ",\n\"before\":");
  render_json(r->before, out);
  buf_puts(out, ",\n\"after\":");
  render_json(r->after, out);
  buf_putc(out, '}');
  buf_puts(out, end);
  buf_free(&page);
}


/* The diff of two runs in 'format' (text or html); 0 (and why, in one
** line) if they cannot be compared or the format is not one of those. */
int diff_render (const DiffRuns *runs, const char *format,
                 const RenderOptions *o, Buf *out, char *why, size_t whylen) {
  Diff d;
  int view;
  if (strcmp(format, "text") != 0 && strcmp(format, "html") != 0) {
    snprintf(why, whylen, "--diff writes text or html, not %s "
             "(-r text, -r html, or -o FILE.html)", format);
    return 0;
  }
  if (strcmp(format, "html") == 0) {
    if (!diff_view(runs, o, &view, why, whylen)) return 0;
    render_page(runs, o, view, out);
    return 1;
  }
  if (!diff_build(&d, runs, o, why, whylen)) return 0;
  diff_render_text(&d, o, out);
  diff_free(&d);
  return 1;
}
