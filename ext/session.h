/*
** session.h — what a profile holds: interned frames, the call tree of
** interned frames (a trie), and the facts about the run.
** Memory grows with the number of distinct frames and stacks, never with
** the number of samples or the length of the run.
*/
#ifndef sprof_session_h
#define sprof_session_h

#include <stdint.h>

#include "map.h"

typedef enum FrameKind {
  FRAME_LUA,      /* a Lua function */
  FRAME_C,        /* a C function called from Lua (lua_CFunction) */
  FRAME_NATIVE,   /* a native frame found by unwinding */
  FRAME_PSEUDO    /* a marker such as [truncated] */
} FrameKind;

typedef struct Frame {
  char *name;           /* function name, never NULL */
  char *file;           /* source file or "[C]", never NULL */
  int line;             /* line where the function is defined; 0 if none */
  unsigned char kind;   /* a FrameKind */
  unsigned char library;/* code from the system Lua directories that is
                           not the program's own (session.c) */
  unsigned char source_checked; /* names.c has looked at its source */
  unsigned char internal;  /* the Lua interpreter's own native code */
  unsigned char host;      /* seen only above the Lua root: the host */
  const void *addr;     /* function start (C, native), else NULL */
} Frame;

/* A node of the call tree: one frame reached by one path from the root. */
typedef struct Node {
  int frame;            /* index in Session.frames; -1 for the root */
  int parent;           /* index of the parent node; -1 for the root */
  int child;            /* first child, or -1 */
  int sibling;          /* next sibling, or -1 */
  uint64_t self_ns;     /* weight of the samples whose leaf is this node */
  uint64_t samples;     /* number of those samples */
  /* memory profiles (memory.c): estimates from sampled allocations whose
     stack ends here; live: still allocated at the end. Doubles: a
     sample stands for a fraction of an object more or less, and rounding
     each one would bias the sums */
  double alloc_bytes, alloc_objects;
  double live_bytes, live_objects;
} Node;

/* One sample on the timeline: when it was taken and its stack's leaf. */
typedef struct Moment {
  uint64_t t_ns;        /* wall time since recording first started */
  uint64_t heap_bytes;  /* the Lua heap's size then (lua_gc count) */
  int node;             /* the sample's leaf node in the call tree */
} Moment;

/* The timeline keeps at most this many moments; past it, every other one
** is dropped and only every 2nd (4th, ...) sample is kept from then on:
** the tree stays exact, only the timeline gets coarser. */
#define SESSION_MAX_MOMENTS 16384  /* 256 KB: a few percent of a run's memory */

typedef enum ClockKind { CLOCK_KIND_WALL, CLOCK_KIND_CPU } ClockKind;

typedef struct Session {
  Frame *frames;
  int nframes, frames_cap;
  IntMap frame_index;   /* frame key -> index in frames */
  Node *nodes;          /* nodes[0] is the root */
  int nnodes, nodes_cap;
  IntMap child_index;   /* (parent node, frame) -> child node */
  Moment *moments;      /* the timeline, in time order */
  int nmoments, moments_cap;
  int moment_stride;    /* keep one sample in this many */
  int moment_skip;      /* samples to skip before keeping the next */
  /* facts about the run */
  char *program;        /* the profiled script or command, or NULL */
  char *program_real;   /* its file with symlinks resolved, or NULL */
  double start_time;    /* when recording first started (Unix time) */
  uint64_t duration_ns; /* time between start and stop, summed over runs */
  uint64_t cpu_ns;      /* CPU time of the profiled thread over the same */
  uint64_t samples;     /* samples recorded */
  uint64_t weight_ns;   /* sum of sample weights */
  uint64_t overhead_ns; /* time spent in the signal handler and the hook */
  uint64_t sampler_ns;  /* CPU time of the sampler thread (wall clock) */
  double interval;      /* requested interval, in seconds */
  ClockKind clock;      /* what the weights measure */
  double memory_rate;   /* mean bytes between sampled allocations; 0: no
                           memory profile */
  int weights_bytes;    /* a memory view (report/render.c): self_ns holds
                           bytes and samples objects, not time */
  /* name=value pairs a collector aggregates by (service, host, pid):
     written on every pprof sample and as the profile's comments */
  char **label_keys, **label_values;
  int nlabels;
} Session;

int session_init (Session *S);
void session_free (Session *S);
void session_clear (Session *S);

int session_frame (Session *S, FrameKind kind, const char *name,
                   const char *file, int line, const void *addr);
int session_find_frame (const Session *S, FrameKind kind, const char *name,
                        const char *file, int line, const void *addr);
int session_add_stack (Session *S, const int *frames, int n,
                       uint64_t weight_ns, uint64_t samples);
void session_add_moment (Session *S, uint64_t t_ns, int node,
                         uint64_t heap_bytes);
void session_add_weight (Session *S, int node, uint64_t weight_ns);
void session_add_memory (Session *S, int node, double bytes, double objects,
                         int live);
void session_set_program (Session *S, const char *program);
int session_set_label (Session *S, const char *key, const char *value);
void session_clear_tree (Session *S);
int session_path (const Session *S, int node, int *frames, int max);
int session_merge (Session *dst, const Session *src);

int frame_is_library_path (const char *file);

/* names.c */
void session_name_from_source (Session *S);

#endif
