/*
** preload.c — profiling programs that were not built for it: with
**   LD_PRELOAD=libsprof.so SPROF_OUTPUT=FILE [SPROF_FORMAT=...] program
** every Lua state the program makes with luaL_newstate (or lua_newstate)
** is profiled from its creation, and its report written when it is
** closed with lua_close, or when the program exits. Programs that link
** liblua5.4.so dynamically are reached this way (lighttpd's mod_magnet);
** lua5.4 links Lua statically, so it takes sprof.auto through LUA_INIT.
** SPROF_MEMORY=1 (or SPROF_MEMORY_RATE=BYTES) profiles memory too.
** Without SPROF_OUTPUT these functions only pass the calls on, so a host
** that links libsprof for the C API is not affected.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "profiler.h"
#include "sprof.h"

#define MAX_AUTO 64

typedef struct AutoProfile {
  lua_State *L;
  sprof_profiler *P;
  int index;              /* 1 for the first state, 2 for the next... */
} AutoProfile;

/* Sadly static: the interposed functions get nothing else to find their
** profiles by. Guarded by 'lock'. */
static AutoProfile autos[MAX_AUTO];
static int nautos, nmade;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside;  /* our own scratch states are not profiled */


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
  char path[4096];
  atomic_store(&naming_tid, profile_gettid());  /* our work, not the host's */
  if (profiler_running(a->P)) sprof_stop(a->P);
  output_path(path, sizeof path, out, a->index);
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


static void profile_state (lua_State *L) {
  const char *out = getenv("SPROF_OUTPUT");
  const char *interval = getenv("SPROF_INTERVAL");
  sprof_options o;
  sprof_profiler *P;
  if (L == NULL || out == NULL || *out == '\0' || inside) return;
  memset(&o, 0, sizeof o);
  o.interval = interval ? atof(interval) : 0;
  o.clock = getenv("SPROF_CLOCK");
  memory_options(&o);
  inside = 1;  /* the native probes make a scratch state */
  P = sprof_new(L, &o);
  inside = 0;
  if (P == NULL) {
    fprintf(stderr, "sprof: %s\n", sprof_error(NULL));
    return;
  }
  pthread_mutex_lock(&lock);
  if (nautos == 0 && nmade == 0) atexit(finish_all);
  if (nautos < MAX_AUTO && sprof_start(P) == 0) {
    autos[nautos].L = L;
    autos[nautos].P = P;
    autos[nautos].index = ++nmade;
    nautos++;
    P = NULL;
  }
  pthread_mutex_unlock(&lock);
  if (P != NULL) {
    fprintf(stderr, "sprof: %s\n", sprof_error(P));
    sprof_free(P);
  }
}


static void *real (const char *name) {
  return dlsym(RTLD_NEXT, name);
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
  if (outer) profile_state(L);
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
  if (outer) profile_state(L);
  return L;
}


SPROF_API void lua_close (lua_State *L) {
  void (*next)(lua_State *) = (void (*)(lua_State *))real("lua_close");
  int i;
  pthread_mutex_lock(&lock);
  for (i = 0; i < nautos; i++)
    if (autos[i].L == L && autos[i].P != NULL) finish(&autos[i]);
  pthread_mutex_unlock(&lock);
  if (next) next(L);
}
