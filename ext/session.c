/*
** session.c — frame interning and the call tree.
*/
#define _DEFAULT_SOURCE  /* realpath */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "session.h"


/* ------------------------------------------------------------- frames */

static uint64_t hash_str (uint64_t h, const char *s) {
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}


static uint64_t frame_key (FrameKind kind, const char *name, const char *file,
                           int line, const void *addr) {
  uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)kind;
  if ((kind == FRAME_C || kind == FRAME_NATIVE) && addr != NULL)
    /* a C or native function is its address */
    return h ^ ((uint64_t)(uintptr_t)addr * 0x9E3779B97F4A7C15ULL);
  h = hash_str(h, file);
  h = (h ^ (uint64_t)(unsigned)line) * 0x100000001b3ULL;
  if (kind != FRAME_LUA)  /* a Lua function is its source and line */
    h = hash_str(h, name);
  return h;
}


static int frame_matches (const Frame *f, FrameKind kind, const char *name,
                          const char *file, int line, const void *addr) {
  if (f->kind != kind) return 0;
  if ((kind == FRAME_C || kind == FRAME_NATIVE)
      && (addr != NULL || f->addr != NULL))
    return f->addr == addr;  /* frames read back from a file have none */
  if (f->line != line || strcmp(f->file, file) != 0) return 0;
  return kind == FRAME_LUA || strcmp(f->name, name) == 0;
}


int frame_is_library_path (const char *file) {
  return strstr(file, "/share/lua/") != NULL
      || strstr(file, "/lib/lua/") != NULL
      || strstr(file, "/.luarocks/") != NULL
      || (strncmp(file, "/usr/lib/", 9) == 0 && strstr(file, "/lua/") != NULL);
}


/* The file name without its directories and without a ".lua" ending. */
static const char *base_name (const char *path, size_t *len) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  *len = strlen(base);
  if (*len > 4 && strcmp(base + *len - 4, ".lua") == 0) *len -= 4;
  return base;
}


/*
** The package of a file under a Lua directory: the first name after
** ".../lua/5.4/", so "ldoc" for both .../lua/5.4/ldoc.lua and
** .../lua/5.4/ldoc/parse.lua. NULL if the file lies under none.
*/
static const char *package_of (const char *file, size_t *len) {
  const char *p = file;
  while ((p = strstr(p, "/lua/")) != NULL) {
    const char *v = p + 5;  /* a version: digits, a dot, digits */
    p = v;
    if (!isdigit((unsigned char)*v)) continue;
    while (isdigit((unsigned char)*v)) v++;
    if (*v++ != '.' || !isdigit((unsigned char)*v)) continue;
    while (isdigit((unsigned char)*v)) v++;
    if (*v++ != '/') continue;
    *len = strcspn(v, "/");
    if (v[*len] == '\0' && *len > 4 && strcmp(v + *len - 4, ".lua") == 0)
      *len -= 4;
    return *len > 0 ? v : NULL;
  }
  return NULL;
}


static int same_name (const char *a, size_t alen, const char *b, size_t blen) {
  return a != NULL && b != NULL && alen == blen && memcmp(a, b, alen) == 0;
}


/*
** Whether 'pkg' is a package of the program at 'path': the one it lies
** in, or, for an installed command (no ".lua" ending), the one named
** after it ("/usr/bin/ldoc": ldoc and ldoc.*). A script "http.lua" is
** not taken for the http library's own.
*/
static int program_package (const char *path, const char *pkg, size_t len) {
  size_t n, full;
  const char *name = package_of(path, &n);
  if (same_name(name, n, pkg, len)) return 1;
  name = base_name(path, &n);
  full = strlen(name);
  return n == full && same_name(name, n, pkg, len);
}


/*
** A file under the system Lua directories that is still the program's:
** the script that was run, and the modules of its own package, which is
** the package the script lies in or the one named after it, taking the
** script's path both as given and with symlinks resolved. Only for a
** program that names an existing file (not "GET /slow").
*/
static int is_program_file (const Session *S, const char *file) {
  const char *pkg;
  size_t len;
  if (S->program == NULL || S->program_real == NULL) return 0;
  if (strcmp(file, S->program) == 0 || strcmp(file, S->program_real) == 0)
    return 1;
  pkg = package_of(file, &len);
  return pkg != NULL && (program_package(S->program, pkg, len)
                         || program_package(S->program_real, pkg, len));
}


static char *dupstr (const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}


/*
** The index of the frame, added if new; -1 if memory ran out.
** A Lua function is known by where it is defined, so calls that name it
** differently land on one frame; its first known name is kept.
*/
/* The index of a frame if it is known, else -1. (The name matters only
** for pseudo and native frames.) */
int session_find_frame (const Session *S, FrameKind kind, const char *name,
                        const char *file, int line, const void *addr) {
  uint64_t key = frame_key(kind, name, file, line, addr);
  const IntMap *m = &S->frame_index;
  uint32_t j = map_slot(m, key);
  for (; m->vals[j] >= 0; j = (j + 1) & (m->cap - 1))
    if (m->keys[j] == key
        && frame_matches(&S->frames[m->vals[j]], kind, name, file, line, addr))
      return m->vals[j];
  return -1;
}


int session_frame (Session *S, FrameKind kind, const char *name,
                   const char *file, int line, const void *addr) {
  int known = session_find_frame(S, kind, name, file, line, addr);
  Frame *f;
  if (known >= 0) {
    f = &S->frames[known];
    if (strcmp(f->name, "(anonymous)") == 0 && name[0] != '(') {
      char *better = dupstr(name);  /* called by a name this time */
      if (better) { free(f->name); f->name = better; }
    }
    return known;
  }
  if (S->nframes == S->frames_cap) {
    int cap = S->frames_cap ? S->frames_cap * 2 : 64;
    Frame *frames = realloc(S->frames, (size_t)cap * sizeof *frames);
    if (frames == NULL) return -1;
    S->frames = frames;
    S->frames_cap = cap;
  }
  f = &S->frames[S->nframes];
  f->name = dupstr(name);
  f->file = dupstr(file);
  if (f->name == NULL || f->file == NULL) {
    free(f->name); free(f->file);
    return -1;
  }
  f->line = line;
  f->kind = (unsigned char)kind;
  f->addr = addr;
  f->source_checked = 0;
  f->internal = 0;
  f->host = 0;
  f->library = kind == FRAME_LUA && frame_is_library_path(file)
               && !is_program_file(S, file);
  if (!map_put(&S->frame_index, frame_key(kind, name, file, line, addr),
               S->nframes)) {
    free(f->name); free(f->file);
    return -1;
  }
  return S->nframes++;
}


/* --------------------------------------------------------------- tree */

static int new_node (Session *S, int parent, int frame) {
  Node *n;
  if (S->nnodes == S->nodes_cap) {
    int cap = S->nodes_cap ? S->nodes_cap * 2 : 256;
    Node *nodes = realloc(S->nodes, (size_t)cap * sizeof *nodes);
    if (nodes == NULL) return -1;
    S->nodes = nodes;
    S->nodes_cap = cap;
  }
  n = &S->nodes[S->nnodes];
  n->frame = frame;
  n->parent = parent;
  n->child = -1;
  n->sibling = -1;
  n->self_ns = 0;
  n->samples = 0;
  n->alloc_bytes = n->alloc_objects = n->live_bytes = n->live_objects = 0;
  if (parent >= 0) {
    n->sibling = S->nodes[parent].child;
    S->nodes[parent].child = S->nnodes;
  }
  return S->nnodes++;
}


static int child_of (Session *S, int parent, int frame) {
  uint64_t key = ((uint64_t)(uint32_t)parent << 32) | (uint32_t)frame;
  IntMap *m = &S->child_index;
  uint32_t j = map_slot(m, key);
  int node;
  for (; m->vals[j] >= 0; j = (j + 1) & (m->cap - 1))
    if (m->keys[j] == key) return m->vals[j];
  node = new_node(S, parent, frame);
  if (node < 0) return -1;
  if (!map_put(m, key, node)) {
    S->nnodes--;
    S->nodes[parent].child = S->nodes[node].sibling;
    return -1;
  }
  return node;
}


/*
** Adds a stack given root first; returns its leaf node. If memory runs out
** the weight stays on the deepest node that could be made: no time is lost.
*/
int session_add_stack (Session *S, const int *frames, int n,
                       uint64_t weight_ns, uint64_t samples) {
  int node = 0, i;
  for (i = 0; i < n; i++) {
    int child = child_of(S, node, frames[i]);
    if (child < 0) break;
    node = child;
  }
  S->nodes[node].self_ns += weight_ns;
  S->nodes[node].samples += samples;
  S->samples += samples;
  S->weight_ns += weight_ns;
  return node;
}


/* Estimated bytes and objects allocated (or, 'live', still allocated at
** the end) by a node's stack. */
void session_add_memory (Session *S, int node, double bytes, double objects,
                         int live) {
  Node *n = &S->nodes[node];
  if (live) {
    n->live_bytes += bytes;
    n->live_objects += objects;
  }
  else {
    n->alloc_bytes += bytes;
    n->alloc_objects += objects;
  }
}


void session_add_moment (Session *S, uint64_t t_ns, int node,
                         uint64_t heap_bytes) {
  if (S->moment_skip > 0) {
    S->moment_skip--;
    return;
  }
  if (S->nmoments == SESSION_MAX_MOMENTS) {  /* thin: keep every other */
    int i;
    for (i = 0; 2 * i < S->nmoments; i++) S->moments[i] = S->moments[2 * i];
    S->nmoments = i;
    S->moment_stride = S->moment_stride ? S->moment_stride * 2 : 2;
  }
  if (S->nmoments == S->moments_cap) {
    int cap = S->moments_cap ? S->moments_cap * 2 : 1024;
    Moment *moments = realloc(S->moments, (size_t)cap * sizeof *moments);
    if (moments == NULL) return;  /* the timeline is a bonus: go without */
    S->moments = moments;
    S->moments_cap = cap;
  }
  S->moments[S->nmoments].t_ns = t_ns;
  S->moments[S->nmoments].node = node;
  S->moments[S->nmoments].heap_bytes = heap_bytes;
  S->nmoments++;
  S->moment_skip = S->moment_stride > 1 ? S->moment_stride - 1 : 0;
}


/* Time that belongs to a known node but is not a sample of its own. */
void session_add_weight (Session *S, int node, uint64_t weight_ns) {
  S->nodes[node].self_ns += weight_ns;
  S->weight_ns += weight_ns;
}


/* ------------------------------------------------------------ session */

int session_init (Session *S) {
  memset(S, 0, sizeof *S);
  if (!map_init(&S->frame_index, 256) || !map_init(&S->child_index, 1024)) {
    map_free(&S->frame_index);
    return 0;
  }
  if (new_node(S, -1, -1) != 0) {
    session_free(S);
    return 0;
  }
  S->interval = 0.001;
  return 1;
}


void session_free (Session *S) {
  int i;
  for (i = 0; i < S->nframes; i++) {
    free(S->frames[i].name);
    free(S->frames[i].file);
  }
  free(S->frames);
  free(S->nodes);
  free(S->moments);
  free(S->program);
  free(S->program_real);
  for (i = 0; i < S->nlabels; i++) {
    free(S->label_keys[i]);
    free(S->label_values[i]);
  }
  free(S->label_keys);
  free(S->label_values);
  map_free(&S->frame_index);
  map_free(&S->child_index);
  memset(S, 0, sizeof *S);
}


/* Forgets everything recorded, keeping the settings. */
void session_clear (Session *S) {
  double interval = S->interval, memory_rate = S->memory_rate;
  ClockKind clock = S->clock;
  char *program = S->program, *program_real = S->program_real;
  char **keys = S->label_keys, **values = S->label_values;
  int nlabels = S->nlabels;
  S->program = S->program_real = NULL;
  S->label_keys = S->label_values = NULL;
  S->nlabels = 0;
  session_free(S);
  if (session_init(S)) {
    S->interval = interval;
    S->clock = clock;
    S->memory_rate = memory_rate;
    S->program = program;
    S->program_real = program_real;
    S->label_keys = keys;
    S->label_values = values;
    S->nlabels = nlabels;
  }
  else {
    S->program = program;  /* freed with the labels below */
    S->program_real = program_real;
    S->label_keys = keys;
    S->label_values = values;
    S->nlabels = nlabels;
    session_free(S);
  }
}


/* Names the program. Frames seen from now on that belong to it are not
** library code (is_program_file). */
void session_set_program (Session *S, const char *program) {
  char *copy = program ? dupstr(program) : NULL;
  free(S->program);
  free(S->program_real);
  S->program = copy;
  S->program_real = copy ? realpath(copy, NULL) : NULL;
}


/* Sets a label (see Session); 0 if memory ran out. */
int session_set_label (Session *S, const char *key, const char *value) {
  char **keys, **values, *k, *v;
  int i;
  for (i = 0; i < S->nlabels; i++)
    if (strcmp(S->label_keys[i], key) == 0) {
      if ((v = dupstr(value)) == NULL) return 0;
      free(S->label_values[i]);
      S->label_values[i] = v;
      return 1;
    }
  keys = realloc(S->label_keys, (size_t)(S->nlabels + 1) * sizeof *keys);
  if (keys) S->label_keys = keys;
  values = realloc(S->label_values, (size_t)(S->nlabels + 1) * sizeof *values);
  if (values) S->label_values = values;
  k = dupstr(key);
  v = dupstr(value);
  if (keys == NULL || values == NULL || k == NULL || v == NULL) {
    free(k);
    free(v);
    return 0;
  }
  S->label_keys[S->nlabels] = k;
  S->label_values[S->nlabels++] = v;
  return 1;
}


/* ------------------------------------------------------ periods (control.c) */

/*
** Forgets the call tree, the timeline and the facts of the run, keeping
** the frames: their indices stay valid for whatever caches them (native
** symbols, the native views of capture.c), and the names found for them
** are not looked for again. Memory then holds the distinct functions
** ever seen and one period's distinct stacks.
*/
void session_clear_tree (Session *S) {
  IntMap fresh;
  if (map_init(&fresh, 1024)) {
    map_free(&S->child_index);
    S->child_index = fresh;
  }
  else {  /* keep the old one, emptied */
    uint32_t j;
    for (j = 0; j < S->child_index.cap; j++) S->child_index.vals[j] = -1;
    S->child_index.count = 0;
  }
  S->nnodes = 1;
  S->nodes[0].child = -1;
  S->nodes[0].self_ns = S->nodes[0].samples = 0;
  S->nodes[0].alloc_bytes = S->nodes[0].alloc_objects = 0;
  S->nodes[0].live_bytes = S->nodes[0].live_objects = 0;
  S->nmoments = 0;
  S->moment_stride = S->moment_skip = 0;
  S->samples = S->weight_ns = S->duration_ns = S->cpu_ns = 0;
  S->overhead_ns = S->sampler_ns = 0;
}


/* The frames of a node's stack, root first, into frames[0, max); returns
** how many (the outermost ones are kept if it is deeper). */
int session_path (const Session *S, int node, int *frames, int max) {
  int n = 0, i, j;
  for (; node > 0 && n < max; node = S->nodes[node].parent)
    frames[n++] = S->nodes[node].frame;
  for (i = 0, j = n - 1; i < j; i++, j--) {
    int t = frames[i];
    frames[i] = frames[j];
    frames[j] = t;
  }
  return n;
}


/* src's frame f as a frame of dst, added if new; -1: out of memory. */
static int merge_frame (Session *dst, const Frame *f) {
  int g = session_frame(dst, (FrameKind)f->kind, f->name, f->file, f->line,
                        f->addr);
  if (g >= 0) {
    Frame *d = &dst->frames[g];
    d->library = f->library;
    d->source_checked |= f->source_checked;
    d->internal |= f->internal;
    d->host |= f->host;
  }
  return g;
}


static int by_time (const void *a, const void *b) {
  const Moment *x = a, *y = b;
  return x->t_ns < y->t_ns ? -1 : x->t_ns > y->t_ns;
}


/* src's timeline into dst's, in time order, taken from dst's start;
** thinned as session_add_moment thins. 'node' maps src's nodes. */
static void merge_moments (Session *dst, const Session *src, const int *node) {
  int64_t shift = (int64_t)((src->start_time - dst->start_time) * 1e9);
  int n = dst->nmoments + src->nmoments, i;
  Moment *m;
  if (src->nmoments == 0) return;
  if (n > dst->moments_cap) {
    m = realloc(dst->moments, (size_t)n * sizeof *m);
    if (m == NULL) return;  /* the timeline is a bonus: go without */
    dst->moments = m;
    dst->moments_cap = n;
  }
  for (i = 0; i < src->nmoments; i++) {
    Moment *to = &dst->moments[dst->nmoments++];
    int64_t t = (int64_t)src->moments[i].t_ns + shift;
    *to = src->moments[i];
    to->t_ns = t > 0 ? (uint64_t)t : 0;
    to->node = node[src->moments[i].node];
  }
  qsort(dst->moments, (size_t)dst->nmoments, sizeof *dst->moments, by_time);
  while (dst->nmoments > SESSION_MAX_MOMENTS) {
    for (i = 0; 2 * i < dst->nmoments; i++)
      dst->moments[i] = dst->moments[2 * i];
    dst->nmoments = i;
  }
}


/*
** Adds src's stacks, timeline and facts to dst (one report of several
** Lua states, or of several periods): weights add up, the run is as long
** as the longest one and starts with the earliest. 0 if memory ran out
** (what was added stays).
*/
int session_merge (Session *dst, const Session *src) {
  int *frame = malloc(((size_t)src->nframes + 1) * sizeof *frame);
  int *node = malloc((size_t)src->nnodes * sizeof *node);
  int i, ok = frame != NULL && node != NULL;
  for (i = 0; ok && i < src->nframes; i++) frame[i] = -1;
  /* first node[i] = 0 marks the nodes that weigh something or have such
     a node below them (children come after their parents): stacks that
     weigh nothing are not copied */
  for (i = 0; ok && i < src->nnodes; i++) node[i] = -1;
  for (i = src->nnodes - 1; ok && i >= 0; i--) {
    const Node *s = &src->nodes[i];
    if (s->self_ns || s->samples || s->alloc_bytes || s->alloc_objects
        || s->live_bytes || s->live_objects)
      node[i] = 0;
    if (node[i] == 0 && s->parent >= 0) node[s->parent] = 0;
  }
  if (ok && (dst->start_time == 0
             || (src->start_time > 0 && src->start_time < dst->start_time))) {
    int k;  /* dst's own timeline moves to the earlier start */
    uint64_t shift = dst->start_time > 0
        ? (uint64_t)((dst->start_time - src->start_time) * 1e9) : 0;
    for (k = 0; k < dst->nmoments; k++) dst->moments[k].t_ns += shift;
    dst->start_time = src->start_time;
  }
  for (i = 0; ok && i < src->nnodes; i++) {  /* parents come first */
    const Node *s = &src->nodes[i];
    Node *d;
    if (i == 0) node[i] = 0;
    else if (node[i] < 0) continue;  /* weighs nothing */
    else {
      if (frame[s->frame] < 0)
        frame[s->frame] = merge_frame(dst, &src->frames[s->frame]);
      node[i] = frame[s->frame] < 0 ? -1
              : child_of(dst, node[s->parent], frame[s->frame]);
      if (node[i] < 0) { ok = 0; break; }
    }
    d = &dst->nodes[node[i]];
    d->self_ns += s->self_ns;
    d->samples += s->samples;
    d->alloc_bytes += s->alloc_bytes;
    d->alloc_objects += s->alloc_objects;
    d->live_bytes += s->live_bytes;
    d->live_objects += s->live_objects;
  }
  if (ok) {
    merge_moments(dst, src, node);
    dst->samples += src->samples;
    dst->weight_ns += src->weight_ns;
    if (src->duration_ns > dst->duration_ns) dst->duration_ns = src->duration_ns;
    if (src->cpu_ns > dst->cpu_ns) dst->cpu_ns = src->cpu_ns;
    dst->overhead_ns += src->overhead_ns;
    dst->sampler_ns += src->sampler_ns;
    if (dst->program == NULL && src->program != NULL)
      session_set_program(dst, src->program);
  }
  free(frame);
  free(node);
  return ok;
}
