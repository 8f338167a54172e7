/*
** load.c — reads a saved JSON session back (cJSON does the parsing) and
** adds it to a session, so several saved profiles sum into one.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "report.h"


static int bad (char *why, size_t len, const char *msg) {
  snprintf(why, len, "%s", msg);
  return 0;
}


static char *read_file (const char *path, size_t *size,
                        char *why, size_t whylen) {
  FILE *f = fopen(path, "rb");
  Buf b;
  char chunk[65536];
  size_t n;
  int error;
  if (f == NULL) {
    snprintf(why, whylen, "%s", strerror(errno));
    return NULL;
  }
  buf_init(&b);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, n);
  error = ferror(f) ? errno : 0;
  fclose(f);
  if (error || b.failed || b.data == NULL) {
    buf_free(&b);
    bad(why, whylen, error ? strerror(error)
                           : b.failed ? "out of memory" : "empty file");
    return NULL;
  }
  *size = b.len;
  return b.data;
}


static double num (const cJSON *obj, const char *key) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsNumber(item) ? item->valuedouble : 0;
}


static int kind_of (const char *name) {
  static const char *const kinds[] = {"lua", "c", "native", "pseudo"};
  int k;
  for (k = 0; k < 4; k++)
    if (strcmp(name, kinds[k]) == 0) return k;
  return -1;
}


/* ------------------------------------------------------------ checks */

/* A file is checked whole before anything of it is added, so a file that
** is refused leaves the session as it was, and every number added below
** fits the integer it goes into. */

#define MAX_LOAD_DEPTH 4096  /* the renderers recurse once per frame */
#define MAX_COUNT 0x1p63     /* counts and nanoseconds stay below 2^63 */
#define MAX_START_TIME 9e9   /* Unix time, in ns, must fit too (year 2255) */


static int bad_value (char *why, size_t len, const char *where,
                      const char *key, const char *what) {
  snprintf(why, len, "%s\"%s\" is not %s", where, key, what);
  return 0;
}


/* An optional number in [lo, hi). */
static int in_range (const cJSON *obj, const char *key, double lo, double hi) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  return item == NULL || (cJSON_IsNumber(item) && item->valuedouble >= lo
                          && item->valuedouble < hi);
}


static int check_header (const cJSON *root, char *why, size_t len) {
  static const char *const counts[] = {"duration_ns", "cpu_ns", "samples",
                                       "overhead_ns", "sampler_ns"};
  size_t i;
  for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
    if (!in_range(root, counts[i], 0, MAX_COUNT))
      return bad_value(why, len, "", counts[i], "a count");
  if (!in_range(root, "start_time", 0, MAX_START_TIME))
    return bad_value(why, len, "", "start_time", "a Unix time");
  if (!in_range(root, "interval", 1e-9, 60.000001))
    return bad_value(why, len, "", "interval", "a number of seconds in (0, 60]");
  if (!in_range(root, "memory_rate", 0, MAX_COUNT))
    return bad_value(why, len, "", "memory_rate", "a number of bytes");
  return 1;
}


static int check_frames (const cJSON *frames, char *why, size_t len) {
  const cJSON *f;
  cJSON_ArrayForEach(f, frames) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(f, "file");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(f, "kind");
    if (!cJSON_IsString(name) || !cJSON_IsString(file)
        || !cJSON_IsString(kind) || kind_of(kind->valuestring) < 0)
      return bad(why, len, "a frame lacks its name, file or kind");
    if (!in_range(f, "line", -2147483648.0, 2147483648.0))
      return bad_value(why, len, "a frame's ", "line", "a line number");
  }
  return 1;
}


static const char *const memory_keys[] = {"alloc_bytes", "alloc_objects",
                                          "live_bytes", "live_objects"};


static int is_index (const cJSON *item, int n) {
  return cJSON_IsNumber(item) && item->valuedouble >= 0
         && item->valuedouble < n;
}


static int check_stacks (const cJSON *stacks, int nframes,
                         char *why, size_t len) {
  const cJSON *s, *f;
  int i;
  cJSON_ArrayForEach(s, stacks) {
    const cJSON *frames = cJSON_GetObjectItemCaseSensitive(s, "frames");
    if (!cJSON_IsArray(frames)) return bad(why, len, "a stack has no frames");
    if (cJSON_GetArraySize(frames) > MAX_LOAD_DEPTH)
      return bad(why, len, "a stack is deeper than 4096 frames");
    cJSON_ArrayForEach(f, frames)
      if (!is_index(f, nframes))
        return bad(why, len, "a stack names a frame that does not exist");
    if (!in_range(s, "weight_ns", 0, MAX_COUNT))
      return bad_value(why, len, "a stack's ", "weight_ns", "a count");
    if (!in_range(s, "samples", 0, MAX_COUNT))
      return bad_value(why, len, "a stack's ", "samples", "a count");
    for (i = 0; i < 4; i++)
      if (!in_range(s, memory_keys[i], 0, MAX_COUNT))
        return bad_value(why, len, "a stack's ", memory_keys[i], "a count");
  }
  return 1;
}


static int is_count (const cJSON *item) {
  return cJSON_IsNumber(item) && item->valuedouble >= 0
         && item->valuedouble < MAX_COUNT;
}


/* The timeline is optional; if it is there, it must be whole. So must its
** heap sizes, which are optional too. */
static int check_timeline (const cJSON *root, int nstacks,
                           char *why, size_t len) {
  const cJSON *tl = cJSON_GetObjectItemCaseSensitive(root, "timeline");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(tl, "t_ns");
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(tl, "stack");
  const cJSON *heap = cJSON_GetObjectItemCaseSensitive(tl, "heap");
  const cJSON *a, *b;
  if (tl == NULL) return 1;
  if (!cJSON_IsArray(t) || !cJSON_IsArray(st)
      || cJSON_GetArraySize(t) != cJSON_GetArraySize(st))
    return bad(why, len, "the timeline lacks its t_ns or stack array");
  for (a = t->child, b = st->child; a && b; a = a->next, b = b->next)
    if (!is_count(a) || !is_index(b, nstacks))
      return bad(why, len, "the timeline has a bad time or stack");
  if (heap == NULL) return 1;
  if (!cJSON_IsArray(heap) || cJSON_GetArraySize(heap) != cJSON_GetArraySize(t))
    return bad(why, len, "the timeline's heap is not one size per sample");
  cJSON_ArrayForEach(a, heap)
    if (!is_count(a))
      return bad(why, len, "the timeline has a bad heap size");
  return 1;
}


/* ------------------------------------------------------------ loading */

/* Interns the file's frames; map[i] is the session's index of frame i. */
static int load_frames (Session *S, const cJSON *frames, int *map,
                        char *why, size_t len) {
  const cJSON *f;
  int i = 0;
  cJSON_ArrayForEach(f, frames) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(f, "file");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(f, "kind");
    const cJSON *library = cJSON_GetObjectItemCaseSensitive(f, "library");
    int k = cJSON_IsString(kind) ? kind_of(kind->valuestring) : -1;
    if (!cJSON_IsString(name) || !cJSON_IsString(file) || k < 0)
      return bad(why, len, "a frame lacks its name, file or kind");
    map[i] = session_frame(S, (FrameKind)k, name->valuestring,
                           file->valuestring, (int)num(f, "line"), NULL);
    if (map[i] < 0) return bad(why, len, "out of memory");
    /* optional: without it, the frame's path decides (session_frame) */
    if (cJSON_IsBool(library))
      S->frames[map[i]].library = cJSON_IsTrue(library);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "internal")))
      S->frames[map[i]].internal = 1;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "host")))
      S->frames[map[i]].host = 1;
    i++;
  }
  return 1;
}


/* Adds the stacks; node_of[i] is the node where stack i ended. */
static int load_stacks (Session *S, const cJSON *stacks, const int *map,
                        int nframes, int *node_of, char *why, size_t len) {
  const cJSON *s;
  int *path = NULL;
  int ok = 1, k = 0;
  cJSON_ArrayForEach(s, stacks) {
    const cJSON *frames = cJSON_GetObjectItemCaseSensitive(s, "frames");
    const cJSON *f;
    int n = 0, depth = cJSON_GetArraySize(frames);
    int *bigger;
    if (!cJSON_IsArray(frames)) { ok = bad(why, len, "a stack has no frames"); break; }
    bigger = realloc(path, (size_t)(depth + 1) * sizeof *path);
    if (bigger == NULL) { ok = bad(why, len, "out of memory"); break; }
    path = bigger;
    cJSON_ArrayForEach(f, frames) {
      int i = cJSON_IsNumber(f) ? f->valueint : -1;
      if (i < 0 || i >= nframes) { ok = bad(why, len, "a stack names a frame that does not exist"); break; }
      path[n++] = map[i];
    }
    if (!ok) break;
    node_of[k] = session_add_stack(S, path, n,
                                   (uint64_t)num(s, "weight_ns"),
                                   (uint64_t)num(s, "samples"));
    session_add_memory(S, node_of[k], num(s, "alloc_bytes"),
                       num(s, "alloc_objects"), 0);
    session_add_memory(S, node_of[k], num(s, "live_bytes"),
                       num(s, "live_objects"), 1);
    k++;
  }
  free(path);
  return ok;
}


/* The timeline, if the file has one, after what the session holds. */
static void load_timeline (Session *S, const cJSON *root, const int *node_of,
                           int nstacks, uint64_t offset) {
  const cJSON *tl = cJSON_GetObjectItemCaseSensitive(root, "timeline");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(tl, "t_ns");
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(tl, "stack");
  const cJSON *a, *b, *h;
  if (!cJSON_IsArray(t) || !cJSON_IsArray(st)) return;
  h = cJSON_GetObjectItemCaseSensitive(tl, "heap");
  h = cJSON_IsArray(h) ? h->child : NULL;
  for (a = t->child, b = st->child; a && b; a = a->next, b = b->next) {
    int k = cJSON_IsNumber(b) ? b->valueint : -1;
    uint64_t heap = h && is_count(h) ? (uint64_t)h->valuedouble : 0;
    if (cJSON_IsNumber(a) && a->valuedouble >= 0 && k >= 0 && k < nstacks)
      session_add_moment(S, offset + (uint64_t)a->valuedouble, node_of[k],
                         heap);
    if (h) h = h->next;
  }
}


static int load_tree (Session *S, const cJSON *root, char *why, size_t len) {
  const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *frames = cJSON_GetObjectItemCaseSensitive(root, "frames");
  const cJSON *stacks = cJSON_GetObjectItemCaseSensitive(root, "stacks");
  const cJSON *program = cJSON_GetObjectItemCaseSensitive(root, "program");
  const cJSON *clock = cJSON_GetObjectItemCaseSensitive(root, "clock");
  uint64_t samples_before = S->samples;
  int nframes, nstacks, *map, *node_of, ok;
  uint64_t offset = S->duration_ns;
  double start = num(root, "start_time");
  if (!cJSON_IsString(format) || strcmp(format->valuestring, "sprof-session"))
    return bad(why, len, "not a sprof session (no \"format\": \"sprof-session\")");
  if (num(root, "version") != 1)
    return bad(why, len, "unsupported session version (this sprof reads 1)");
  if (!cJSON_IsArray(frames) || !cJSON_IsArray(stacks))
    return bad(why, len, "no \"frames\" or \"stacks\" array");
  nframes = cJSON_GetArraySize(frames);
  nstacks = cJSON_GetArraySize(stacks);
  if (!check_header(root, why, len) || !check_frames(frames, why, len)
      || !check_stacks(stacks, nframes, why, len)
      || !check_timeline(root, nstacks, why, len))
    return 0;
  map = malloc((size_t)(nframes + 1) * sizeof *map);
  node_of = malloc((size_t)(nstacks + 1) * sizeof *node_of);
  ok = map != NULL && node_of != NULL;
  if (!ok) bad(why, len, "out of memory");
  ok = ok && load_frames(S, frames, map, why, len)
       && load_stacks(S, stacks, map, nframes, node_of, why, len);
  if (ok) load_timeline(S, root, node_of, nstacks, offset);
  free(map);
  free(node_of);
  if (!ok) return 0;
  /* the samples were counted as they were added; the rest sums here */
  S->samples = samples_before + (uint64_t)num(root, "samples");
  S->duration_ns += (uint64_t)num(root, "duration_ns");
  S->cpu_ns += (uint64_t)num(root, "cpu_ns");
  S->overhead_ns += (uint64_t)num(root, "overhead_ns");
  S->sampler_ns += (uint64_t)num(root, "sampler_ns");
  if (num(root, "interval") > 0) S->interval = num(root, "interval");
  /* the weights are unbiased whatever the rate: files of different
     rates add up, and the first rate stands for them */
  if (S->memory_rate == 0) S->memory_rate = num(root, "memory_rate");
  if (cJSON_IsString(clock))
    S->clock = strcmp(clock->valuestring, "cpu") == 0 ? CLOCK_KIND_CPU
                                                      : CLOCK_KIND_WALL;
  if (S->start_time == 0 || (start > 0 && start < S->start_time))
    S->start_time = start;
  if (S->program == NULL && cJSON_IsString(program))
    session_set_program(S, program->valuestring);
  return 1;
}


/* Adds the session in text[0..len) to S; on failure, says why in one
** line and leaves S as it was (unless memory ran out half way). */
int report_load_json_text (Session *S, const char *text, size_t len,
                           char *why, size_t whylen) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  int ok;
  if (root == NULL) {
    size_t at = end ? (size_t)(end - text) : 0;
    if (at + 1 >= len)
      return bad(why, whylen, "not valid JSON: it ends too early (cut short?)");
    snprintf(why, whylen, "not valid JSON (at byte %zu of %zu)", at + 1, len);
    return 0;
  }
  ok = load_tree(S, root, why, whylen);
  cJSON_Delete(root);
  return ok;
}


int report_load_json_file (Session *S, const char *path,
                           char *why, size_t whylen) {
  size_t len;
  char *text = read_file(path, &len, why, whylen);
  int ok;
  if (text == NULL) return 0;
  ok = report_load_json_text(S, text, len, why, whylen);
  free(text);
  return ok;
}
