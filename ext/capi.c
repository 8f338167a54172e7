/*
** capi.c — the public C API (sprof.h) over the engine's own functions.
*/
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "profiler.h"
#include "sprof.h"

/* Why the last sprof_new failed (no profiler to hold the message). */
static _Thread_local const char *new_error;
static _Thread_local char new_message[256];


sprof_profiler *sprof_new (lua_State *L, const sprof_options *opts) {
  double interval = opts && opts->interval != 0 ? opts->interval : 0.001;
  const char *clock = opts && opts->clock ? opts->clock : "wall";
  Profiler *P;
  if (L == NULL) {
    new_error = "sprof: sprof_new needs the lua_State to profile";
    return NULL;
  }
  P = profiler_new(interval, clock, !(opts && opts->no_native), &new_error);
  if (P == NULL) return NULL;
  P->host_L = L;
  P->show_host = !(opts && opts->no_host_frames);  /* a host wants them */
  compat_mainthread(L);  /* 5.1: noted now, if L is the main thread */
  if (opts && (opts->memory || opts->memory_rate != 0)
      && profiler_set_memory(P, opts->memory_rate) != NULL) {
    snprintf(new_message, sizeof new_message, "%s", P->error);
    new_error = new_message;
    profiler_free(P);
    return NULL;
  }
  return P;
}


static int result (const char *error) {
  return error ? -1 : 0;
}


/*
** A host may close its lua_State while a profiler still refers to it: a
** finalizer in the state's registry stops the profiler then, while the
** state is still whole, and marks it closed. sprof_free and this
** finalizer each tell the other that they have gone.
*/
static int on_state_close (lua_State *L) {
  Profiler **box = lua_touserdata(L, 1);
  Profiler *P = box ? *box : NULL;
  if (P != NULL) {
    if (P->running) profiler_stop_from(P, NULL, 0);
    P->state_closed = 1;
    P->sentinel = NULL;
    *box = NULL;
  }
  return 0;
}


static void watch_state (Profiler *P, lua_State *L) {
  Profiler **box;
  if (P->sentinel != NULL || !lua_checkstack(L, 3)) return;
  box = compat_newuserdata(L, sizeof *box, 0);
  *box = P;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, on_state_close);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  P->sentinel_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  P->sentinel = box;
}


static int closed (sprof_profiler *p) {
  if (!p->state_closed) return 0;
  snprintf(p->error, sizeof p->error, "sprof: the lua_State was closed "
           "(lua_close) while profiling; the profile ends there");
  return 1;
}


int sprof_start (sprof_profiler *p) {
  if (closed(p)) return -1;
  watch_state(p, p->host_L);
  return result(profiler_start(p, p->host_L));
}


int sprof_stop (sprof_profiler *p) {
  if (closed(p)) return -1;
  return result(profiler_stop(p));
}


static RenderOptions host_options (const sprof_profiler *p) {
  RenderOptions o = report_default_options();
  o.show_host = p->show_host;
  return o;
}


int sprof_write (sprof_profiler *p, const char *path, const char *format) {
  RenderOptions o = host_options(p);
  return result(profiler_write(p, path, format, &o));
}


char *sprof_render (sprof_profiler *p, const char *format, size_t *len) {
  RenderOptions o = host_options(p);
  const char *error;
  return profiler_render(p, format, &o, len, &error);
}


const char *sprof_error (const sprof_profiler *p) {
  if (p == NULL) return new_error;
  return p->error[0] ? p->error : NULL;
}


void sprof_free (sprof_profiler *p) {
  if (p == NULL) return;
  if (p->sentinel != NULL) {  /* the state is alive: forget us there */
    if (p->running) profiler_stop(p);
    *p->sentinel = NULL;
    luaL_unref(p->host_L, LUA_REGISTRYINDEX, p->sentinel_ref);
  }
  profiler_free(p);
}


void sprof_reset (sprof_profiler *p) {
  profiler_reset(p);
}


int sprof_load (sprof_profiler *p, const char *path) {
  return result(profiler_load(p, path));
}


void sprof_set_program (sprof_profiler *p, const char *name) {
  profiler_set_program(p, name);
}
