/*
** profiler.h — the state of one profiler, shared by the timer back-ends,
** the signal handler and the Lua hook (internal to the engine).
*/
#ifndef sprof_profiler_h
#define sprof_profiler_h

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "compat.h"

#include "memory.h"
#include "native.h"
#include "session.h"
#include "../report/report.h"

/* Lua frames walked per sample; deeper stacks keep their innermost frames
** under a [truncated] marker (lua_getstack is linear in the level, so the
** walk is quadratic in the depth and must be bounded). */
#define SPROF_MAX_DEPTH 256

/* Coroutines armed besides the thread that started: the most recently
** seen running. More would cost a hook call each per sample. */
#define SPROF_MAX_THREADS 8

/* A thread the timer arms. */
typedef struct Armed {
  lua_State *L;
  lua_State *resumer;     /* the thread that resumed it last, if known */
  lua_Hook chained_hook;  /* its hook from before ours: still served */
  int chained_mask;
  int chained_count;
  int chained_left;       /* instructions until the chained one is due */
} Armed;

#define SPROF_REPLAYS 64

typedef struct Replay {
  uint64_t key;           /* hash of the Lua frames; 0: empty */
  int n;
  int frames[SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 8];
} Replay;

typedef struct Profiler {
  Session session;        /* everything recorded so far */
  double interval;        /* seconds between samples */
  ClockKind clock;        /* wall or CPU time of the profiled thread */
  int running;            /* between start and stop */
  lua_State *L;           /* the thread that started the profiler */
  lua_State *main;        /* the main thread of its state */
  lua_State *host_L;      /* the thread given to sprof_new (C API) */
  int show_host;          /* C API: show the host's frames (default on) */
  struct Profiler **sentinel; /* C API: its box in host_L, while alive */
  int sentinel_ref;       /* registry reference of that box */
  int state_closed;       /* host_L was closed while we referred to it */
  pid_t tid;              /* its OS thread */
  /* the threads the timer arms: [0] is L, then coroutines, latest first;
     they are kept alive by a table in the registry while they are here */
  Armed threads[SPROF_MAX_THREADS + 1];
  int nthreads;
  int anchor_ref;         /* registry reference of that table */
  lua_CFunction resume_fn;/* coroutine.resume, however it is reached */
  lua_CFunction wrap_fn;  /* the function of coroutine.wrap's closures */
  /* shared with the signal handler and the sampler thread */
  atomic_int in_hook;     /* the hook is running: do not re-arm */
  atomic_int arming;      /* the sampler thread is arming the hook */
  atomic_int pending;     /* a sample is due at the next safe point */
  atomic_ullong suspended_ns; /* time of the ticks that found L suspended */
  atomic_ullong idle_ns;  /* time of the ticks that found no Lua running */
  atomic_ullong signal_ns;/* wall clock of the last signal: the sampler
                             thread's next tick is not needed so soon */
  atomic_ullong seen_ns;  /* P->clock at the last tick that looked at the
                             thread: the next one stands for the time since */
  uint64_t capture_ns;    /* wall clock of the last native capture */
  atomic_int sampler_armed; /* the sampler thread armed the pending sample,
                             not a tick (see capture.c, split_wait) */
  uint64_t handler_ns;    /* time spent in the signal handler */
  uint64_t signals;       /* timer signals handled (ticks that sampled) */
  uint64_t hook_ns;       /* time spent recording samples */
  uint64_t last_ns;       /* clock reading at the previous sample */
  uint64_t last_cpu_ns;   /* the thread's CPU clock then */
  uint64_t heap_bytes;    /* the Lua heap's size at the previous sample */
  int last_node;          /* call-tree node of the previous sample */
  uint64_t run_wall_ns;   /* wall clock when this run started */
  uint64_t first_wall_ns; /* wall clock when recording first started */
  uint64_t run_cpu_ns;    /* thread CPU clock when this run started */
  /* timer back-ends: a sampler thread (wall) or a POSIX timer (cpu) */
  pthread_t sampler;      /* wall clock: ticks and arms the thread */
  pthread_mutex_t sampler_lock; /* guards sampler_on; with sampler_wake */
  pthread_cond_t sampler_wake;  /* the sampler sleeps on it between ticks */
  int sampler_on;         /* cleared (and the sampler woken) to stop it */
  uint64_t sampler_cpu_ns;/* CPU time the sampler thread used */
  timer_t timer;          /* cpu clock: fires on the thread's CPU time */
  int timer_made;         /* 'timer' exists */
  /* names of C functions, found in package.loaded at start */
  IntMap cnames;          /* function address -> index in cname_list */
  char **cname_list;
  int ncnames;
  uint64_t next_learn_ns; /* when package.loaded may be looked at again */
  /* native frames (NULL when off) */
  NativeRing *ring;       /* captures of the signal handler */
  NativeNames *names;     /* addresses to frames, cached */
  /* scratch for one sample: the Lua frames (innermost first) with the
     address of each C function, and the merged frames */
  int stack[SPROF_MAX_DEPTH + 1];
  const void *cfun[SPROF_MAX_DEPTH + 1];
  int merged[SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 8];
  /* the merged frames last seen natively for a given Lua stack, to stand
     in Lua-only samples of the same Lua stack (NULL when native is off) */
  struct Replay *replay;
  /* the native frames outer to the outermost Lua frame of the last native
     sample (the host's path), for Lua-only samples with the same root */
  int host_root;
  int host_path[SPROF_NATIVE_DEPTH + 8];
  int nhost_path;
  /* memory profiling (memory.c): on when memory.rate > 0 */
  Memory memory;
  /* control.c: sampling switched on and off by the controller thread */
  int controlled;         /* handed to the controller */
  atomic_int paused;      /* set up, but no ticks and no samples */
  uint64_t reported_overhead_ns; /* handler and hook time of past periods */
  uint64_t reported_sampler_ns;  /* sampler threads' CPU time of past periods */
  int unblocked;          /* SIGPROF was blocked in its thread: unblocked
                             while it is profiled */
  int foreign;            /* inherited through fork: its threads are the
                             parent's, so it is never stopped or joined */
  uint64_t own_ns;        /* LuaJIT: weight of this run's own samples; the
                             rest of its wall time, when it started in a
                             coroutine, it was suspended */
  int in_coroutine;       /* LuaJIT: L is not its state's main thread */
  int jit_ref;            /* LuaJIT: registry reference to L, alive for
                             luaJIT_profile_stop */
  char error[256];        /* the last error message */
} Profiler;

/* capture.c */
void capture_hook (lua_State *L, lua_Debug *ar);
void capture_record (Profiler *P, lua_State *L, int level);
void capture_learn_cnames (Profiler *P, lua_State *L);
void capture_learn_module (Profiler *P, lua_State *L, const char *module);
void capture_free_cnames (Profiler *P);
void capture_rename_cfunctions (Profiler *P, lua_State *L);
uint64_t capture_now (ClockKind clock);
void capture_jit_sample (Profiler *P, lua_State *L, int vmstate);

/* jit.c: the LuaJIT back-end (SPROF_LUAJIT) */
#ifdef SPROF_LUAJIT
int jit_claim (Profiler *P);
void jit_release (Profiler *P);
int jit_timer_start (Profiler *P);
void jit_timer_stop (Profiler *P);
#else
static inline void jit_release (Profiler *P) { (void)P; }
#endif

/* threads.c */
void threads_start (Profiler *P, lua_State *L);
void threads_stop (Profiler *P);
void capture_arm (Profiler *P);
void threads_arm (Armed *t);
void threads_disarm (Armed *t);
Armed *threads_find (Profiler *P, lua_State *L);
Armed *threads_adopt (Profiler *P, lua_State *L, int idx, lua_State *resumer);
lua_State *threads_resumed_by (Profiler *P, lua_State *L);
lua_Hook threads_due (Armed *t, lua_Debug *ar);
void profiler_enter (Profiler *P);
int profiler_try_enter (Profiler *P);
void profiler_leave (Profiler *P);
int profiler_hold (Profiler *P);
void profiler_release (Profiler *P);

/* api.c: functions that can fail return NULL or a one-line message */
Profiler *profiler_new (double interval, const char *clock, int native,
                        const char **error);
void profiler_free (Profiler *P);
int profiler_running (const Profiler *P);
const char *profiler_start (Profiler *P, lua_State *L);
const char *profiler_stop (Profiler *P);
const char *profiler_stop_from (Profiler *P, lua_State *L, int level);
void profiler_reset (Profiler *P);
void profiler_set_program (Profiler *P, const char *program);
const char *profiler_set_memory (Profiler *P, double rate);
char *profiler_render (Profiler *P, const char *format,
                       const RenderOptions *options, size_t *len,
                       const char **error);
const char *profiler_write (Profiler *P, const char *path,
                            const char *format, const RenderOptions *options);
const char *profiler_load (Profiler *P, const char *path);
int profiler_resume (Profiler *P);
void profiler_pause (Profiler *P);
int profiler_snapshot (Profiler *P, Session *out);

/* timer.c: at most PROFILE_MAX profilers set up at once (control.c and
** preload.c hand over as many) */
#define PROFILE_MAX 64
int profile_timer_start (Profiler *P);
void profile_timer_stop (Profiler *P);
int profile_register (Profiler *P);
void profile_unregister (Profiler *P);
Profiler *profile_of_state (pid_t tid, lua_State *L);
int profile_lua_running (Profiler *P);
extern atomic_int naming_tid;
pid_t profile_gettid (void);
uint64_t profile_thread_cpu_ns (const Profiler *P);
uint64_t profile_seen (Profiler *P, uint64_t now);
uint64_t profile_sampler_ns (const Profiler *P);

#endif
