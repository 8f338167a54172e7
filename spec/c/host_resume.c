/*
** host_resume.c — a C host that resumes a coroutine with lua_resume
** itself, as servers and game engines do, telling sprof with
** sprof_resuming(). Resumes it until its hot function has measured
** ENOUGH seconds of CPU, however fast the machine; prints the profile as
** collapsed stacks on stdout and, on stderr, those seconds.
**   host_resume [--no-hint]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "compat.h"

#include "sprof.h"

#define ENOUGH 0.3

static const char *program =
  "local function hot (n)\n"
  "  local t0, x = os.clock(), 0\n"
  "  for i = 1, n do x = x + i % 7 end\n"
  "  hot_seconds = hot_seconds + os.clock() - t0\n"
  "  return x\n"
  "end\n"
  "hot_seconds = 0\n"
  "return function ()\n"
  "  while true do hot(200000) coroutine.yield() end\n"
  "end\n";


static double hot_seconds (lua_State *L) {
  double secs;
  lua_getglobal(L, "hot_seconds");
  secs = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return secs;
}


int main (int argc, char **argv) {
  int hint = !(argc > 1 && strcmp(argv[1], "--no-hint") == 0);
  lua_State *L = luaL_newstate(), *co;
  sprof_profiler *P;
  char *text;
  size_t len;
  int nres;
  luaL_openlibs(L);
  if (luaL_loadstring(L, program) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "host_resume: %s\n", lua_tostring(L, -1));
    return 1;
  }
  co = lua_newthread(L);
  lua_pushvalue(L, -2);
  lua_xmove(L, co, 1);  /* the coroutine's function */
  P = sprof_new(L, NULL);
  if (P == NULL || sprof_start(P) != 0) {
    fprintf(stderr, "host_resume: %s\n", sprof_error(P));
    return 1;
  }
  while (hot_seconds(L) < ENOUGH) {
    if (hint) sprof_resuming(co, L);
    if (compat_resume(co, L, 0, &nres) != LUA_YIELD) {
      fprintf(stderr, "host_resume: %s\n", lua_tostring(co, -1));
      return 1;
    }
    lua_pop(co, nres);
  }
  sprof_stop(P);
  text = sprof_render(P, "collapsed", &len);
  fwrite(text, 1, len, stdout);
  free(text);
  fprintf(stderr, "%.6f\n", hot_seconds(L));
  sprof_free(P);
  lua_close(L);
  return 0;
}
