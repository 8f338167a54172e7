/*
** crunch.c — a real C module for the native-frame tests: its exported
** functions spend their time in static functions a few frames down, call
** back into Lua, recurse deeply, and run code from an anonymous mapping.
** Built twice: as "crunch" and, stripped, as "crunch_stripped".
*/
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "compat.h"  /* luaL_newlib on 5.1 */

#ifndef MODULE_OPEN
#define MODULE_OPEN luaopen_crunch
#endif

static double now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


__attribute__((noinline)) static unsigned long kernel_inner (double until) {
  volatile unsigned long x = 0;
  while (now() < until) {
    int i;
    for (i = 0; i < 20000; i++) x += (unsigned long)i * 2654435761u;
  }
  return x;
}


__attribute__((noinline)) static unsigned long kernel_middle (double secs) {
  unsigned long x = kernel_inner(now() + secs);
  return x + 1;  /* not a tail call */
}


/* crunch(seconds): busy for that long, two static frames down. */
static int crunch (lua_State *L) {
  unsigned long x = kernel_middle(luaL_checknumber(L, 1));
  lua_pushinteger(L, (lua_Integer)(x & 0xffff));
  return 1;
}


__attribute__((noinline)) static void visit_all (lua_State *L, int n) {
  int i;
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, 2);
    lua_pushinteger(L, i);
    lua_call(L, 1, 0);
  }
}


/* each(n, fn): calls fn(i) for i = 1..n from C. */
static int each (lua_State *L) {
  int n = (int)luaL_checkinteger(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  visit_all(L, n);
  return 0;
}


__attribute__((noinline)) static unsigned long recurse (int depth, double until) {
  if (depth == 0) return kernel_inner(until);
  return recurse(depth - 1, until) + 1;
}


/* deep(depth, seconds): busy at the bottom of a native recursion. */
static int deep (lua_State *L) {
  int depth = (int)luaL_checkinteger(L, 1);
  lua_pushinteger(L, (lua_Integer)(recurse(depth, now() + luaL_checknumber(L, 2)) & 0xff));
  return 1;
}


/* jit(seconds): runs a spin loop copied into an anonymous executable
** mapping, as a JIT would: no symbol, no unwind table. */
static int jit (lua_State *L) {
  /* x86-64: mov rcx, imm64; loop: dec rcx; jnz loop; ret */
  static const unsigned char code[] = {
    0x48, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, 0x48, 0xff, 0xc9, 0x75, 0xfb, 0xc3
  };
  double until = now() + luaL_checknumber(L, 1);
  unsigned long long loops = 20000000ull;
  unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return luaL_error(L, "mmap failed");
  memcpy(page, code, sizeof code);
  memcpy(page + 2, &loops, sizeof loops);
  while (now() < until) ((void (*)(void))page)();
  munmap(page, 4096);
  return 0;
}


static const luaL_Reg functions[] = {
  {"crunch", crunch},
  {"each", each},
  {"deep", deep},
  {"jit", jit},
  {NULL, NULL}
};


int MODULE_OPEN (lua_State *L) {
  luaL_newlib(L, functions);
  return 1;
}
