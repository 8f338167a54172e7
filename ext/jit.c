/*
** jit.c — the LuaJIT back-end. LuaJIT's hooks are global to the VM,
** lua_sethook is not safe from another thread, and count hooks do not
** fire inside compiled traces: sprof's hook cannot take the samples
** there. LuaJIT's own profiler (luaJIT_profile_start) can: its timer
** marks a sample as due, and the VM calls back at the next safe point
** with the coroutine that runs and what the VM was doing at the tick
** ('N' compiled code, 'I' interpreter, 'C' a C function, 'G' collector,
** 'J' compiler). The call tree, the renderers and the rest are shared.
*/
#include "profiler.h"  /* (compat.h tells LuaJIT's headers) */

#ifdef SPROF_LUAJIT
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/*
** Sadly, the owner is static: LuaJIT keeps one profiler state for the
** whole process (its timer is setitimer's ITIMER_PROF, process CPU time,
** delivered as SIGPROF), so one profiler runs at a time in a process.
*/
static Profiler *_Atomic jit_owner;
/* LuaJIT's SIGPROF handler, which ours calls after its capture */
static struct sigaction jit_action;
static int chained;  /* ours is installed over it */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;


/* A child made by fork has neither the parent's timer nor its profiler:
** it may start its own (nginx's workers, forked from the master). */
static void forget_after_fork (void) {
  atomic_store(&jit_owner, NULL);
  chained = 0;
}


static void set_atfork (void) {
  pthread_atfork(NULL, NULL, forget_after_fork);
}


int jit_claim (Profiler *P) {
  Profiler *none = NULL;
  pthread_once(&atfork_once, set_atfork);
  return atomic_compare_exchange_strong(&jit_owner, &none, P)
         || atomic_load(&jit_owner) == P;
}


void jit_release (Profiler *P) {
  Profiler *mine = P;
  atomic_compare_exchange_strong(&jit_owner, &mine, NULL);
}


/*
** Async-signal-safe: LuaJIT's tick. With native frames on, the native
** stack goes into the ring first (the callback uses it when a C function
** ran), then LuaJIT's own handler marks the sample as due. The tick is
** process CPU time: it may land in another thread, which is not ours.
*/
static void on_tick (int sig, siginfo_t *info, void *context) {
  Profiler *P = atomic_load(&jit_owner);
  int saved_errno = errno;
  if (P != NULL && P->ring != NULL && !atomic_load(&P->in_hook)
      && profile_gettid() == P->tid)
    native_capture(P->ring, context, capture_now(P->clock), 1);
  errno = saved_errno;
  if (jit_action.sa_flags & SA_SIGINFO) jit_action.sa_sigaction(sig, info, context);
  else if (jit_action.sa_handler != SIG_DFL && jit_action.sa_handler != SIG_IGN)
    jit_action.sa_handler(sig);
}


/* LuaJIT may call back after its profiler was stopped (a tick that fell
** in a collection is delivered after the finalizers, and one of them may
** have stopped and freed the profiler): only the owner's are taken. */
static void on_sample (void *data, lua_State *L, int samples, int vmstate) {
  Profiler *P = atomic_load(&jit_owner);
  (void)samples;  /* the time since the last callback weighs it instead */
  if (P != NULL && P == data) capture_jit_sample(P, L, vmstate);
}


/* LuaJIT's timer ticks in whole milliseconds (profiler_new rounds). Mode
** 'l' makes compiled traces check for a due sample at each new line:
** without it a sample due in a trace waits for the interpreter, after a
** coroutine has yielded or in a caller's caller (traces run on past a
** function's return); with 'f' (luajit -jp's default, a check where a
** trace enters or leaves a function) C work in stitched traces still
** landed in the caller's caller. Measured cost: 0.5% on call-heavy code. The
** thread that starts is kept alive until the stop, which needs a thread of
** the same state (5.1's API reaches no main thread from a coroutine). */
int jit_timer_start (Profiler *P) {
  char mode[24];
  snprintf(mode, sizeof mode, "li%d", (int)(P->interval * 1000 + 0.5));
  if (!jit_claim(P)) return EBUSY;
  P->in_coroutine = !lua_pushthread(P->L);
  P->jit_ref = luaL_ref(P->L, LUA_REGISTRYINDEX);
  luaJIT_profile_start(P->L, mode, on_sample, P);
  if (P->ring != NULL) {
    struct sigaction ours;
    /* LuaJIT's compiled traces have no unwind tables: a tick in one is
       not unwound (its time has the [jit compiled] leaf) */
    P->ring->stop_outside = 1;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_tick;
    ours.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&ours.sa_mask);
    chained = sigaction(SIGPROF, &ours, &jit_action) == 0;
  }
  return 0;
}


/* LuaJIT flushes its compiled traces as it stops (they recompile). */
void jit_timer_stop (Profiler *P) {
  if (atomic_load(&jit_owner) != P) return;
  if (chained) sigaction(SIGPROF, &jit_action, NULL);  /* LuaJIT's, to */
  chained = 0;                                         /* put back ours */
  luaJIT_profile_stop(P->L);
  luaL_unref(P->L, LUA_REGISTRYINDEX, P->jit_ref);
  jit_release(P);
}

#endif
