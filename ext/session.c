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
  map_free(&S->frame_index);
  map_free(&S->child_index);
  memset(S, 0, sizeof *S);
}


/* Forgets everything recorded, keeping the settings. */
void session_clear (Session *S) {
  double interval = S->interval, memory_rate = S->memory_rate;
  ClockKind clock = S->clock;
  char *program = S->program, *program_real = S->program_real;
  S->program = S->program_real = NULL;
  session_free(S);
  if (session_init(S)) {
    S->interval = interval;
    S->clock = clock;
    S->memory_rate = memory_rate;
    S->program = program;
    S->program_real = program_real;
  }
  else {
    free(program);
    free(program_real);
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
