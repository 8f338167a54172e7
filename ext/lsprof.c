/*
** lsprof.c — the Lua module: require "sprof".
**
**   local p = sprof.new{ interval = 0.001, clock = "wall" }
**   p:start() ... p:stop()
**   p:print(); p:output_text(); p:output_html(); p:output("collapsed");
**   p:write(path, format)
**   sprof.profile(fn, ...) --> p, results of fn
*/
#define _GNU_SOURCE  /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "control.h"
#include "luaversion.h"
#include "profiler.h"
#include "sprof.h"

#define PROFILER_MT "sprof.Profiler"


static Profiler *check_profiler (lua_State *L) {
  Profiler **box = luaL_checkudata(L, 1, PROFILER_MT);
  if (*box == NULL) luaL_error(L, "sprof: profiler already freed");
  return *box;
}


/* A profiler whose session this thread may read or change: not one
** handed to the controller, whose thread takes and clears it. */
static Profiler *check_own (lua_State *L) {
  Profiler *P = check_profiler(L);
  if (P->controlled)
    luaL_error(L, "sprof: this profiler is handed to control{}: its reports "
                  "are the controller's; call stop() first");
  return P;
}


static double opt_number (lua_State *L, int t, const char *key, double def) {
  double v = def;
  if (compat_getfield(L, t, key) != LUA_TNIL) {
    if (!lua_isnumber(L, -1))
      luaL_error(L, "sprof: option '%s' must be a number, got %s", key,
                 luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}


static void check_keys (lua_State *L, int t, const char *const known[]) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int i, ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (i = 0; known[i]; i++)
        if (strcmp(lua_tostring(L, -2), known[i]) == 0) ok = 1;
    if (!ok) {
      lua_pop(L, 1);
      luaL_error(L, "sprof: unknown option '%s'", luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
  }
}


static int l_new (lua_State *L) {
  static const char *const known[] = {"interval", "clock", "native",
                                      "memory", "memory_rate", NULL};
  double interval = 0.001, memory_rate = 0;
  int native = 1, memory = 0;
  const char *clock = "wall", *error = NULL;
  Profiler **box;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, known);
    interval = opt_number(L, 1, "interval", interval);
    if (compat_getfield(L, 1, "clock") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "sprof: option 'clock' must be \"wall\" or \"cpu\"");
      clock = lua_tostring(L, -1);
    }
    if (compat_getfield(L, 1, "native") != LUA_TNIL) native = lua_toboolean(L, -1);
    memory = compat_getfield(L, 1, "memory") != LUA_TNIL && lua_toboolean(L, -1);
    memory_rate = opt_number(L, 1, "memory_rate", 0);
    if (!(memory_rate > 0) && memory_rate != 0)
      return luaL_error(L, "sprof: option 'memory_rate' must be a number of "
                           "bytes above 0 (e.g. 524288)");
  }
  box = compat_newuserdata(L, sizeof *box, 1);  /* uservalue: the thread */
  *box = NULL;
  luaL_setmetatable(L, PROFILER_MT);
  *box = profiler_new(interval, clock, native, &error);
  if (*box == NULL) return luaL_error(L, "%s", error);
  if (memory && (error = profiler_set_memory(*box, memory_rate)) != NULL)
    return luaL_error(L, "%s", error);
  return 1;
}


static int l_start (lua_State *L) {
  Profiler *P = check_profiler(L);
  const char *error = profiler_start(P, L);
  if (error) return luaL_error(L, "%s", error);
  lua_pushthread(L);            /* keep the sampled thread alive */
  compat_setuservalue(L, 1);
  lua_settop(L, 1);
  return 1;
}


static int l_stop (lua_State *L) {
  Profiler *P = check_profiler(L);
  const char *error = profiler_stop_from(P, L, 1);  /* 1: not stop itself */
  if (error) return luaL_error(L, "%s", error);
  lua_pushnil(L);
  compat_setuservalue(L, 1);
  lua_settop(L, 1);
  return 1;
}


/*
** p:control{ signal = "USR2", period = 10, keep = 60, output = "p-%n.pb.gz",
**            format = "pprof", service = "api" }
** hands the profiler to the process's controller (control.c) instead of
** start(): set up now, sampled on the signal or all the time, its reports
** written by the controller. Values as the SPROF_* variables (strings or
** numbers); signal or period is needed. stop() takes it back.
*/
static int l_control (lua_State *L) {
  static const char *const known[] = {"signal", "period", "keep", "output",
                                      "format", "service", NULL};
  Profiler *P = check_profiler(L);
  const char *v[6], *error;
  ControlSettings c;
  char why[400];
  int i;
  luaL_checktype(L, 2, LUA_TTABLE);
  check_keys(L, 2, known);
  for (i = 0; known[i]; i++) {
    v[i] = NULL;
    if (compat_getfield(L, 2, known[i]) != LUA_TNIL)
      v[i] = luaL_tolstring(L, -1, NULL);  /* kept on the stack */
  }
  if (v[0] == NULL && v[1] == NULL)
    return luaL_error(L, "sprof: control{} needs a signal or a period");
  if (P->running)
    return luaL_error(L, "sprof: control() on a running profiler; call "
                         "stop() first");
  if (P->memory.rate > 0)
    return luaL_error(L, "sprof: memory profiling does not work with a "
                         "signal or a period; use memory = false");
  if (control_parse(&c, v[0], v[1], v[2], v[3], v[4], v[5], why, sizeof why)
      || control_configure(&c, why, sizeof why))
    return luaL_error(L, "%s", why);
  atomic_store(&P->paused, 1);
  if ((error = profiler_start(P, L)) != NULL) {
    atomic_store(&P->paused, 0);
    return luaL_error(L, "%s", error);
  }
  if (control_add(P, why, sizeof why) != 0) {
    profiler_stop_from(P, NULL, 0);
    return luaL_error(L, "%s", why);
  }
  lua_pushthread(L);            /* keep the sampled thread alive */
  compat_setuservalue(L, 1);
  lua_settop(L, 1);
  return 1;
}


static int l_reset (lua_State *L) {
  profiler_reset(check_own(L));
  lua_settop(L, 1);
  return 1;
}


static int l_running (lua_State *L) {
  lua_pushboolean(L, profiler_running(check_profiler(L)));
  return 1;
}


static RenderOptions render_options (lua_State *L, int t, int color) {
  static const char *const known[] = {"show_all", "color", "threshold",
                                      "self_threshold", "show_internals",
                                      "host_frames", "memory_view", NULL};
  RenderOptions o = report_default_options();
  o.color = color;
  if (lua_isnoneornil(L, t)) return o;
  luaL_checktype(L, t, LUA_TTABLE);
  check_keys(L, t, known);
  lua_getfield(L, t, "show_all");
  o.show_all = lua_toboolean(L, -1);
  if (compat_getfield(L, t, "color") != LUA_TNIL) o.color = lua_toboolean(L, -1);
  lua_getfield(L, t, "show_internals");
  o.show_internals = lua_toboolean(L, -1);
  lua_getfield(L, t, "host_frames");
  o.show_host = lua_toboolean(L, -1);
  lua_pop(L, 4);
  o.threshold = opt_number(L, t, "threshold", o.threshold);
  if (!(o.threshold >= 0 && o.threshold < 1))
    luaL_error(L, "sprof: option 'threshold' must be a share in [0, 1)");
  o.self_threshold = opt_number(L, t, "self_threshold", o.self_threshold);
  if (!(o.self_threshold >= 0 && o.self_threshold <= 1))
    luaL_error(L, "sprof: option 'self_threshold' must be a share in [0, 1]");
  if (compat_getfield(L, t, "memory_view") != LUA_TNIL) {
    const char *name = lua_tostring(L, -1);
    o.view = name ? report_view_of(name) : -1;
    if (o.view < 0)
      luaL_error(L, "sprof: option 'memory_view' must be \"alloc\", "
                    "\"live\" or \"time\"");
  }
  lua_pop(L, 1);
  return o;
}


static int push_render (lua_State *L, Profiler *P, const char *format,
                        const RenderOptions *o) {
  const char *error = NULL;
  size_t len;
  char *text = profiler_render(P, format, o, &len, &error);
  if (text == NULL) return luaL_error(L, "%s", error);
  lua_pushlstring(L, text, len);
  free(text);
  return 1;
}


static int l_output (lua_State *L) {
  Profiler *P = check_own(L);
  const char *format = luaL_optstring(L, 2, "text");
  RenderOptions o = render_options(L, 3, 0);
  return push_render(L, P, format, &o);
}


static int l_output_text (lua_State *L) {
  Profiler *P = check_own(L);
  RenderOptions o = render_options(L, 2, 0);
  return push_render(L, P, "text", &o);
}


static int l_output_html (lua_State *L) {
  Profiler *P = check_own(L);
  RenderOptions o = render_options(L, 2, 0);
  return push_render(L, P, "html", &o);
}


static int stdout_wants_color (void) {
  const char *term = getenv("TERM");
  return isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL
         && term != NULL && strcmp(term, "dumb") != 0;
}


static int l_print (lua_State *L) {
  Profiler *P = check_own(L);
  RenderOptions o = render_options(L, 2, stdout_wants_color());
  size_t len;
  const char *text;
  push_render(L, P, "text", &o);
  text = lua_tolstring(L, -1, &len);
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  lua_settop(L, 1);
  return 1;
}


static int l_write (lua_State *L) {
  Profiler *P = check_own(L);
  const char *path = luaL_checkstring(L, 2);
  const char *format = luaL_optstring(L, 3, NULL);  /* NULL: from path */
  RenderOptions o = render_options(L, 4, 0);
  const char *error = profiler_write(P, path, format, &o);
  if (error) return luaL_error(L, "%s", error);
  lua_settop(L, 1);
  return 1;
}


/* A memory profile's totals: estimated bytes and objects allocated, and
** still allocated when it stopped. */
static void push_memory_info (lua_State *L, const Session *S) {
  double sum[4] = {0, 0, 0, 0};
  static const char *const names[4] = {
    "alloc_bytes", "alloc_objects", "live_bytes", "live_objects"
  };
  int i;
  for (i = 0; i < S->nnodes; i++) {
    sum[0] += S->nodes[i].alloc_bytes;
    sum[1] += S->nodes[i].alloc_objects;
    sum[2] += S->nodes[i].live_bytes;
    sum[3] += S->nodes[i].live_objects;
  }
  for (i = 0; i < 4; i++) {
    lua_pushinteger(L, (lua_Integer)(sum[i] + 0.5));
    lua_setfield(L, -2, names[i]);
  }
  lua_pushnumber(L, S->memory_rate);
  lua_setfield(L, -2, "memory_rate");
}


static int l_info (lua_State *L) {
  Profiler *P = check_own(L);
  const Session *S = &P->session;
  lua_createtable(L, 0, 8);
  lua_pushnumber(L, S->duration_ns / 1e9);
  lua_setfield(L, -2, "duration");
  lua_pushnumber(L, S->cpu_ns / 1e9);
  lua_setfield(L, -2, "cpu_time");
  lua_pushinteger(L, (lua_Integer)S->samples);
  lua_setfield(L, -2, "samples");
  lua_pushnumber(L, S->weight_ns / 1e9);
  lua_setfield(L, -2, "sampled_time");
  lua_pushnumber(L, S->overhead_ns / 1e9);
  lua_setfield(L, -2, "overhead");
  lua_pushnumber(L, P->interval);
  lua_setfield(L, -2, "interval");
  lua_pushstring(L, P->clock == CLOCK_KIND_CPU ? "cpu" : "wall");
  lua_setfield(L, -2, "clock");
  lua_pushinteger(L, S->nframes);
  lua_setfield(L, -2, "frames");
  lua_pushinteger(L, S->nnodes - 1);
  lua_setfield(L, -2, "nodes");
  lua_pushinteger(L, (lua_Integer)P->signals);
  lua_setfield(L, -2, "signals");
  lua_pushnumber(L, P->handler_ns / 1e9);
  lua_setfield(L, -2, "handler_time");
  lua_pushnumber(L, P->hook_ns / 1e9);
  lua_setfield(L, -2, "hook_time");
  lua_pushnumber(L, S->sampler_ns / 1e9);
  lua_setfield(L, -2, "sampler_time");
  if (S->memory_rate > 0) push_memory_info(L, S);
  return 1;
}


static int l_load (lua_State *L) {
  Profiler *P = check_own(L);
  const char *error = profiler_load(P, luaL_checkstring(L, 2));
  if (error) return luaL_error(L, "%s", error);
  lua_settop(L, 1);
  return 1;
}


/* p:set_program(name): what the report's header calls the program. */
static int l_set_program (lua_State *L) {
  profiler_set_program(check_own(L), luaL_checkstring(L, 2));
  lua_settop(L, 1);
  return 1;
}


/* __close and the end of sprof.profile: stop if still running. */
static int l_close (lua_State *L) {
  Profiler *P = check_profiler(L);
  if (P->running) profiler_stop_from(P, L, 1);
  return 0;
}


static int l_gc (lua_State *L) {
  Profiler **box = luaL_checkudata(L, 1, PROFILER_MT);
  profiler_free(*box);  /* stops it first if it still runs */
  *box = NULL;
  return 0;
}


static int l_tostring (lua_State *L) {
  Profiler *P = check_profiler(L);
  lua_pushfstring(L, "sprof.Profiler (%s, %d samples)",
                  P->running ? "running" : "stopped", (int)P->session.samples);
  return 1;
}


/*
** sprof.profile(fn, ...): runs fn under a new profiler, returns it and
** fn's results. The profiler is a to-be-closed value, so an error in fn
** stops it and goes on unchanged, with its original traceback.
*/
/* Puts a new, started profiler at slot 1, before fn and its arguments. */
static int insert_started (lua_State *L) {
  int nargs = lua_gettop(L) - 1;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushcfunction(L, l_new);
  lua_call(L, 0, 1);
  lua_pushcfunction(L, l_start);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  lua_insert(L, 1);          /* profiler, fn, args... */
  return nargs;
}

#if LUA_VERSION_NUM >= 504
static int l_profile (lua_State *L) {
  int nargs = insert_started(L);
  lua_toclose(L, 1);
  lua_call(L, nargs, LUA_MULTRET);
  return lua_gettop(L);      /* closing slot 1 on return stops it */
}
#else
/* Older Lua has no to-be-closed values: a message handler stops the
** profiler where the error happens, and the error is raised again. Its
** traceback then starts here. */
static int stop_at_error (lua_State *L) {
  Profiler **box = lua_touserdata(L, lua_upvalueindex(1));
  if (*box != NULL && (*box)->running) profiler_stop_from(*box, L, 1);
  return 1;
}

static int l_profile (lua_State *L) {
  int nargs = insert_started(L);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, stop_at_error, 1);
  lua_insert(L, 2);          /* profiler, handler, fn, args... */
  if (lua_pcall(L, nargs, LUA_MULTRET, 2) != LUA_OK) return lua_error(L);
  lua_remove(L, 2);
  lua_pushcfunction(L, l_stop);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return lua_gettop(L);
}
#endif


static const luaL_Reg profiler_methods[] = {
  {"start", l_start},
  {"stop", l_stop},
  {"control", l_control},
  {"reset", l_reset},
  {"running", l_running},
  {"print", l_print},
  {"output_text", l_output_text},
  {"output_html", l_output_html},
  {"output", l_output},
  {"write", l_write},
  {"info", l_info},
  {"load", l_load},
  {"set_program", l_set_program},
  {NULL, NULL}
};

static const luaL_Reg profiler_meta[] = {
  {"__gc", l_gc},
  {"__close", l_close},
  {"__tostring", l_tostring},
  {NULL, NULL}
};

static const luaL_Reg module_functions[] = {
  {"new", l_new},
  {"profile", l_profile},
  {NULL, NULL}
};


int luaopen_sprof (lua_State *L);

#if LUA_VERSION_NUM == 501 && !defined(SPROF_LUAJIT)
/*
** LuaJIT looks for C modules where Lua 5.1 does (lib/lua/5.1): this
** module, found there by LuaJIT, opens the LuaJIT build installed beside
** it (sprof_luajit.so), or, in the build tree, ../luajit/sprof.so.
*/
static lua_CFunction luajit_build (void) {
  static const char *const beside[] = {"sprof_luajit.so", "../luajit/sprof.so"};
  Dl_info self;
  char path[PATH_MAX];
  const char *slash;
  size_t i;
  if (!dladdr((void *)luaopen_sprof, &self) || self.dli_fname == NULL
      || (slash = strrchr(self.dli_fname, '/')) == NULL)
    return NULL;
  for (i = 0; i < sizeof beside / sizeof beside[0]; i++) {
    void *lib;
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash - self.dli_fname),
             self.dli_fname, beside[i]);
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);  /* kept: the module lives */
    if (lib != NULL) return (lua_CFunction)(uintptr_t)dlsym(lib, "luaopen_sprof");
  }
  return NULL;
}
#endif


/* This module calls the Lua it was built for: in another, it must stop
** before it calls anything (the functions that differ are weak symbols,
** so that it loads at all, see compat.h). */
static void check_host (lua_State *L) {
  int built = SPROF_BUILT_FOR;
  int host = luaversion_of((const void *)lua_gettop);
  if (host == 0 || host == built) return;
  lua_pushfstring(L, "sprof: this sprof.so is built for %s, and this "
                  "program runs %s: require the sprof built for %s",
                  luaversion_name(built), luaversion_name(host),
                  luaversion_name(host));
  lua_error(L);
}


__attribute__((visibility("default")))
int luaopen_sprof (lua_State *L) {
#if LUA_VERSION_NUM == 501 && !defined(SPROF_LUAJIT)
  if (luaversion_of((const void *)lua_gettop) == LUAVERSION_JIT) {
    lua_CFunction open = luajit_build();
    if (open == NULL) {
      lua_pushliteral(L, "sprof: this sprof.so is built for Lua 5.1, and "
                      "this program runs LuaJIT; the LuaJIT build is not "
                      "beside it: build sprof with libluajit2-5.1-dev "
                      "installed");
      lua_error(L);
    }
    return open(L);
  }
#endif
  check_host(L);
  compat_mainthread(L);  /* 5.1: noted now, if this is the main thread */
  if (luaL_newmetatable(L, PROFILER_MT)) {
    luaL_setfuncs(L, profiler_meta, 0);
    luaL_newlib(L, profiler_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, module_functions);
  lua_pushliteral(L, SPROF_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
