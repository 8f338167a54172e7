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
#ifdef SPROF_LUAJIT
#include <errno.h>
#include <stdio.h>

#include "profiler.h"

/*
** Sadly, the owner is static: LuaJIT keeps one profiler state for the
** whole process (its timer is setitimer's ITIMER_PROF, process CPU time,
** delivered as SIGPROF), so one profiler runs at a time in a process.
*/
static Profiler *_Atomic jit_owner;


int jit_claim (Profiler *P) {
  Profiler *none = NULL;
  return atomic_compare_exchange_strong(&jit_owner, &none, P)
         || atomic_load(&jit_owner) == P;
}


void jit_release (Profiler *P) {
  Profiler *mine = P;
  atomic_compare_exchange_strong(&jit_owner, &mine, NULL);
}


static void on_sample (void *data, lua_State *L, int samples, int vmstate) {
  (void)samples;  /* the time since the last callback weighs it instead */
  capture_jit_sample((Profiler *)data, L, vmstate);
}


/* LuaJIT's timer ticks in whole milliseconds (profiler_new rounds). The
** main thread starts it: the coroutine that started may be gone at stop. */
int jit_timer_start (Profiler *P) {
  char mode[24];
  snprintf(mode, sizeof mode, "i%d", (int)(P->interval * 1000 + 0.5));
  if (!jit_claim(P)) return EBUSY;
  luaJIT_profile_start(P->main, mode, on_sample, P);
  return 0;
}


/* LuaJIT flushes its compiled traces as it stops (they recompile). */
void jit_timer_stop (Profiler *P) {
  if (atomic_load(&jit_owner) != P) return;
  luaJIT_profile_stop(P->main);
  jit_release(P);
}

#endif
