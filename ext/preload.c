/*
** preload.c — profiling programs that were not built for it: with
**   LD_PRELOAD=libsprof.so SPROF_OUTPUT=FILE [SPROF_FORMAT=...] program
** every Lua state the program makes with luaL_newstate (or lua_newstate)
** is profiled from its creation, and its report written when it is
** closed with lua_close, or when the program exits. Programs that link
** liblua5.4.so dynamically are reached this way (lighttpd's mod_magnet);
** lua5.4 links Lua statically, so it takes sprof.auto through LUA_INIT.
** SPROF_MEMORY=1 (or SPROF_MEMORY_RATE=BYTES) profiles memory too.
** With SPROF_SIGNAL and/or SPROF_PERIOD, the states are handed to the
** controller (control.c) instead: set up here, in their thread, sampled
** on a signal or all the time, and written together as one report per
** signal pair or period. Without SPROF_OUTPUT, SPROF_SIGNAL and
** SPROF_PERIOD these functions only pass the calls on, so a host that
** links libsprof for the C API is not affected.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "control.h"
#include "luaversion.h"
#include "profiler.h"
#include "sprof.h"

#define MAX_AUTO PROFILE_MAX

typedef struct AutoProfile {
  lua_State *L;
  sprof_profiler *P;
  int index;              /* 1 for the first state, 2 for the next... */
  int controlled;         /* its reports are the controller's */
} AutoProfile;

/* Sadly static: the interposed functions get nothing else to find their
** profiles by. Guarded by 'lock'. */
static AutoProfile autos[MAX_AUTO];
static int nautos, nmade;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside;  /* our own scratch states are not profiled */
/* SPROF_SIGNAL / SPROF_PERIOD, read at the first state: */
enum { CONTROL_UNKNOWN = -2, CONTROL_BAD = -1, CONTROL_OFF, CONTROL_ON };
static int control_mode = CONTROL_UNKNOWN;
static int atfork_set;


/*
** In a child made by fork, the profiles of the parent's states are the
** parent's: their profilers (marked foreign by timer.c) are forgotten,
** neither stopped nor written, so the child never writes the parent's
** reports. The states the child makes are profiled in the child.
*/
static void forget_after_fork (void) {
  pthread_mutex_init(&lock, NULL);  /* maybe held at the fork */
  nautos = 0;
}


static const char *format_of (const char *path) {
  const char *format = getenv("SPROF_FORMAT");
  return format && *format ? format : report_format_of(path);
}


/* FILE for the first state, FILE.2 (before the extension) for the next. */
static void output_path (char *buf, size_t size, const char *path, int index) {
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (index == 1) snprintf(buf, size, "%s", path);
  else if (dot && (!slash || dot > slash))
    snprintf(buf, size, "%.*s.%d%s", (int)(dot - path), path, index, dot);
  else snprintf(buf, size, "%s.%d", path, index);
}


static void finish (AutoProfile *a) {
  const char *out = getenv("SPROF_OUTPUT");
  char name[4096], path[4200];
  atomic_store(&naming_tid, profile_gettid());  /* our work, not the host's */
  if (a->controlled) {  /* what it sampled goes into the next report */
    sprof_free(a->P);
    a->P = NULL;
    atomic_store(&naming_tid, 0);
    return;
  }
  if (profiler_running(a->P)) sprof_stop(a->P);
  /* %p, %t, %n as for the controller's reports; without %n the second
     state's report is FILE.2 */
  control_expand(name, sizeof name, out, (unsigned)a->index, time(NULL));
  if (strstr(out, "%n") != NULL) snprintf(path, sizeof path, "%s", name);
  else output_path(path, sizeof path, name, a->index);
  if (sprof_write(a->P, path, format_of(out)) != 0)
    fprintf(stderr, "sprof: %s\n", sprof_error(a->P));
  sprof_free(a->P);
  a->P = NULL;
  atomic_store(&naming_tid, 0);
}


static void finish_all (void) {
  int i;
  pthread_mutex_lock(&lock);
  for (i = 0; i < nautos; i++)
    if (autos[i].P != NULL) finish(&autos[i]);
  nautos = 0;
  pthread_mutex_unlock(&lock);
}


/* SPROF_MEMORY=1 profiles memory too; SPROF_MEMORY_RATE=BYTES sets the
** mean gap between sampled allocations and implies it. A bad value is
** told on stderr, and then only time is profiled. */
static void memory_options (sprof_options *o) {
  const char *on = getenv("SPROF_MEMORY"), *rate = getenv("SPROF_MEMORY_RATE");
  if (on && strcmp(on, "0") == 0) return;
  if (on && *on && strcmp(on, "1") != 0) {
    fprintf(stderr, "sprof: SPROF_MEMORY must be 1 or 0, not '%s'; memory "
                    "is not profiled\n", on);
    return;
  }
  if (rate && *rate) {
    char *end;
    double bytes = strtod(rate, &end);
    if (end == rate || *end != '\0' || !(bytes > 0) || bytes > 1e12) {
      fprintf(stderr, "sprof: SPROF_MEMORY_RATE must be a number of bytes "
                      "above 0 (e.g. 524288), not '%s'; memory is not "
                      "profiled\n", rate);
      return;
    }
    o->memory_rate = bytes;
  }
  o->memory = o->memory_rate > 0 || (on && *on);
}


/* Whether the states go to the controller; read and set up once (under
** 'lock'). Bad settings are told in one line, and nothing is profiled. */
static int control_wanted (void) {
  ControlSettings settings;
  char why[400];
  if (control_mode != CONTROL_UNKNOWN) return control_mode;
  control_mode = control_from_env(&settings, why, sizeof why);
  if (control_mode == CONTROL_ON
      && control_configure(&settings, why, sizeof why) != 0)
    control_mode = CONTROL_BAD;
  if (control_mode == CONTROL_BAD)
    fprintf(stderr, "%s; the program runs unprofiled\n", why);
  if (control_mode == CONTROL_ON && (getenv("SPROF_MEMORY")
                                     || getenv("SPROF_MEMORY_RATE")))
    fprintf(stderr, "sprof: SPROF_MEMORY does not work with SPROF_SIGNAL or "
                    "SPROF_PERIOD; only time is profiled\n");
  return control_mode;
}


/* Starts profiling L: to its own report at close, or, controlled, set up
** paused and handed to the controller. 'lock' is held. */
static const char *start_state (lua_State *L, sprof_profiler *P, int control,
                                char *why, size_t whylen) {
  int failed, slot = 0;
  while (slot < nautos && autos[slot].P != NULL) slot++;  /* a closed one's */
  if (slot == MAX_AUTO) {
    snprintf(why, whylen, "sprof: too many Lua states open at once to "
             "profile (at most %d); this one runs unprofiled", MAX_AUTO);
    return why;
  }
  if (control) atomic_store(&P->paused, 1);
  inside = 1;  /* memory profiling's probe makes a scratch state */
  failed = sprof_start(P) != 0;
  inside = 0;
  if (failed) return sprof_error(P);
  if (control && control_add(P, why, whylen) != 0) {
    sprof_stop(P);
    return why;
  }
  autos[slot].L = L;
  autos[slot].P = P;
  autos[slot].index = ++nmade;
  autos[slot].controlled = control;
  if (slot == nautos) nautos++;
  return NULL;
}


static void profile_state (lua_State *L) {
  const char *out = getenv("SPROF_OUTPUT");
  const char *interval = getenv("SPROF_INTERVAL");
  const char *error;
  char why[400];
  sprof_options o;
  sprof_profiler *P;
  int control;
  if (L == NULL || inside) return;
  pthread_mutex_lock(&lock);
  control = control_wanted();
  pthread_mutex_unlock(&lock);
  if (control == CONTROL_BAD
      || (control == CONTROL_OFF && (out == NULL || *out == '\0')))
    return;
  memset(&o, 0, sizeof o);
  o.interval = interval ? atof(interval) : 0;
  o.clock = getenv("SPROF_CLOCK");
  if (control == CONTROL_OFF) memory_options(&o);
  inside = 1;  /* the native probes make a scratch state */
  P = sprof_new(L, &o);
  inside = 0;
  if (P == NULL) {
    fprintf(stderr, "sprof: %s\n", sprof_error(NULL));
    return;
  }
  pthread_mutex_lock(&lock);
  if (nautos == 0 && nmade == 0) atexit(finish_all);
  if (!atfork_set && pthread_atfork(NULL, NULL, forget_after_fork) == 0)
    atfork_set = 1;
  error = start_state(L, P, control == CONTROL_ON, why, sizeof why);
  pthread_mutex_unlock(&lock);
  if (error != NULL) {
    fprintf(stderr, "%s\n", error);
    sprof_free(P);
  }
}


/* With SPROF_SIGNAL the signal's handler is installed as the program
** starts, not with its first Lua state: a server that makes its states at
** the first request (lighttpd) would otherwise be ended by a signal sent
** before that, its default action. A daemon's fork keeps the handler; the
** controller thread starts with the first state. */
__attribute__((constructor)) static void control_early (void) {
  const char *signal = getenv("SPROF_SIGNAL");
  if (signal == NULL || *signal == '\0') return;
  pthread_mutex_lock(&lock);
  control_wanted();
  pthread_mutex_unlock(&lock);
}


static int checked, other;  /* whether the program's Lua is another */

static int wrong_lua (void) {
  return other;
}


/*
** The real function. This library calls the Lua it was built for: in a
** program that runs another, its calls would land in the wrong one, so
** it stays out of the way and says so once.
*/
static void *real (const char *name) {
  void *fn = dlsym(RTLD_NEXT, name);
  if (!checked && fn != NULL) {
    int version = luaversion_of(fn);
    checked = 1;
    other = version != 0 && version != SPROF_BUILT_FOR;
    if (other)
      fprintf(stderr, "sprof: this libsprof is built for %s, and this program "
              "runs %s: preload libsprof-preload.so, which finds the right "
              "one; the program runs unprofiled\n",
              luaversion_name(SPROF_BUILT_FOR), luaversion_name(version));
  }
  return fn;
}


/* The entry points of libsprof-preload.so (dispatch.c), which makes and
** closes the states itself and tells this library. */
SPROF_API void sprof_preload_made (lua_State *L) {
  profile_state(L);
}

SPROF_API void sprof_preload_closing (lua_State *L) {
  int i;
  if (inside) return;  /* our own scratch state, never profiled */
  pthread_mutex_lock(&lock);
  for (i = 0; i < nautos; i++)
    if (autos[i].L == L && autos[i].P != NULL) finish(&autos[i]);
  pthread_mutex_unlock(&lock);
}


/* luaL_newstate may call lua_newstate through the same interposition:
** 'inside' makes the inner call pass through. */
SPROF_API lua_State *luaL_newstate (void) {
  lua_State *(*next)(void) = (lua_State *(*)(void))real("luaL_newstate");
  lua_State *L;
  int outer = !inside;
  inside = 1;
  L = next ? next() : NULL;
  inside = !outer;
  if (outer && !wrong_lua()) profile_state(L);
  return L;
}


SPROF_API lua_State *lua_newstate (lua_Alloc f, void *ud) {
  lua_State *(*next)(lua_Alloc, void *) =
    (lua_State *(*)(lua_Alloc, void *))real("lua_newstate");
  lua_State *L;
  int outer = !inside;
  inside = 1;
  L = next ? next(f, ud) : NULL;
  inside = !outer;
  if (outer && !wrong_lua()) profile_state(L);
  return L;
}


SPROF_API void lua_close (lua_State *L) {
  void (*next)(lua_State *) = (void (*)(lua_State *))real("lua_close");
  if (!wrong_lua()) sprof_preload_closing(L);
  if (next) next(L);
}


/*
** A host that resumes coroutines itself (HAProxy runs each request in
** one) says so to the profiler, as C API hosts do with sprof_resuming:
** the coroutine's time is then found in it. Lua's own coroutine.resume
** (a call from inside the Lua library) is seen by the hook already.
*/
static void *next_resume (void) {
  static _Atomic(void *) next;  /* looked up once: resumes are frequent */
  void *fn = atomic_load(&next);
  if (fn == NULL) atomic_store(&next, fn = real("lua_resume"));
  return fn;
}


#if LUA_VERSION_NUM >= 504
SPROF_API int lua_resume (lua_State *L, lua_State *from, int nargs,
                          int *nres) {
  int (*next)(lua_State *, lua_State *, int, int *) =
    (int (*)(lua_State *, lua_State *, int, int *))next_resume();
  if (!other && !luaversion_inside(__builtin_return_address(0),
                                    (void *)next))
    sprof_resuming(L, from);
  return next(L, from, nargs, nres);
}
#elif LUA_VERSION_NUM >= 502
SPROF_API int lua_resume (lua_State *L, lua_State *from, int nargs) {
  int (*next)(lua_State *, lua_State *, int) =
    (int (*)(lua_State *, lua_State *, int))next_resume();
  if (!other && !luaversion_inside(__builtin_return_address(0),
                                    (void *)next))
    sprof_resuming(L, from);
  return next(L, from, nargs);
}
#else
SPROF_API int lua_resume (lua_State *L, int nargs) {
  int (*next)(lua_State *, int) = (int (*)(lua_State *, int))next_resume();
  if (!other && !luaversion_inside(__builtin_return_address(0),
                                    (void *)next))
    sprof_resuming(L, NULL);
  return next(L, nargs);
}
#endif
