/*
** compat.h — what differs between the Lua versions sprof is built for.
** The engine is compiled once per version (5.4, 5.3, 5.1), each time
** against that version's lua.h; the code is written to the 5.4 API, and
** this header supplies what an older Lua lacks or does otherwise.
** LuaJIT (SPROF_LUAJIT) has 5.1's API with some of 5.2's functions.
*/
#ifndef sprof_compat_h
#define sprof_compat_h

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#if defined(LUA_LJDIR) && !defined(SPROF_LUAJIT)  /* LuaJIT's luaconf.h */
#define SPROF_LUAJIT 1
#endif
#ifdef SPROF_LUAJIT
#include <luajit.h>
#endif

#include "luaversion.h"

/* The Lua this engine is compiled for, as luaversion_of names it. */
#ifdef SPROF_LUAJIT
#define SPROF_BUILT_FOR LUAVERSION_JIT
#else
#define SPROF_BUILT_FOR LUA_VERSION_NUM
#endif

#if LUA_VERSION_NUM >= 502
#define SPROF_HOOKTAILCALL LUA_HOOKTAILCALL
#define SPROF_HOOKTAILRET (-1)
#else
#define SPROF_HOOKTAILCALL (-1)  /* 5.1 tells a tail call as a call, */
#define SPROF_HOOKTAILRET LUA_HOOKTAILRET  /* and has returns of its own */
#endif

#ifndef LUA_OK
#define LUA_OK 0
#endif
#ifndef LUA_LOADED_TABLE
#define LUA_LOADED_TABLE "_LOADED"
#endif


/* lua_getfield, returning the type of the value (5.1's returns nothing) */
static inline int compat_getfield (lua_State *L, int idx, const char *k) {
#if LUA_VERSION_NUM >= 503
  return lua_getfield(L, idx, k);
#else
  lua_getfield(L, idx, k);
  return lua_type(L, -1);
#endif
}


/*
** Pushes a fresh copy of the coroutine library (the program may have
** replaced the globals, or not opened them yet). 5.1 opens it with the
** base library, which would reset the globals: it is opened in a scratch
** state there, and its C functions (the same in every state) copied.
*/
static inline int compat_opencoroutine (lua_State *L) {
#if LUA_VERSION_NUM >= 502
  lua_pushcfunction(L, luaopen_coroutine);
  return lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1);
#else
  static const char *const names[] = {"create", "resume", "running", "status",
                                      "wrap", "yield", NULL};
  lua_State *S = luaL_newstate();
  int i;
  if (S == NULL) return 0;
  lua_pushcfunction(S, luaopen_base);
  if (lua_pcall(S, 0, 0, 0) != 0) {
    lua_close(S);
    return 0;
  }
  lua_getglobal(S, LUA_COLIBNAME);
  lua_newtable(L);
  for (i = 0; names[i] != NULL && lua_istable(S, -1); i++) {
    lua_getfield(S, -1, names[i]);
    if (lua_iscfunction(S, -1)) {
      lua_pushcfunction(L, lua_tocfunction(S, -1));
      lua_setfield(L, -2, names[i]);
    }
    lua_pop(S, 1);
  }
  lua_close(S);
  return 1;
#endif
}


/* A userdata with room for one user value (a thread kept alive). */
static inline void *compat_newuserdata (lua_State *L, size_t size, int nuv) {
#if LUA_VERSION_NUM >= 504
  return lua_newuserdatauv(L, size, nuv);
#else
  (void)nuv;
  return lua_newuserdata(L, size);
#endif
}


/* Pops a value into the user value of the userdata at 'idx' (> 0). 5.1's
** environment must be a table: the value goes into one. */
static inline void compat_setuservalue (lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 504
  lua_setiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 502
  lua_setuservalue(L, idx);
#else
  lua_createtable(L, 1, 0);
  lua_insert(L, -2);
  lua_rawseti(L, -2, 1);
  lua_setfenv(L, idx);
#endif
}


/*
** The main thread of L's state, which stands for the state. 5.1 has no
** way to reach it from a coroutine: the main thread is noted in the
** registry whenever sprof runs in it (the module's loading, a profiler's
** start), and a coroutine of a state where that never happened stands
** for itself.
*/
#define SPROF_MAIN_KEY "sprof.mainthread"
static inline lua_State *compat_mainthread (lua_State *L) {
  lua_State *main;
#if LUA_VERSION_NUM >= 502
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
#else
  if (lua_pushthread(L)) {
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, SPROF_MAIN_KEY);
    return (lua_pop(L, 1), L);
  }
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, SPROF_MAIN_KEY);
#endif
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  return main ? main : L;
}


/* lua_resume as 5.4 calls it: the number of results in *nres. */
static inline int compat_resume (lua_State *co, lua_State *from, int nargs,
                                 int *nres) {
#if LUA_VERSION_NUM >= 504
  return lua_resume(co, from, nargs, nres);
#else
  int status;
#if LUA_VERSION_NUM >= 502
  status = lua_resume(co, from, nargs);
#else
  (void)from;
  status = lua_resume(co, nargs);
#endif
  *nres = lua_gettop(co);
  return status;
#endif
}


#if LUA_VERSION_NUM == 501
/* What 5.2 added to the API and the engine uses, for 5.1. */

#define lua_rawlen(L, i) lua_objlen(L, i)
#define lua_pushglobaltable(L) lua_pushvalue(L, LUA_GLOBALSINDEX)

static inline int lua_absindex (lua_State *L, int idx) {
  return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + 1 + idx;
}

#ifndef SPROF_LUAJIT  /* these LuaJIT has */
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs(L, l, 0))

static inline void luaL_setfuncs (lua_State *L, const luaL_Reg *l, int nup) {
  (void)nup;  /* always 0 here */
  for (; l->name != NULL; l++) {
    lua_pushcfunction(L, l->func);
    lua_setfield(L, -2, l->name);
  }
}

static inline void luaL_setmetatable (lua_State *L, const char *name) {
  luaL_getmetatable(L, name);
  lua_setmetatable(L, -2);
}

#endif

static inline int luaL_getsubtable (lua_State *L, int idx, const char *name) {
  lua_getfield(L, idx, name);
  if (lua_istable(L, -1)) return 1;
  lua_pop(L, 1);
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, idx, name);
  return 0;
}

static inline lua_Integer luaL_len (lua_State *L, int idx) {
  return (lua_Integer)lua_objlen(L, idx);
}

/* tostring(v), kept on the stack */
static inline const char *luaL_tolstring (lua_State *L, int idx, size_t *len) {
  idx = lua_absindex(L, idx);
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  return lua_tolstring(L, -1, len);
}

#ifndef SPROF_LUAJIT
/* msg and a traceback of L1 from 'level', by debug.traceback */
static inline void luaL_traceback (lua_State *L, lua_State *L1,
                                   const char *msg, int level) {
  int top = lua_gettop(L);
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "traceback");
  lua_remove(L, -2);
  if (L1 != L) {
    lua_pushthread(L1);
    lua_xmove(L1, L, 1);
  }
  lua_pushstring(L, msg ? msg : "");
  lua_pushinteger(L, L1 == L ? level + 1 : level);
  if (lua_pcall(L, lua_gettop(L) - top - 1, 1, 0) != 0
      || !lua_isstring(L, -1)) {
    lua_settop(L, top);
    lua_pushstring(L, msg ? msg : "");
  }
}
#endif
#endif


/*
** A module built for one version and required by another Lua must get as
** far as luaopen_sprof, which then says so: the functions it uses that
** another version does not have are weak, so the module loads anyway
** (and they are never called there).
*/
#if LUA_VERSION_NUM >= 502
#pragma weak luaL_checkversion_
#pragma weak luaL_setfuncs
#pragma weak luaL_setmetatable
#pragma weak luaL_tolstring
#pragma weak lua_absindex
#pragma weak lua_callk
#pragma weak lua_pcallk
#pragma weak lua_rotate
#pragma weak lua_tonumberx
#pragma weak luaopen_coroutine
#endif
#if LUA_VERSION_NUM >= 504
#pragma weak lua_newuserdatauv
#pragma weak lua_setiuservalue
#pragma weak lua_toclose
#elif LUA_VERSION_NUM >= 502
#pragma weak lua_newuserdata
#pragma weak lua_setuservalue
#else
#pragma weak lua_call
#pragma weak lua_insert
#pragma weak lua_newuserdata
#pragma weak lua_pcall
#pragma weak lua_remove
#pragma weak lua_setfenv
#pragma weak lua_tonumber
#endif
#ifdef SPROF_LUAJIT  /* what PUC Lua 5.1 does not have */
#pragma weak luaJIT_profile_start
#pragma weak luaJIT_profile_stop
#pragma weak luaL_setfuncs
#pragma weak luaL_setmetatable
#pragma weak luaL_traceback
#endif

#endif
