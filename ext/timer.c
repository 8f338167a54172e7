/*
** timer.c — when samples are taken.
**
** Two back-ends behind profile_timer_start/_stop:
** - wall clock: a sampler thread ticks every interval and arms the
**   profiled thread's hook itself; no signal is sent. A signal that lands
**   while the thread waits makes nanosleep, poll and select fail with
**   EINTR even under SA_RESTART, and checking first whether the thread
**   waits leaves a window (measured: a few EINTRs in 80 sleeps). When
**   the thread waits in a C function, the hook fires as it returns, with
**   its frame still on the stack and the whole wait as the weight.
** - CPU clock: a POSIX timer on the thread's CPU clock, delivered to that
**   thread only (SIGEV_THREAD_ID); its handler arms the hook. It runs down
**   only while the thread runs, so it does not interrupt a wait (measured:
**   no EINTR in 640 sleeps). The kernel fires it at its tick.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "profiler.h"

#define MAX_PROFILERS PROFILE_MAX
#define PROFILE_SIGNAL SIGPROF

/*
** Sadly, the profilers must sit in a static table: a signal handler gets
** no argument to find its profiler by, so it looks for the one whose
** thread it interrupted. One running profiler per OS thread.
*/
static Profiler *_Atomic active[MAX_PROFILERS];
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int nactive;                   /* guarded by install_lock */
static struct sigaction old_action;   /* the handler we replaced */
static int atfork_set;                /* guarded by install_lock */
/* handlers running now: a profiler leaves the table only once none may
** still hold it (a state closed from another thread is freed next) */
static atomic_int in_handler;
/* The OS thread naming native frames at a stop: its own work is no sample
** for the other profilers on that thread. */
atomic_int naming_tid;


pid_t profile_gettid (void) {
  return (pid_t)syscall(SYS_gettid);
}


/* The CPU clock of the profiler's thread, for any thread to read or set a
** timer on: Linux names a thread's CPU clock by its id, as glibc's
** pthread_getcpuclockid does (CLOCK_THREAD_CPUTIME_ID is the caller's). */
static clockid_t thread_clock_id (const Profiler *P) {
  return (clockid_t)((~(unsigned)P->tid << 3) | 6);  /* per thread, SCHED */
}


uint64_t profile_thread_cpu_ns (const Profiler *P) {
  struct timespec ts;
  if (clock_gettime(thread_clock_id(P), &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


/* A thread may run several Lua states (lighttpd runs one per script): the
** profiler of this OS thread whose state L belongs to. Not for signal
** handlers (it reads L's registry). */
Profiler *profile_of_state (pid_t tid, lua_State *L) {
  lua_State *main;
  int i, count = 0;
  Profiler *found = NULL;
  for (i = 0; i < MAX_PROFILERS; i++) {
    Profiler *P = atomic_load(&active[i]);
    if (P != NULL && P->tid == tid) { found = P; count++; }
  }
  if (count <= 1) return found;
  main = compat_mainthread(L);
  for (i = 0; i < MAX_PROFILERS; i++) {
    Profiler *P = atomic_load(&active[i]);
    if (P != NULL && P->tid == tid && P->main == main) return P;
  }
  return NULL;
}


/*
** Whether Lua code runs in the profiler's threads: the one that started
** (or a coroutine it resumed) or a coroutine a host resumed and told us
** of. Plain reads of their status and call chains, safe in a signal
** handler on their own OS thread; the sampler thread calls it only under
** its arming handshake, while the armed set cannot change.
*/
int profile_lua_running (Profiler *P) {
  int i;
  for (i = 0; i < P->nthreads; i++) {
    lua_Debug ar;
    lua_State *L = P->threads[i].L;
    if (lua_status(L) == LUA_OK && lua_getstack(L, 0, &ar)) return 1;
  }
  return 0;
}


/* Async-signal-safe: unwind the native stack into the ring, mark a sample
** as due and arm the hook. Ours come from the POSIX timers alone: a
** SIGPROF sent otherwise (kill, raise, setitimer) is the program's, and
** goes to its handler. */
static void on_signal (int sig, siginfo_t *info, void *context) {
  int saved_errno = errno;
  pid_t tid = profile_gettid();
  Profiler *mine[MAX_PROFILERS];
  int runs[MAX_PROFILERS];  /* its state runs Lua code, or its hook */
  int i, n = 0, nruns = 0;
  int ours = info == NULL || info->si_code == SI_TIMER;
  atomic_fetch_add(&in_handler, 1);
  for (i = 0; ours && i < MAX_PROFILERS; i++) {  /* paused: a tick left */
    Profiler *P = atomic_load(&active[i]);
    if (P != NULL && P->tid == tid && !atomic_load(&P->paused)) mine[n++] = P;
  }
  for (i = 0; i < n; i++) {
    runs[i] = atomic_load(&mine[i]->in_hook) || profile_lua_running(mine[i]);
    nruns += runs[i];
  }
  for (i = 0; i < n; i++) {
    Profiler *P = mine[i];
    uint64_t t0 = capture_now(CLOCK_KIND_WALL);
    int in_lua = !atomic_load(&P->in_hook) && profile_lua_running(P);
    uint64_t tick = (uint64_t)(P->interval * 1e9);
    if (lua_status(P->L) == LUA_YIELD)  /* another coroutine's time */
      atomic_fetch_add(&P->suspended_ns, tick);
    else if (!runs[i] && nruns > 0)  /* another state's time */
      atomic_fetch_add(&P->idle_ns, tick);
    else if (!atomic_load(&P->in_hook) && atomic_load(&naming_tid) != tid)
      native_capture(P->ring, context, capture_now(P->clock), in_lua);
    atomic_store(&P->pending, 1);
    if (!atomic_load(&P->in_hook)) capture_arm(P);
    atomic_store(&P->signal_ns, t0);
    P->handler_ns += capture_now(CLOCK_KIND_WALL) - t0;
    P->signals++;
  }
  atomic_fetch_sub(&in_handler, 1);  /* the program's handler may not return */
  if (n == 0) {
    if ((old_action.sa_flags & SA_SIGINFO) && old_action.sa_sigaction != NULL)
      old_action.sa_sigaction(sig, info, context);
    else if (old_action.sa_handler != SIG_DFL
             && old_action.sa_handler != SIG_IGN
             && old_action.sa_handler != NULL)
      old_action.sa_handler(sig);
    /* else: a stray tick after a stop; SIGPROF's default would kill us */
  }
  errno = saved_errno;
}


/*
** Before the old handler comes back, a tick still pending for this thread
** must be taken away: SIGPROF's default action ends the process.
*/
static void drain_pending_signal (void) {
  sigset_t set, pending;
  struct timespec zero = {0, 0};
  sigemptyset(&set);
  sigaddset(&set, PROFILE_SIGNAL);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  while (sigpending(&pending) == 0 && sigismember(&pending, PROFILE_SIGNAL))
    if (sigtimedwait(&set, NULL, &zero) < 0) break;
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}


/*
** In a child made by fork, only the thread that forked runs: the
** profilers in the table are the parent's (their timers and sampler
** threads were not inherited). They are marked foreign and forgotten,
** never stopped or joined; the child's own states register afresh.
*/
static void forget_after_fork (void) {
  int i;
  pthread_mutex_init(&install_lock, NULL);  /* maybe held at the fork */
  for (i = 0; i < MAX_PROFILERS; i++) {
    Profiler *P = atomic_load(&active[i]);
    if (P != NULL) P->foreign = 1;
    atomic_store(&active[i], NULL);
  }
  if (nactive > 0) sigaction(PROFILE_SIGNAL, &old_action, NULL);
  nactive = 0;
  atomic_store(&in_handler, 0);
}


/* Returns 0, or an errno value (EBUSY: this thread already has one;
** EAGAIN: MAX_PROFILERS are set up). */
int profile_register (Profiler *P) {
  int i, slot = -1, err = 0;
  pthread_mutex_lock(&install_lock);
  if (!atfork_set && pthread_atfork(NULL, NULL, forget_after_fork) == 0)
    atfork_set = 1;
  for (i = 0; i < MAX_PROFILERS; i++) {
    Profiler *other = atomic_load(&active[i]);
    if (other != NULL && other->tid == P->tid && other->main == P->main) {
      err = EBUSY;  /* one profiler per state */
      break;
    }
    if (other == NULL && slot < 0) slot = i;
  }
  if (err == 0 && slot < 0) err = EAGAIN;
  if (err == 0 && nactive == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(PROFILE_SIGNAL, &sa, &old_action) != 0) err = errno;
  }
  if (err == 0) {
    atomic_store(&active[slot], P);
    nactive++;
  }
  pthread_mutex_unlock(&install_lock);
  return err;
}


/* From any thread. Once it returns, no signal handler holds P. */
void profile_unregister (Profiler *P) {
  int i;
  pthread_mutex_lock(&install_lock);
  for (i = 0; i < MAX_PROFILERS; i++) {
    if (atomic_load(&active[i]) == P) {
      atomic_store(&active[i], NULL);
      if (--nactive == 0) {
        drain_pending_signal();
        sigaction(PROFILE_SIGNAL, &old_action, NULL);
      }
    }
  }
  /* a handler on another thread may have read P before it left: brief */
  while (atomic_load(&in_handler) > 0) sched_yield();
  pthread_mutex_unlock(&install_lock);
}


/* ------------------------------------------------ wall clock: sampler */
#ifndef SPROF_LUAJIT  /* LuaJIT samples with its own timer (jit.c) */

/*
** Arms the profiled thread from the sampler thread. lua_sethook from
** another thread is what lua.c does from a signal handler: the fields it
** writes are volatile and Lua polls them; the walk it makes over the
** thread's CallInfo list can race with that list shrinking, which only
** a collection does, and only past the frame in use: we accept that.
** The handshake with the hook (arming / in_hook, both seq_cst) keeps
** our arm from interleaving with the hook's disarm.
*/
static void sampler_arm (Profiler *P, uint64_t step) {
  atomic_store(&P->pending, 1);
  atomic_fetch_add(&P->arming, 1);  /* a count: the controller may hold too */
  if (!atomic_load(&P->in_hook)) {
    if (lua_status(P->L) == LUA_YIELD)  /* see capture.c, suspended */
      atomic_fetch_add(&P->suspended_ns, step);
    else if (!profile_lua_running(P))  /* the host's time, or a state's */
      atomic_fetch_add(&P->idle_ns, step);
    capture_arm(P);
  }
  atomic_fetch_sub(&P->arming, 1);
}


static void add_ns (struct timespec *ts, uint64_t ns) {
  ns += (uint64_t)ts->tv_nsec;
  ts->tv_sec += (time_t)(ns / 1000000000u);
  ts->tv_nsec = (long)(ns % 1000000000u);
}


/*
** Sleeps until 'next' or until stopped; returns whether still on. The
** sleep is a timed wait on a condition, not a nanosleep, so that a stop
** wakes the sampler at once: with a 2 s interval, joining a thread that
** sleeps would make every stop wait up to 2 s.
*/
static int sampler_sleep (Profiler *P, const struct timespec *next) {
  int on, err = 0;
  pthread_mutex_lock(&P->sampler_lock);
  while ((on = P->sampler_on) && err == 0)  /* 0: woken, maybe spuriously */
    err = pthread_cond_timedwait(&P->sampler_wake, &P->sampler_lock, next);
  pthread_mutex_unlock(&P->sampler_lock);
  return on;
}


/*
** With native frames on, the CPU timer's signal also takes samples (with
** their native stacks): each one stands for our next tick, which would
** only add a sample and the hook's cost. The sample rate stays one per
** interval.
*/
static void *sampler_main (void *arg) {
  Profiler *P = arg;
  uint64_t step = (uint64_t)(P->interval * 1e9 + 0.5);
  struct timespec next, now;
  clock_gettime(CLOCK_MONOTONIC, &next);
  add_ns(&next, step);
  while (sampler_sleep(P, &next)) {
    uint64_t woke = capture_now(CLOCK_KIND_WALL);
    if (woke - atomic_load(&P->signal_ns) >= step) sampler_arm(P, step);
    add_ns(&next, step);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec
        || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec)) {
      next = now;  /* fell behind: skip ticks rather than burst */
      add_ns(&next, step);
    }
  }
  /* its own CPU time, read here: once woken by a stop, the thread may be
     gone before the stopping thread could read its clock (the join makes
     the sum visible there) */
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  P->sampler_cpu_ns += (uint64_t)now.tv_sec * 1000000000u
                       + (uint64_t)now.tv_nsec;
  return NULL;
}

#endif

/* The CPU time of the sampler threads so far, the running one's too:
** control.c reads it at each period's end, from the thread that starts
** and stops the sampler, so the thread cannot end meanwhile. */
uint64_t profile_sampler_ns (const Profiler *P) {
  uint64_t ns = P->sampler_cpu_ns;
  clockid_t id;
  struct timespec now;
  if (P->sampler_on && pthread_getcpuclockid(P->sampler, &id) == 0
      && clock_gettime(id, &now) == 0)
    ns += (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
  return ns;
}


#ifndef SPROF_LUAJIT  /* LuaJIT samples with its own timer (jit.c) */

/* The condition's clock is the monotonic one, as the ticks' deadlines. */
static int sampler_init_wait (Profiler *P) {
  pthread_condattr_t attr;
  int err = pthread_condattr_init(&attr);
  if (err == 0) err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (err == 0) err = pthread_cond_init(&P->sampler_wake, &attr);
  pthread_condattr_destroy(&attr);
  if (err != 0) return err;
  err = pthread_mutex_init(&P->sampler_lock, NULL);
  if (err != 0) pthread_cond_destroy(&P->sampler_wake);
  return err;
}


static void sampler_free_wait (Profiler *P) {
  pthread_cond_destroy(&P->sampler_wake);
  pthread_mutex_destroy(&P->sampler_lock);
}


static int sampler_start (Profiler *P) {
  sigset_t all, old;
  int err = sampler_init_wait(P);
  if (err != 0) return err;
  P->sampler_on = 1;
  sigfillset(&all);  /* the sampler thread takes none of the program's signals */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&P->sampler, NULL, sampler_main, P);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) sampler_free_wait(P);
  return err;
}


static void sampler_stop (Profiler *P) {
  pthread_mutex_lock(&P->sampler_lock);
  P->sampler_on = 0;
  pthread_cond_signal(&P->sampler_wake);
  pthread_mutex_unlock(&P->sampler_lock);
  pthread_join(P->sampler, NULL);
  sampler_free_wait(P);
}


/* --------------------------------------------- CPU clock: POSIX timer */

/*
** With the wall clock the CPU timer only takes the native captures; the
** samples between them take the native view last captured for their Lua
** stack. A capture costs far more than its handler's 4-20 us (the signal,
** and the caches it evicts: on table.sort, 250 captures a second cost 1.5%
** of the run against 0.5% measured inside the handler), so they come at
** most every 5 ms of CPU time (the kernel fires the timer at its next
** tick: every 8 ms with this kernel's 4 ms tick).
*/
#define NATIVE_PERIOD_NS 5000000u

static int cputimer_start (Profiler *P) {
  struct sigevent sev;
  struct itimerspec its;
  uint64_t step = (uint64_t)(P->interval * 1e9 + 0.5);
  if (P->clock == CLOCK_KIND_WALL && step < NATIVE_PERIOD_NS)
    step = NATIVE_PERIOD_NS;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = PROFILE_SIGNAL;
  sev._sigev_un._tid = P->tid;
  /* the profiled thread's clock: the controller (control.c) starts this
     timer from its own thread */
  if (timer_create(thread_clock_id(P), &sev, &P->timer) != 0)
    return errno;
  P->timer_made = 1;
  its.it_interval.tv_sec = (time_t)(step / 1000000000u);
  its.it_interval.tv_nsec = (long)(step % 1000000000u);
  its.it_value = its.it_interval;
  if (timer_settime(P->timer, 0, &its, NULL) != 0) {
    int err = errno;
    timer_delete(P->timer);
    P->timer_made = 0;
    return err;
  }
  return 0;
}


static void cputimer_stop (Profiler *P) {
  if (P->timer_made) timer_delete(P->timer);
  P->timer_made = 0;
}

#endif


/*
** Native frames can only be unwound on the thread itself, in a signal
** handler: with the wall clock, the CPU timer runs too, for them (it
** does not interrupt waits; the sampler thread still covers those).
*/
int profile_timer_start (Profiler *P) {
#ifdef SPROF_LUAJIT
  return jit_timer_start(P);  /* LuaJIT's own timer (jit.c) */
#else
  int err;
  if (P->clock == CLOCK_KIND_CPU) return cputimer_start(P);
  err = sampler_start(P);
  if (err == 0 && P->ring != NULL && (err = cputimer_start(P)) != 0)
    sampler_stop(P);
  return err;
#endif
}


void profile_timer_stop (Profiler *P) {
#ifdef SPROF_LUAJIT
  jit_timer_stop(P);
#else
  cputimer_stop(P);
  if (P->clock == CLOCK_KIND_WALL) sampler_stop(P);
#endif
}
