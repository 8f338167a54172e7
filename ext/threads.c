/*
** threads.c — which Lua threads the timer arms.
**
** A hook belongs to one lua_State, and nothing says which coroutine runs
** now. So the timer arms the thread that started the profiler and the
** coroutines seen most recently; whichever of them runs takes the sample,
** the others fire once when they next run and disarm. Coroutines are
** found without touching the program's hot path: when an armed thread's
** hook fires at a call or return of coroutine.resume (even a copy saved
** in a local before sprof was loaded) or of a coroutine.wrap function,
** the coroutine it resumes is adopted, with the resumer noted so that its
** frames can sit under the resumer's. Hosts that call lua_resume
** themselves say so with sprof_resuming(). Adopted threads are kept alive
** by a registry table while armed, so no freed thread is ever armed.
*/
#include <sched.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "profiler.h"
#include "sprof.h"

#define OUR_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT)

/*
** A host's count hook (HAProxy's, every tune.lua.forced-yield
** instructions) must still run. lua_sethook restarts the count, and we
** call it at every sample: a count of more instructions than run between
** two samples would never be reached (HAProxy never yielded, and its
** watchdog killed it). So between samples our hook keeps such a count, in
** steps of this many instructions; a sample loses less than one step.
*/
#define CHAIN_STEP 10000


/*
** Marks the Lua thread as inside sprof (the hook, or a change to the
** armed set). The sampler thread arms nothing meanwhile, and what it was
** arming is finished first. The signal handler runs on this same thread,
** so the flag alone keeps it out.
*/
void profiler_enter (Profiler *P) {
  atomic_store(&P->in_hook, 1);
  while (atomic_load(&P->arming)) sched_yield();
}


/* The hook's way in: it does not wait for a sampler thread that may have
** been preempted in the middle of arming; it backs off instead (it stays
** armed and fires again at the next instruction). */
int profiler_try_enter (Profiler *P) {
  atomic_store(&P->in_hook, 1);
  if (!atomic_load(&P->arming)) return 1;
  atomic_store(&P->in_hook, 0);
  return 0;
}


void profiler_leave (Profiler *P) {
  atomic_store(&P->in_hook, 0);
}


/*
** Keeps the hook out from another thread (the controller's, control.c),
** as the sampler does while it arms: 'arming' counts the threads that
** hold it, so the sampler may go on ticking meanwhile. A hook that comes
** later backs off and stays armed. A hook already inside (or a thread in
** profiler_enter, which waits for 'arming' to fall) is let through: we
** back off and retry, else each would wait for the other forever. The
** wait is bounded (a Lua error thrown through the hook can leave in_hook
** set): returns 0 if the hook could not be held; nothing is then held.
*/
#define HOLD_WAIT_NS 50000000u  /* 50 ms: far more than a sample takes */

int profiler_hold (Profiler *P) {
  uint64_t start = capture_now(CLOCK_KIND_WALL);
  for (;;) {
    atomic_fetch_add(&P->arming, 1);
    if (!atomic_load(&P->in_hook)) return 1;
    atomic_fetch_sub(&P->arming, 1);
    if (capture_now(CLOCK_KIND_WALL) - start > HOLD_WAIT_NS) return 0;
    sched_yield();
  }
}


void profiler_release (Profiler *P) {
  atomic_fetch_sub(&P->arming, 1);
}


/*
** Arms one thread so its hook fires at the very next instruction, call
** or return. Called from the signal handler and the sampler thread, so it
** only reads hook fields and calls lua_sethook, as lua.c does on Ctrl-C.
** A hook that is not ours was set by the program since we last looked:
** it becomes the chained hook.
*/
void threads_arm (Armed *t) {
  lua_State *L = t->L;
  lua_Hook current = lua_gethook(L);
  if (current != capture_hook) {
    t->chained_hook = current;
    t->chained_mask = current ? lua_gethookmask(L) : 0;
    t->chained_count = lua_gethookcount(L);
    t->chained_left = t->chained_count;
  }
  lua_sethook(L, capture_hook, t->chained_mask | OUR_MASK, 1);
}


/* Puts the chained hook back (or none), if ours is the one installed. */
static void unhook (Armed *t) {
  if (lua_gethook(t->L) == capture_hook)
    lua_sethook(t->L, t->chained_hook, t->chained_mask, t->chained_count);
}


/* After a sample: the chained hook back, or ours counting its count. */
void threads_disarm (Armed *t) {
  if ((t->chained_mask & LUA_MASKCOUNT) && t->chained_count > CHAIN_STEP) {
    if (lua_gethook(t->L) == capture_hook)
      lua_sethook(t->L, capture_hook, t->chained_mask, CHAIN_STEP);
  }
  else unhook(t);
}


void capture_arm (Profiler *P) {
  int i;
  for (i = 0; i < P->nthreads; i++) threads_arm(&P->threads[i]);
}


/* The thread's own hook if it asked for this event (counting down its
** count: each count event of ours stands for the instructions of our
** count, 1 when armed), else NULL. Call it before disarming. */
lua_Hook threads_due (Armed *t, lua_Debug *ar) {
  int event_mask = ar->event == SPROF_HOOKTAILCALL ? LUA_MASKCALL
                 : ar->event == SPROF_HOOKTAILRET ? LUA_MASKRET
                 : 1 << ar->event;
  if (t->chained_hook == NULL || !(t->chained_mask & event_mask)) return NULL;
  if (ar->event == LUA_HOOKCOUNT) {
    t->chained_left -= lua_gethookcount(t->L);
    if (t->chained_left > 0) return NULL;
    t->chained_left = t->chained_count;
  }
  return t->chained_hook;
}


Armed *threads_find (Profiler *P, lua_State *L) {
  int i;
  for (i = 0; i < P->nthreads; i++)
    if (P->threads[i].L == L) return &P->threads[i];
  return NULL;
}


static void anchor (Profiler *P, lua_State *L, lua_State *co, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->anchor_ref);
  lua_pushlightuserdata(L, co);
  if (idx) lua_pushvalue(L, idx);
  else lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}


/* Forgets the latest-but-oldest coroutine to make room. */
static void evict_last (Profiler *P, lua_State *L) {
  Armed *t = &P->threads[P->nthreads - 1];
  unhook(t);
  anchor(P, L, t->L, 0);
  P->nthreads--;
}


/*
** Moves the thread at index idx of L's stack to the front of the armed
** coroutines, adopting it if new. Must run between profiler_enter and
** profiler_leave. Returns its entry (entries move: do not keep pointers
** across calls), or NULL.
*/
Armed *threads_adopt (Profiler *P, lua_State *L, int idx,
                      lua_State *resumer) {
  lua_State *co = lua_tothread(L, idx);
  Armed *t = threads_find(P, co);
  Armed saved;
  if (co == NULL || P->anchor_ref == LUA_NOREF) return NULL;
  if (t == &P->threads[0]) {
    if (resumer && resumer != co) t->resumer = resumer;
    return t;
  }
  if (t != NULL) saved = *t;
  else {
    if (!lua_checkstack(L, 4)) return NULL;
    if (P->nthreads == SPROF_MAX_THREADS + 1) evict_last(P, L);
    anchor(P, L, co, idx);
    saved.L = co;
    saved.resumer = NULL;
    if (lua_gethook(co) == capture_hook) {  /* inherited at creation */
      saved.chained_hook = P->threads[0].chained_hook;
      saved.chained_mask = P->threads[0].chained_mask;
      saved.chained_count = P->threads[0].chained_count;
    }
    else {
      saved.chained_hook = lua_gethook(co);
      saved.chained_mask = saved.chained_hook ? lua_gethookmask(co) : 0;
      saved.chained_count = lua_gethookcount(co);
    }
    saved.chained_left = saved.chained_count;
    t = &P->threads[P->nthreads++];
  }
  if (resumer && resumer != co) saved.resumer = resumer;
  memmove(&P->threads[2], &P->threads[1],
          (size_t)(t - &P->threads[1]) * sizeof *t);
  P->threads[1] = saved;
  return &P->threads[1];
}


/*
** If L's current function is coroutine.resume or a coroutine.wrap
** function, pushes the coroutine it resumes and returns it; else NULL
** and nothing is pushed.
*/
lua_State *threads_resumed_by (Profiler *P, lua_State *L) {
  lua_Debug d;
  lua_CFunction fn;
  lua_State *co = NULL;
  if (!lua_getstack(L, 0, &d) || !lua_checkstack(L, 3)) return NULL;
  lua_getinfo(L, "f", &d);
  fn = lua_tocfunction(L, -1);
  if (fn != NULL && fn == P->resume_fn) {
    if (lua_getlocal(L, &d, 1) != NULL) co = lua_tothread(L, -1);
  }
  else if (fn != NULL && fn == P->wrap_fn) {
    if (lua_getupvalue(L, -1, 1) != NULL) co = lua_tothread(L, -1);
  }
  else {
    lua_pop(L, 1);
    return NULL;
  }
  if (co == NULL || co == L) {
    lua_pop(L, 2);
    return NULL;
  }
  lua_remove(L, -2);  /* the function */
  return co;
}


/*
** The C functions behind coroutine.resume and coroutine.wrap's closures,
** to recognise them however the program reaches them. They come from a
** fresh copy of the library: the program may have replaced the globals.
*/
#ifndef SPROF_LUAJIT
static void learn_coroutine_functions (Profiler *P, lua_State *L) {
  int top = lua_gettop(L);
  P->resume_fn = P->wrap_fn = NULL;
  if (compat_opencoroutine(L)) {
    capture_learn_module(P, L, LUA_COLIBNAME);
    if (compat_getfield(L, -1, "resume") == LUA_TFUNCTION)
      P->resume_fn = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (compat_getfield(L, -1, "wrap") == LUA_TFUNCTION) {
      luaL_loadstring(L, "return");  /* a function to wrap */
      if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_iscfunction(L, -1))
        P->wrap_fn = lua_tocfunction(L, -1);
    }
  }
  lua_settop(L, top);
}
#endif


void threads_start (Profiler *P, lua_State *L) {
  Armed *t = &P->threads[0];
  memset(t, 0, sizeof *t);
  t->L = L;
  P->nthreads = 1;
#ifndef SPROF_LUAJIT  /* no hook there to recognise a resume in */
  learn_coroutine_functions(P, L);
#endif
  lua_newtable(L);
  P->anchor_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}


/* Disarms every thread and lets the coroutines go. */
void threads_stop (Profiler *P) {
  int i;
  for (i = 0; i < P->nthreads; i++) unhook(&P->threads[i]);
  if (P->anchor_ref != LUA_NOREF)
    luaL_unref(P->L, LUA_REGISTRYINDEX, P->anchor_ref);
  P->anchor_ref = LUA_NOREF;
  P->nthreads = 1;
}


/*
** For hosts that call lua_resume themselves: call this just before, from
** the thread that runs 'from' (NULL if none), so that the time the
** coroutine runs is found in it and sits under the caller's frames.
** Does nothing unless a profiler runs in this OS thread.
*/
void sprof_resuming (lua_State *co, lua_State *from) {
  Profiler *P = co ? profile_of_state(profile_gettid(), co) : NULL;
  if (P == NULL || !P->running) return;
  profiler_enter(P);
  if (lua_checkstack(co, 2)) {
    lua_pushthread(co);
    threads_adopt(P, co, -1, from);
    lua_pop(co, 1);
  }
  profiler_leave(P);
}
