/*
** close_running.c — misuse a host may commit: lua_close while a profiler
** still runs on the state, and sprof_free on a running profiler. Both
** must end cleanly (and cleanly under ASan): a clear error, no crash, and
** what was recorded can still be rendered.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include <sprof.h>

/* busy for 0.05 s of CPU: long enough to be sampled on any machine */
static const char *work =
  "local function busy ()\n"
  "  local t0, x = os.clock(), 0\n"
  "  repeat for i = 1, 1e5 do x = x + i % 7 end until os.clock() - t0 >= 0.05\n"
  "  return x\n"
  "end\n"
  "busy()\n";


int main (void) {
  lua_State *L = luaL_newstate();
  sprof_profiler *p;
  char *text;
  size_t len;
  luaL_openlibs(L);
  /* 1: lua_close while running */
  p = sprof_new(L, NULL);
  if (sprof_start(p) != 0 || luaL_dostring(L, work) != LUA_OK) return 1;
  lua_close(L);
  if (sprof_stop(p) == 0) {
    fprintf(stderr, "close_running: stop after lua_close should fail\n");
    return 1;
  }
  printf("stop: %s\n", sprof_error(p));
  if (sprof_start(p) == 0) return 1;
  text = sprof_render(p, "collapsed", &len);
  printf("busy recorded: %s\n", text && strstr(text, "busy") ? "yes" : "no");
  free(text);
  sprof_free(p);
  /* 2: sprof_free while running, then the state goes on */
  L = luaL_newstate();
  luaL_openlibs(L);
  p = sprof_new(L, NULL);
  if (sprof_start(p) != 0 || luaL_dostring(L, work) != LUA_OK) return 1;
  sprof_free(p);
  if (luaL_dostring(L, work) != LUA_OK) return 1;
  lua_close(L);
  printf("free while running: ok\n");
  return 0;
}
