/*
** api.c — the profiler's life cycle: new, start, stop, reset, render.
** The Lua module, the command and the C API (capi.c) stand on these.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <lauxlib.h>

#include "../report/report.h"
#include "control.h"
#include "profiler.h"


static const char *fail (Profiler *P, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(P->error, sizeof P->error, fmt, ap);
  va_end(ap);
  return P->error;
}


Profiler *profiler_new (double interval, const char *clock, int native,
                        const char **error) {
  Profiler *P;
  ClockKind kind;
  if (!(interval > 0) || interval > 60) {  /* also rejects NaN */
    *error = "sprof: interval must be a number of seconds above 0 "
             "and at most 60 (e.g. 0.001)";
    return NULL;
  }
  if (interval < 1e-5) {
    *error = "sprof: interval below 0.00001 s (10 us) is not supported";
    return NULL;
  }
  if (clock == NULL || strcmp(clock, "wall") == 0) kind = CLOCK_KIND_WALL;
  else if (strcmp(clock, "cpu") == 0) kind = CLOCK_KIND_CPU;
  else {
    *error = "sprof: unknown clock (use \"wall\" or \"cpu\")";
    return NULL;
  }
#ifdef SPROF_LUAJIT
  /* LuaJIT's timer runs on CPU time, in whole milliseconds */
  if (interval < 0.001) {
    *error = "sprof: on LuaJIT the interval is at least 0.001 s (LuaJIT's "
             "profiler ticks in whole milliseconds)";
    return NULL;
  }
  interval = (double)(long)(interval * 1000 + 0.5) / 1000;
  kind = CLOCK_KIND_CPU;
#endif
  P = calloc(1, sizeof *P);
  if (P == NULL || !session_init(&P->session)) {
    free(P);
    *error = "sprof: out of memory";
    return NULL;
  }
  P->interval = P->session.interval = interval;
  P->clock = P->session.clock = kind;
  P->anchor_ref = LUA_NOREF;
  if (native) {
    P->ring = calloc(1, sizeof *P->ring);
    P->replay = calloc(SPROF_REPLAYS, sizeof *P->replay);
#ifdef SPROF_LUAJIT
    P->names = P->ring && P->replay
               ? native_names_new((uintptr_t)capture_jit_sample) : NULL;
#else
    P->names = P->ring && P->replay
               ? native_names_new((uintptr_t)capture_hook) : NULL;
#endif
    if (P->names == NULL) {  /* go on without: Lua frames still work */
      free(P->ring);
      free(P->replay);
      P->ring = NULL;
      P->replay = NULL;
    }
  }
  return P;
}


/*
** Stops a profiler from a thread other than its own (a state made in a
** worker, closed from main) or in a forked child (foreign): no last
** sample, but it leaves the timer's table before it is freed. A foreign
** one's timer and sampler thread were the parent's: none to stop here.
*/
static void stop_elsewhere (Profiler *P) {
  if (!P->foreign && !atomic_load(&P->paused)) profile_timer_stop(P);
  profile_unregister(P);
  threads_stop(P);
  P->running = 0;
  atomic_store(&P->paused, 0);
}


void profiler_free (Profiler *P) {
  if (P == NULL) return;
  if (P->controlled) control_remove(P);  /* even from another thread */
  if (P->running) {  /* maybe a finalizer: no Lua of ours runs */
    if (P->foreign || profile_gettid() != P->tid) stop_elsewhere(P);
    else profiler_stop_from(P, NULL, 0);
  }
  capture_free_cnames(P);
  memory_free(P);
  native_names_free(P->names);
  free(P->ring);
  free(P->replay);
  session_free(&P->session);
  free(P);
}


int profiler_running (const Profiler *P) {
  return P->running;
}


static double unix_time (void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}


/* The native views kept for Lua-only samples hold frame numbers of the
** session: after a reset they would name other frames, or none. Captures
** still in the ring are of the time before. */
static void forget_native_views (Profiler *P) {
  if (P->ring) atomic_store(&P->ring->tail, atomic_load(&P->ring->head));
  if (P->replay) memset(P->replay, 0, SPROF_REPLAYS * sizeof *P->replay);
  P->host_root = -1;
  P->nhost_path = 0;
}


/*
** Servers may block every signal in their worker threads (Apache's event
** and worker MPMs do): the profiled thread takes SIGPROF while it is
** profiled (native frames, the CPU clock's ticks), and blocks it again
** after. Called in the profiled thread.
*/
static void take_signal (Profiler *P, int on) {
  sigset_t prof, old;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  if (on) {
    P->unblocked = pthread_sigmask(SIG_UNBLOCK, &prof, &old) == 0
                   && sigismember(&old, SIGPROF) == 1;
  }
  else if (P->unblocked) {
    pthread_sigmask(SIG_BLOCK, &prof, NULL);
    P->unblocked = 0;
  }
}


const char *profiler_start (Profiler *P, lua_State *L) {
  int err;
  P->error[0] = '\0';
  if (P->running)
    return fail(P, "sprof: start() called on a running profiler; "
                   "call stop() first");
#ifdef SPROF_LUAJIT
  if (!jit_claim(P))
    return fail(P, "sprof: LuaJIT runs one profiler at a time in a process "
                   "(its profiler is process-wide): stop the other one first");
  P->own_ns = 0;
#endif
  P->L = L;
  P->tid = profile_gettid();
  P->foreign = 0;  /* stopped in a forked child, started again there */
  P->main = compat_mainthread(L);
  atomic_store(&P->pending, 0);
  atomic_store(&P->sampler_armed, 0);
  atomic_store(&P->in_hook, 0);
  atomic_store(&P->arming, 0);
  capture_learn_cnames(P, L);
  threads_start(P, L);
  if (P->ring) native_prepare_thread(P->ring);
  err = profile_register(P);
  if (err != 0) {
    threads_stop(P);
    jit_release(P);
  }
  if (err == EBUSY)
    return fail(P, "sprof: another profiler is already running on this "
                   "Lua state; stop it first");
  if (err == EAGAIN)
    return fail(P, "sprof: too many Lua states profiled at once (at most "
                   "%d); stop or close one first", PROFILE_MAX);
  if (err != 0)
    return fail(P, "sprof: cannot install the profiling signal handler: %s",
                strerror(err));
  take_signal(P, 1);
  P->run_wall_ns = capture_now(CLOCK_KIND_WALL);
  if (P->session.samples == 0 && P->session.duration_ns == 0) {
    P->session.start_time = unix_time();
    P->first_wall_ns = P->run_wall_ns;
  }
  P->run_cpu_ns = P->last_cpu_ns = capture_now(CLOCK_KIND_CPU);
  P->last_ns = capture_now(P->clock);
  forget_native_views(P);
  atomic_store(&P->suspended_ns, 0);
  atomic_store(&P->idle_ns, 0);
  atomic_store(&P->seen_ns, P->last_ns);
  if (P->memory.rate > 0 && !memory_start(P, L)) {
    profile_unregister(P);
    threads_stop(P);
    jit_release(P);
    return fail(P, "sprof: out of memory");
  }
  P->running = 1;
  /* paused (control.c): set up now, in this thread; sampled from resume */
  err = atomic_load(&P->paused) ? 0 : profile_timer_start(P);
  if (err != 0) {
    P->running = 0;
    memory_stop(P, NULL);
    profile_unregister(P);
    take_signal(P, 0);
    threads_stop(P);
    jit_release(P);
    return fail(P, "sprof: cannot start the sampling timer: %s",
                strerror(err));
  }
  return NULL;
}


#ifdef SPROF_LUAJIT
/* The node of an [unsampled] frame at the root, or 0. */
static int unsampled_node (Profiler *P) {
  int f = session_frame(&P->session, FRAME_PSEUDO, "[unsampled]", "", 0, NULL);
  int node = f >= 0 ? session_add_stack(&P->session, &f, 1, 0, 0) : -1;
  return node > 0 ? node : 0;
}


/*
** LuaJIT's samples come with CPU time, so a profile started in a
** coroutine (a request) sees none while it waits: the wall time of the
** run that its own samples do not cover was spent suspended (waiting, or
** other coroutines ran), or blocked in a C function.
*/
static void add_suspended_run (Profiler *P) {
  uint64_t wall = capture_now(CLOCK_KIND_WALL) - P->run_wall_ns;
  int f = session_frame(&P->session, FRAME_PSEUDO, "[suspended]", "", 0, NULL);
  if (f >= 0 && wall > P->own_ns)
    session_add_stack(&P->session, &f, 1, wall - P->own_ns, 1);
}
#endif


/*
** Stops sampling. The time since the last sample is recorded against the
** stack of L from 'level' (the code that called stop), so the samples add
** up to the whole run; L may be NULL when no Lua code is running.
*/
const char *profiler_stop_from (Profiler *P, lua_State *L, int level) {
  Session *S = &P->session;
  lua_State *last_at = L;  /* the stack the time since the last sample
                              goes to; NULL: that sample's */
  if (!P->running)
    return fail(P, "sprof: stop() called but the profiler is not running; "
                   "call start() first");
  if (P->foreign) {  /* in a forked child: what it had is the parent's */
    stop_elsewhere(P);
    return NULL;
  }
  if (profile_gettid() != P->tid)
    return fail(P, "sprof: stop() must be called from the thread that "
                   "called start()");
  if (P->controlled) control_remove(P);  /* takes what it sampled, pauses */
  if (atomic_load(&P->paused)) {  /* set up only: no timer, no last sample */
    profile_unregister(P);
    take_signal(P, 0);  /* after: unregistering drains a pending SIGPROF */
    threads_stop(P);
    P->running = 0;
    atomic_store(&P->paused, 0);  /* a later start() samples */
    /* what it sampled, and its cost, went to the controller's reports */
    P->handler_ns = P->hook_ns = P->sampler_cpu_ns = 0;
    P->reported_overhead_ns = P->reported_sampler_ns = 0;
    return NULL;
  }
  atomic_store(&P->in_hook, 1);  /* a last tick must not sample us */
  profile_timer_stop(P);
  profile_unregister(P);
  take_signal(P, 0);  /* after: unregistering drains a pending SIGPROF */
  atomic_store(&P->in_hook, 0);
  threads_stop(P);
  P->running = 0;
  atomic_store(&P->in_hook, 1);  /* the last sample's allocations are ours */
#ifdef SPROF_LUAJIT
  /* LuaJIT's ticks come at the kernel's (every 4 ms here) and its
     callbacks later still: the time since the last one was more likely
     spent where that one was than in the code that stops. With no sample
     in the run (a short one, or bursts of CPU shorter than the kernel's
     tick, which the process timer then misses) where it went is unknown */
  if (P->own_ns == 0) P->last_node = unsampled_node(P);
  if (P->last_node > 0) last_at = NULL;
#endif
  P->own_ns += capture_now(P->clock) - P->last_ns;
  if (last_at != NULL) capture_record(P, last_at, level);
  else session_add_weight(S, P->last_node, capture_now(P->clock) - P->last_ns);
  atomic_store(&P->in_hook, 0);
#ifdef SPROF_LUAJIT
  if (P->in_coroutine) add_suspended_run(P);
#endif
  memory_stop(P, L);
  S->duration_ns += capture_now(CLOCK_KIND_WALL) - P->run_wall_ns;
  S->cpu_ns += capture_now(CLOCK_KIND_CPU) - P->run_cpu_ns;
  {
    int busy = atomic_exchange(&naming_tid, P->tid);
    session_name_from_source(S);   /* after the run: not its time */
    if (L != NULL) capture_rename_cfunctions(P, L);
    native_name_frames(P->names, S);
    atomic_store(&naming_tid, busy);
  }
  S->overhead_ns = P->handler_ns + P->hook_ns;
  S->sampler_ns = P->sampler_cpu_ns;
  return NULL;
}



const char *profiler_stop (Profiler *P) {
  return profiler_stop_from(P, P->running ? P->L : NULL, 0);
}


void profiler_reset (Profiler *P) {
  session_clear(&P->session);
  memory_reset(P);
  native_names_reset(P->names);
  forget_native_views(P);
  P->last_node = 0;
  P->handler_ns = P->hook_ns = P->sampler_cpu_ns = 0;
  P->reported_overhead_ns = P->reported_sampler_ns = 0;
  P->own_ns = 0;
  if (P->running) {
    P->session.start_time = unix_time();
    P->run_wall_ns = P->first_wall_ns = capture_now(CLOCK_KIND_WALL);
    P->run_cpu_ns = P->last_cpu_ns = capture_now(CLOCK_KIND_CPU);
    P->last_ns = capture_now(P->clock);
  }
}


/* Profiles memory too, sampling an allocation every 'rate' bytes on
** average (0: the default, 512 KiB). */
const char *profiler_set_memory (Profiler *P, double rate) {
#ifdef SPROF_LUAJIT
  if (rate >= 0)  /* not asked for: NaN */
    return fail(P, "sprof: memory profiling is not available on LuaJIT");
#endif
  if (P->running)
    return fail(P, "sprof: memory profiling is set before start()");
  if (!(rate >= 0) || rate > 1e12)
    return fail(P, "sprof: memory_rate must be a number of bytes above 0 "
                   "(e.g. 524288)");
  if (rate > 0 && rate < 1) rate = 1;
  P->memory.rate = P->session.memory_rate = rate > 0 ? rate : SPROF_MEM_RATE;
  return NULL;
}


void profiler_set_program (Profiler *P, const char *program) {
  session_set_program(&P->session, program);
}


char *profiler_render (Profiler *P, const char *format,
                       const RenderOptions *options, size_t *len,
                       const char **error) {
  Buf out;
  RenderOptions ro = options ? *options : report_default_options();
  if ((ro.view == VIEW_ALLOC || ro.view == VIEW_LIVE)
      && P->session.memory_rate == 0) {
    *error = fail(P, "sprof: this profile has no memory view: profile "
                     "with memory = true (sprof-lua --memory)");
    return NULL;
  }
  buf_init(&out);
  if (!report_render(&P->session, format, &ro, &out)) {
    buf_free(&out);
    *error = fail(P, "sprof: unknown format '%s' (use %s)", format,
                  report_formats());
    return NULL;
  }
  if (out.failed) {
    buf_free(&out);
    *error = fail(P, "sprof: out of memory while rendering");
    return NULL;
  }
  if (len) *len = out.len;
  return out.data ? out.data : calloc(1, 1);
}


const char *profiler_write (Profiler *P, const char *path,
                         const char *format,
                         const RenderOptions *options) {
  const char *error = NULL;
  size_t len;
  char *text;
  FILE *f;
  if (format == NULL) format = report_format_of(path);
  text = profiler_render(P, format, options, &len, &error);
  if (text == NULL) return error;
  f = fopen(path, "wb");
  if (f == NULL) {
    free(text);
    return fail(P, "sprof: cannot write '%s': %s", path, strerror(errno));
  }
  if (fwrite(text, 1, len, f) != len || fclose(f) != 0) {
    free(text);
    return fail(P, "sprof: cannot write '%s': %s", path, strerror(errno));
  }
  free(text);
  return NULL;
}


const char *profiler_load (Profiler *P, const char *path) {
  char why[200];
  if (!report_load_json_file(&P->session, path, why, sizeof why))
    return fail(P, "sprof: cannot load '%s': %s", path, why);
  return NULL;
}


/* ----------------------------------------------- control.c: periods */

/* The profiled thread's clock, read from any thread. */
static uint64_t thread_clock (const Profiler *P) {
  return P->clock == CLOCK_KIND_CPU ? profile_thread_cpu_ns(P)
                                    : capture_now(CLOCK_KIND_WALL);
}


/*
** The ticks that found the thread that started suspended, as capture.c
** records them: under a [suspended] frame, here below the stack of the
** last sample (where it waited). Returns what is left of 'weight'.
*/
static uint64_t close_suspended (Profiler *P, uint64_t weight) {
  Session *S = &P->session;
  int path[SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 9], n, f;
  uint64_t suspended = atomic_exchange(&P->suspended_ns, 0);
  if (suspended > weight) suspended = weight;
  if (suspended == 0) return weight;
  f = session_frame(S, FRAME_PSEUDO, "[suspended]", "", 0, NULL);
  n = session_path(S, P->last_node, path, (int)(sizeof path / sizeof *path) - 1);
  if (f < 0 || n < 0) return weight;
  path[n++] = f;
  session_add_stack(S, path, n, suspended, 0);
  return weight - suspended;
}


/*
** Closes the period so far (the hook held off): the time since the last
** sample goes where that sample was, the ticks that found no Lua code
** running to the root ("outside Lua") and those that found it suspended
** under [suspended], so the weights add up to the period; its duration
** and CPU time are added, and the next period starts now. Native
** captures not yet drained are dropped (their time is in that weight):
** the next period's samples would find them older than its start.
*/
static void close_period (Profiler *P) {
  Session *S = &P->session;
  uint64_t now = thread_clock(P), wall = capture_now(CLOCK_KIND_WALL);
  uint64_t cpu = profile_thread_cpu_ns(P);
  uint64_t weight = now > P->last_ns ? now - P->last_ns : 0;
  uint64_t idle;
  if (P->ring) atomic_store(&P->ring->tail, atomic_load(&P->ring->head));
  weight = close_suspended(P, weight);
  idle = atomic_exchange(&P->idle_ns, 0);
  if (idle > weight) idle = weight;
  session_add_weight(S, 0, idle);
  session_add_weight(S, P->last_node, weight - idle);
  P->last_ns = now;
  P->last_cpu_ns = cpu;
  profile_seen(P, now);  /* a tick of the next period looks from here */
  S->duration_ns += wall - P->run_wall_ns;
  S->cpu_ns += cpu > P->run_cpu_ns ? cpu - P->run_cpu_ns : 0;
  P->run_wall_ns = wall;
  P->run_cpu_ns = cpu;
}


/*
** Starts sampling a profiler set up paused (profiler_start with 'paused'
** set), from any thread. Returns 0 or an errno value.
*/
int profiler_resume (Profiler *P) {
  int err, held;
  if (!P->running || !atomic_load(&P->paused) || P->foreign) return 0;
  /* paused, the hook records nothing: held only for the ring */
  held = profiler_hold(P);
  atomic_store(&P->pending, 0);
  atomic_store(&P->sampler_armed, 0);
  atomic_store(&P->idle_ns, 0);
  atomic_store(&P->suspended_ns, 0);
  if (P->ring)  /* captures of before the pause are no one's time */
    atomic_store(&P->ring->tail, atomic_load(&P->ring->head));
  P->run_wall_ns = capture_now(CLOCK_KIND_WALL);
  P->run_cpu_ns = P->last_cpu_ns = profile_thread_cpu_ns(P);
  P->last_ns = thread_clock(P);
  atomic_store(&P->seen_ns, P->last_ns);
  if (P->session.samples == 0 && P->session.weight_ns == 0) {
    P->session.start_time = unix_time();
    P->first_wall_ns = P->run_wall_ns;
  }
  atomic_store(&P->paused, 0);
  if (held) profiler_release(P);
  err = profile_timer_start(P);
  if (err != 0) atomic_store(&P->paused, 1);
  return err;
}


/* Stops sampling, from any thread; the period so far is closed. */
void profiler_pause (Profiler *P) {
  if (!P->running || atomic_load(&P->paused) || P->foreign) return;
  profile_timer_stop(P);
  atomic_store(&P->paused, 1);  /* a tick still on its way does nothing */
  atomic_store(&P->pending, 0);
  atomic_store(&P->sampler_armed, 0);
  if (!profiler_hold(P)) return;  /* the hook is stuck: the period is lost */
  close_period(P);
  profiler_release(P);
}


/*
** Adds what was recorded since the last snapshot to 'out' (session_merge)
** and clears it, from any thread. A running profiler's period is closed
** first and the next one starts. The hook is held off for the naming of
** new frames (cached: each is named once) and the copy; rendering and
** writing are the caller's, on 'out'. 0 if memory ran out. If the hook
** cannot be held off, nothing is taken: the next snapshot takes it.
*/
int profiler_snapshot (Profiler *P, Session *out) {
  Session *S = &P->session;
  int path[SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 8], n, ok;
  uint64_t overhead, sampler;
  if (P->foreign || !profiler_hold(P)) return 1;
  if (P->running && !atomic_load(&P->paused)) close_period(P);
  session_name_from_source(S);
  native_name_frames(P->names, S);
  overhead = P->handler_ns + P->hook_ns;
  S->overhead_ns = overhead > P->reported_overhead_ns
                   ? overhead - P->reported_overhead_ns : 0;
  P->reported_overhead_ns = overhead;
  sampler = profile_sampler_ns(P);
  S->sampler_ns = sampler > P->reported_sampler_ns
                  ? sampler - P->reported_sampler_ns : 0;
  P->reported_sampler_ns = sampler;
  ok = S->weight_ns == 0 && S->samples == 0 ? 1 : session_merge(out, S);
  /* the next period starts where this one ended: on the same stack */
  n = session_path(S, P->last_node, path, (int)(sizeof path / sizeof *path));
  session_clear_tree(S);
  P->last_node = session_add_stack(S, path, n, 0, 0);
  S->start_time = unix_time();
  P->first_wall_ns = capture_now(CLOCK_KIND_WALL);
  profiler_release(P);
  return ok;
}
