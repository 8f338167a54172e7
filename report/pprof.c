/*
** pprof.c — the gzipped profile.proto of pprof
** (github.com/google/pprof/blob/main/proto/profile.proto), as read by
** go tool pprof, Pyroscope, Parca and Grafana. Each frame is one function
** and one location; each stack with time (as stacks.c shows them) is one
** sample, leaf first, with two values: its sample count and its time in
** nanoseconds ("wall" or "cpu", as the session's clock). A memory profile
** is written as Go writes its heap profiles instead: four values, objects
** and bytes allocated, objects and bytes still in use at the end.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "report.h"

/* field numbers in profile.proto */
enum {
  PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3,
  PROFILE_LOCATION = 4, PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6,
  PROFILE_TIME_NANOS = 9, PROFILE_DURATION_NANOS = 10,
  PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12, PROFILE_COMMENT = 13,
  PROFILE_DEFAULT_SAMPLE_TYPE = 14,
  VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT = 2,
  SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
  LABEL_KEY = 1, LABEL_STR = 2,
  MAPPING_ID = 1, MAPPING_FILENAME = 5, MAPPING_HAS_FUNCTIONS = 7,
  MAPPING_HAS_FILENAMES = 8, MAPPING_HAS_LINE_NUMBERS = 9,
  LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_LINE = 4,
  LINE_FUNCTION_ID = 1, LINE_LINE = 2,
  FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3,
  FUNCTION_FILENAME = 4, FUNCTION_START_LINE = 5
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };


/* ------------------------------------------------------ protobuf writer */

static void put_varint (Buf *b, uint64_t v) {
  char bytes[10];
  int n = 0;
  do {
    bytes[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
  buf_add(b, bytes, (size_t)n);
}


static void put_key (Buf *b, int field, int wire) {
  put_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}


/* A scalar field; zero is the default and is left out, as proto3 does. */
static void put_uint (Buf *b, int field, uint64_t v) {
  if (v == 0) return;
  put_key(b, field, WIRE_VARINT);
  put_varint(b, v);
}


static void put_bytes (Buf *b, int field, const char *s, size_t len) {
  put_key(b, field, WIRE_LEN);
  put_varint(b, len);
  buf_add(b, s, len);
}


/* Embeds 'msg' as field 'field' of b and empties it for the next one. */
static void put_message (Buf *b, int field, Buf *msg) {
  if (msg->failed) b->failed = 1;
  put_bytes(b, field, msg->data ? msg->data : "", msg->len);
  msg->len = 0;
}


/* --------------------------------------------------------- string table */

typedef struct Strings {
  Buf table;            /* the encoded string_table fields */
  IntMap index;         /* hash of a string -> its index */
  const char **list;    /* the strings, by index (not owned) */
  int n, cap;
} Strings;


static uint64_t hash_str (const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}


/* The index of s in the string table, added if new; -1: out of memory. */
static int64_t string_id (Strings *st, const char *s) {
  uint64_t key = hash_str(s);
  uint32_t j = map_slot(&st->index, key);
  for (; st->index.vals[j] >= 0; j = (j + 1) & (st->index.cap - 1))
    if (st->index.keys[j] == key && strcmp(st->list[st->index.vals[j]], s) == 0)
      return st->index.vals[j];
  if (st->n == st->cap) {
    int cap = st->cap ? st->cap * 2 : 64;
    const char **list = realloc(st->list, (size_t)cap * sizeof *list);
    if (list == NULL) return -1;
    st->list = list;
    st->cap = cap;
  }
  if (!map_put(&st->index, key, st->n)) return -1;
  st->list[st->n] = s;
  put_bytes(&st->table, PROFILE_STRING_TABLE, s, strlen(s));
  return st->n++;
}


/* ------------------------------------------------------------- profile */

typedef struct Pprof {
  const Session *S;
  Buf body;             /* the profile but its string table */
  Buf msg, inner;       /* scratch for embedded messages */
  Strings strings;
  ShownTree shown;      /* the stack written for each node */
  char **comments;      /* "key=value" of each label (the strings table
                           refers to them until the end) */
  int failed;
} Pprof;


static uint64_t str (Pprof *p, const char *s) {
  int64_t id = string_id(&p->strings, s);
  if (id < 0) { p->failed = 1; return 0; }
  return (uint64_t)id;
}


static void put_value_type (Pprof *p, int field, const char *type,
                            const char *unit) {
  put_uint(&p->msg, VALUE_TYPE_TYPE, str(p, type));
  put_uint(&p->msg, VALUE_TYPE_UNIT, str(p, unit));
  put_message(&p->body, field, &p->msg);
}


/* One function and one location per frame shown, with the same id: its
** number in stacks.c + 1 (0 is no id in pprof). */
static void put_function (Pprof *p, uint64_t id, const char *name,
                          const char *file, int line) {
  uint64_t name_id = str(p, name);
  put_uint(&p->msg, FUNCTION_ID, id);
  put_uint(&p->msg, FUNCTION_NAME, name_id);
  put_uint(&p->msg, FUNCTION_SYSTEM_NAME, name_id);
  put_uint(&p->msg, FUNCTION_FILENAME, str(p, file));
  put_uint(&p->msg, FUNCTION_START_LINE, line > 0 ? (uint64_t)line : 0);
  put_message(&p->body, PROFILE_FUNCTION, &p->msg);
  put_uint(&p->inner, LINE_FUNCTION_ID, id);
  put_uint(&p->inner, LINE_LINE, line > 0 ? (uint64_t)line : 0);
  put_uint(&p->msg, LOCATION_ID, id);
  put_uint(&p->msg, LOCATION_MAPPING_ID, 1);
  put_message(&p->msg, LOCATION_LINE, &p->inner);
  put_message(&p->body, PROFILE_LOCATION, &p->msg);
}


/* Frames carry their own names, so the one mapping says nothing is left
** to symbolize. */
static void put_mapping (Pprof *p) {
  const Session *S = p->S;
  put_uint(&p->msg, MAPPING_ID, 1);
  put_uint(&p->msg, MAPPING_FILENAME, str(p, S->program ? S->program : "lua"));
  put_uint(&p->msg, MAPPING_HAS_FUNCTIONS, 1);
  put_uint(&p->msg, MAPPING_HAS_FILENAMES, 1);
  put_uint(&p->msg, MAPPING_HAS_LINE_NUMBERS, 1);
  put_message(&p->body, PROFILE_MAPPING, &p->msg);
}


/* The values of a sample: [samples, nanoseconds] for time; for memory,
** Go's heap profile's [alloc_objects, alloc_space, inuse_objects,
** inuse_space]. */
enum { TIME_VALUES = 2, MEMORY_VALUES = 4, MAX_VALUES = 4 };


static void values_of (const Node *n, int memory, uint64_t *v) {
  if (!memory) {
    v[0] = n->samples;
    v[1] = n->self_ns;
    return;
  }
  v[0] = (uint64_t)(n->alloc_objects + 0.5);  /* rounded as the JSON is */
  v[1] = (uint64_t)(n->alloc_bytes + 0.5);
  v[2] = (uint64_t)(n->live_objects + 0.5);
  v[3] = (uint64_t)(n->live_bytes + 0.5);
}


/* A sample: its locations leaf first, then its values. */
static void put_sample (Pprof *p, int node, const uint64_t *v, int nv) {
  const Session *S = p->S;
  int k;
  if (node == 0)  /* no Lua stack (or none shown) */
    put_varint(&p->inner, (uint64_t)p->shown.nids + 1);
  for (; node > 0; node = p->shown.parent[node])
    put_varint(&p->inner, (uint64_t)p->shown.id[S->nodes[node].frame] + 1);
  put_message(&p->msg, SAMPLE_LOCATION_ID, &p->inner);
  for (k = 0; k < nv; k++) put_varint(&p->inner, v[k]);
  put_message(&p->msg, SAMPLE_VALUE, &p->inner);
  for (k = 0; k < S->nlabels; k++) {
    put_uint(&p->inner, LABEL_KEY, str(p, S->label_keys[k]));
    put_uint(&p->inner, LABEL_STR, str(p, S->label_values[k]));
    put_message(&p->msg, SAMPLE_LABEL, &p->inner);
  }
  put_message(&p->body, PROFILE_SAMPLE, &p->msg);
}


/* One sample per stack shown: the values of hidden frames are their
** shown caller's. */
static int put_samples (Pprof *p, int memory) {
  const Session *S = p->S;
  uint64_t *sums = calloc((size_t)S->nnodes * MAX_VALUES, sizeof *sums);
  uint64_t v[MAX_VALUES];
  int i, k, nv = memory ? MEMORY_VALUES : TIME_VALUES;
  if (sums == NULL) return 0;
  for (i = 0; i < S->nnodes; i++) {
    uint64_t *sum = &sums[(size_t)p->shown.node[i] * MAX_VALUES];
    values_of(&S->nodes[i], memory, v);
    for (k = 0; k < nv; k++) sum[k] += v[k];
  }
  for (i = 0; i < S->nnodes; i++) {
    const uint64_t *sum = &sums[(size_t)i * MAX_VALUES];
    for (k = 0; k < nv && sum[k] == 0; k++) {}
    if (k < nv) put_sample(p, i, sum, nv);
  }
  free(sums);
  return 1;
}


static void put_types (Pprof *p, int memory) {
  const Session *S = p->S;
  const char *clock = S->clock == CLOCK_KIND_CPU ? "cpu" : "wall";
  if (!memory) {
    put_value_type(p, PROFILE_SAMPLE_TYPE, "samples", "count");
    put_value_type(p, PROFILE_SAMPLE_TYPE, clock, "nanoseconds");
    return;
  }
  put_value_type(p, PROFILE_SAMPLE_TYPE, "alloc_objects", "count");
  put_value_type(p, PROFILE_SAMPLE_TYPE, "alloc_space", "bytes");
  put_value_type(p, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
  put_value_type(p, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
}


/* The period: the sampling interval, or for memory the mean bytes between
** sampled allocations (as Go's MemProfileRate). The default type of memory
** is the space allocated, as in Go's "allocs" profile and sprof's other
** reports, unless the live view is asked for. */
static void put_period (Pprof *p, int memory, int view) {
  const Session *S = p->S;
  const char *clock = S->clock == CLOCK_KIND_CPU ? "cpu" : "wall";
  if (!memory) {
    put_value_type(p, PROFILE_PERIOD_TYPE, clock, "nanoseconds");
    put_uint(&p->body, PROFILE_PERIOD, (uint64_t)(S->interval * 1e9 + 0.5));
    put_uint(&p->body, PROFILE_DEFAULT_SAMPLE_TYPE, str(p, clock));
    return;
  }
  put_value_type(p, PROFILE_PERIOD_TYPE, "space", "bytes");
  put_uint(&p->body, PROFILE_PERIOD, (uint64_t)(S->memory_rate + 0.5));
  put_uint(&p->body, PROFILE_DEFAULT_SAMPLE_TYPE,
           str(p, view == VIEW_LIVE ? "inuse_space" : "alloc_space"));
}


/* The labels as comments too ("service=api"): go tool pprof -comments. */
static void put_comments (Pprof *p) {
  const Session *S = p->S;
  int i;
  if (S->nlabels == 0) return;
  p->comments = calloc((size_t)S->nlabels, sizeof *p->comments);
  if (p->comments == NULL) { p->failed = 1; return; }
  for (i = 0; i < S->nlabels; i++) {
    size_t len = strlen(S->label_keys[i]) + strlen(S->label_values[i]) + 2;
    if ((p->comments[i] = malloc(len)) == NULL) { p->failed = 1; return; }
    snprintf(p->comments[i], len, "%s=%s", S->label_keys[i],
             S->label_values[i]);
    put_key(&p->body, PROFILE_COMMENT, WIRE_VARINT);
    put_varint(&p->body, str(p, p->comments[i]));
  }
}


/* A memory profile is written as memory unless its time is asked for. */
static void put_profile (Pprof *p, int view) {
  const Session *S = p->S;
  int memory = S->memory_rate > 0 && view != VIEW_TIME;
  int i;
  str(p, "");  /* string 0 is always the empty string */
  put_types(p, memory);
  put_mapping(p);
  for (i = 0; i < S->nframes; i++) {
    const Frame *f = &S->frames[i];
    if (p->shown.id[i] >= 0)
      put_function(p, (uint64_t)p->shown.id[i] + 1, f->name, f->file, f->line);
  }
  put_function(p, (uint64_t)p->shown.nids + 1, "(outside Lua)", "", 0);
  if (!put_samples(p, memory)) p->failed = 1;
  if (S->start_time > 0)
    put_uint(&p->body, PROFILE_TIME_NANOS, (uint64_t)(S->start_time * 1e9));
  put_uint(&p->body, PROFILE_DURATION_NANOS, S->duration_ns);
  put_period(p, memory, view);
  put_comments(p);
}


/* gzip (deflate with a gzip header: windowBits 15 + 16) */
static int gzip (const char *data, size_t len, Buf *out) {
  enum { SLICE = 1 << 20 };
  char chunk[16384];
  z_stream z;
  int rc;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return 0;
  z.next_in = (Bytef *)data;
  do {
    size_t slice = len < SLICE ? len : SLICE;
    int flush = slice == len ? Z_FINISH : Z_NO_FLUSH;
    z.avail_in = (uInt)slice;
    len -= slice;
    do {
      z.next_out = (Bytef *)chunk;
      z.avail_out = sizeof chunk;
      rc = deflate(&z, flush);
      buf_add(out, chunk, sizeof chunk - z.avail_out);
    } while (z.avail_out == 0);
  } while (len > 0);
  deflateEnd(&z);
  return rc == Z_STREAM_END && !out->failed;
}


void render_pprof (const Session *S, const RenderOptions *o, Buf *out) {
  Pprof p;
  memset(&p, 0, sizeof p);
  p.S = S;
  buf_init(&p.body);
  buf_init(&p.msg);
  buf_init(&p.inner);
  buf_init(&p.strings.table);
  if (map_init(&p.strings.index, 256) && shown_build(&p.shown, S, o)) {
    put_profile(&p, o->view);
    buf_add(&p.body, p.strings.table.data ? p.strings.table.data : "",
            p.strings.table.len);
    if (p.failed || p.body.failed || p.strings.table.failed
        || !gzip(p.body.data, p.body.len, out))
      out->failed = 1;
  }
  else out->failed = 1;
  shown_free(&p.shown);
  if (p.comments) {
    int i;
    for (i = 0; i < S->nlabels; i++) free(p.comments[i]);
    free(p.comments);
  }
  map_free(&p.strings.index);
  free(p.strings.list);
  buf_free(&p.strings.table);
  buf_free(&p.body);
  buf_free(&p.msg);
  buf_free(&p.inner);
}
