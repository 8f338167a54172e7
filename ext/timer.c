/*
** timer.c — when samples are taken.
**
** Two back-ends behind profile_timer_start/_stop:
** - CPU clock: a POSIX timer on the thread's CPU clock, delivered to that
**   thread only (SIGEV_THREAD_ID); its handler arms the hook. It runs down
**   only while the thread runs, so it does not interrupt a wait (measured:
**   no EINTR in 640 sleeps). The kernel checks it at its scheduler tick,
**   which comes anyway while the thread runs: no wake-up of its own.
** - wall clock: the same CPU timer samples the thread while it runs (at
**   the tick, not at each interval), and a sampler thread covers its
**   waits, arming the hook itself; no signal is sent then. A signal that
**   lands while the thread waits makes nanosleep, poll and select fail
**   with EINTR even under SA_RESTART. When the thread waits in a C
**   function, the hook fires as it returns, with its frame still on the
**   stack and the whole wait as the weight. The sampler looks every
**   interval only around waits (sampler_look): a wake-up costs 30-50 us
**   of CPU in a virtual machine (bench/wakeup), 3-5% of a CPU at one per
**   millisecond, where the tick's signal costs next to nothing
**   (bench/timers).
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


/* The time since the previous tick that looked at P's thread: what this
** tick stands for ('now' on P's clock). The sampler thread and the signal
** handler share it; it only moves forward (a reading taken before a
** preemption must not put an older time back). */
uint64_t profile_seen (Profiler *P, uint64_t now) {
  unsigned long long prev = atomic_load(&P->seen_ns);
  while (prev < now && !atomic_compare_exchange_weak(&P->seen_ns, &prev, now))
    ;
  return now > prev ? now - prev : 0;
}


/* Whether a native capture is due: with the wall clock, at most one
** every NATIVE_PERIOD_NS (see cputimer_start); with the CPU clock, at
** each signal. */
#define NATIVE_PERIOD_NS 5000000u

static int native_due (Profiler *P, uint64_t wall) {
  if (P->clock == CLOCK_KIND_CPU) return 1;
  if (wall - P->capture_ns < NATIVE_PERIOD_NS) return 0;
  P->capture_ns = wall;
  return 1;
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
    uint64_t now = P->clock == CLOCK_KIND_WALL ? t0 : capture_now(P->clock);
    uint64_t seen = profile_seen(P, now);
    int in_lua = !atomic_load(&P->in_hook) && profile_lua_running(P);
    if (lua_status(P->L) == LUA_YIELD)  /* another coroutine's time */
      atomic_fetch_add(&P->suspended_ns, seen);
    else if (!runs[i] && nruns > 0)  /* another state's time */
      atomic_fetch_add(&P->idle_ns, seen);
    else if (P->ring != NULL && !atomic_load(&P->in_hook)
             && atomic_load(&naming_tid) != tid && native_due(P, t0))
      native_capture(P->ring, context, now, in_lua);  /* the host's, or ours */
    else if (!runs[i])  /* the host's own time, with no capture to show it */
      atomic_fetch_add(&P->idle_ns, seen);
    atomic_store(&P->sampler_armed, 0);  /* a tick's: all of it ran here */
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
static void sampler_arm (Profiler *P) {
  if (!atomic_exchange(&P->pending, 1))  /* else a tick's */
    atomic_store(&P->sampler_armed, 1);
  atomic_fetch_add(&P->arming, 1);  /* a count: the controller may hold too */
  if (!atomic_load(&P->in_hook)) {
    uint64_t seen = profile_seen(P, capture_now(CLOCK_KIND_WALL));
    if (lua_status(P->L) == LUA_YIELD)  /* see capture.c, suspended */
      atomic_fetch_add(&P->suspended_ns, seen);
    else if (!profile_lua_running(P))  /* the host's time, or a state's */
      atomic_fetch_add(&P->idle_ns, seen);
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
** What the sampler reads of the profiled thread at each look: its CPU
** clock, and whether it waits now (sleeping, in a disk wait or stopped;
** not running or runnable), from /proc/<pid>/task/<tid>/stat. A thread
** that queues for a CPU does not wait: the next tick's sample, where it
** runs again, takes that time. Without the file, a thread that did not
** run since the last look counts as waiting.
*/
typedef struct ThreadLook {
  uint64_t wall, ran;
  int waiting;
} ThreadLook;

static int open_stat (const Profiler *P) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)getpid(),
           (int)P->tid);
  return open(path, O_RDONLY | O_CLOEXEC);
}


/* Whether the thread waits now: the state letter after its name, which
** is in parentheses and may hold ')' and spaces, so it follows the last
** ')' (the name has at most 15 bytes: the read holds it). */
static int waits_now (int fd, int ran) {
  char buf[512], *paren;
  ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
  if (n <= 0) return !ran;
  buf[n] = '\0';
  paren = strrchr(buf, ')');
  return paren != NULL && paren[1] == ' ' && paren[2] != 'R' && paren[2] != '\0';
}


static void look_at (const Profiler *P, int fd, const ThreadLook *was,
                     ThreadLook *now) {
  now->wall = capture_now(CLOCK_KIND_WALL);
  now->ran = profile_thread_cpu_ns(P);
  now->waiting = waits_now(fd, was == NULL || now->ran != was->ran);
}


/*
** The sampler thread's pace, from one look at the thread. It arms the
** hook unless the CPU timer's signal came within an interval (the thread
** ran and got its sample).
** - It waits now: arm, so that the hook fires as the wait ends. Waits
**   come in runs: look every interval for SAMPLER_HOLD_NS. Once one wait
**   has lasted that long (the thread did not run since), look less
**   often, up to every 4 intervals: nothing changes until it runs (a look
**   outside Lua or while suspended counts the time since the last one
**   as such).
** - It runs, within SAMPLER_HOLD_NS of a wait: arm, as the sampler did
**   every interval before; the work between waits (a request's) is
**   often shorter than a tick, which would miss most of it.
** - It runs, longer: its CPU timer samples it. Look less and less often,
**   up to every SAMPLER_MAX_SLEEP_NS. A wait shorter than that, after
**   such a stretch, may go unseen: its time then goes to the next sample.
*/
#define SAMPLER_MAX_SLEEP_NS 16000000u
#define SAMPLER_HOLD_NS 50000000u

typedef struct SamplerPace {
  uint64_t step;        /* the interval */
  uint64_t sleep;       /* until the next look */
  uint64_t hold_until;  /* look every interval until then */
  uint64_t wait_start;  /* when the wait going on was first seen */
} SamplerPace;

static void longer (SamplerPace *pace, uint64_t most) {
  if (most < pace->step) most = pace->step;
  pace->sleep = pace->sleep * 2 < most ? pace->sleep * 2 : most;
}


static void sampler_look (Profiler *P, const ThreadLook *was,
                          const ThreadLook *now, SamplerPace *pace) {
  uint64_t last_signal = atomic_load(&P->signal_ns);
  int armable = now->wall < last_signal
                || now->wall - last_signal >= pace->step;
  int ran = now->ran != was->ran;
  if (now->waiting) {
    if (armable) sampler_arm(P);
    if (ran || !was->waiting) pace->wait_start = now->wall;
    pace->hold_until = now->wall + SAMPLER_HOLD_NS;
    if (now->wall - pace->wait_start >= SAMPLER_HOLD_NS)
      longer(pace, 4 * pace->step);
    else pace->sleep = pace->step;
  }
  else if (now->wall < pace->hold_until) {
    if (armable && ran) sampler_arm(P);
    pace->sleep = pace->step;
  }
  else longer(pace, SAMPLER_MAX_SLEEP_NS);
}


static void *sampler_main (void *arg) {
  Profiler *P = arg;
  SamplerPace pace = {0, 0, 0, 0};
  int fd = open_stat(P);
  ThreadLook was, now;
  struct timespec next;
  pace.step = pace.sleep = (uint64_t)(P->interval * 1e9 + 0.5);
  look_at(P, fd, NULL, &was);
  clock_gettime(CLOCK_MONOTONIC, &next);
  add_ns(&next, pace.sleep);
  while (sampler_sleep(P, &next)) {
    look_at(P, fd, &was, &now);
    sampler_look(P, &was, &now, &pace);
    was = now;
    clock_gettime(CLOCK_MONOTONIC, &next);
    add_ns(&next, pace.sleep);
  }
  if (fd >= 0) close(fd);
  /* its own CPU time, read here: once woken by a stop, the thread may be
     gone before the stopping thread could read its clock (the join makes
     the sum visible there) */
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &next);
  P->sampler_cpu_ns += (uint64_t)next.tv_sec * 1000000000u
                       + (uint64_t)next.tv_nsec;
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
** The timer's period is the interval; the kernel fires it at its next
** tick (every 4 ms with this kernel). With the wall clock and native
** frames, the samples between native captures take the native view
** last captured for their Lua stack: a capture costs far more than its
** handler's 4-20 us (the caches it evicts: on table.sort, 250 captures a
** second cost 1.5% of the run against 0.5% measured inside the handler),
** so they come at most every NATIVE_PERIOD_NS (native_due).
*/
static int cputimer_start (Profiler *P) {
  struct sigevent sev;
  struct itimerspec its;
  uint64_t step = (uint64_t)(P->interval * 1e9 + 0.5);
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
** With the wall clock both run: the CPU timer samples the running thread
** (and only a handler on the thread itself can unwind its native
** frames); the sampler thread covers its waits.
*/
int profile_timer_start (Profiler *P) {
#ifdef SPROF_LUAJIT
  return jit_timer_start(P);  /* LuaJIT's own timer (jit.c) */
#else
  int err;
  if (P->clock == CLOCK_KIND_CPU) return cputimer_start(P);
  err = sampler_start(P);
  if (err == 0 && (err = cputimer_start(P)) != 0)
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
