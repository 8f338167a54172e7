/*
** host.c — a small program that embeds Lua, as a game or a server does,
** and profiles itself with libsprof. Its own C functions show above the
** Lua functions they run, and the C function it gives to Lua shows its
** native callees below.
**   host [seconds] [report-file]   (default: 1 s, the text report on stdout)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include <sprof.h>

static const char *game =
  "local entities = {}\n"
  "local function think (e) local x = 0 for i = 1, 300 do x = x + (i * e) % 7 end return x end\n"
  "function update (frame)\n"
  "  if frame % 10 == 0 then entities[#entities % 50 + 1] = spawn(frame) end\n"
  "  local sum = 0\n"
  "  for _, e in ipairs(entities) do sum = sum + think(e) end\n"
  "  return sum\n"
  "end\n";


static double now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


/* Native work done for Lua: a C function's callee. */
__attribute__((noinline)) static double physics_step (int n) {
  volatile double v = 0;
  int i;
  for (i = 0; i < n; i++) v += (double)(i % 13) * 0.5;
  return v;
}


static int spawn (lua_State *L) {
  int frame = (int)luaL_checkinteger(L, 1);
  lua_pushinteger(L, (lua_Integer)physics_step(200000) % 97 + frame % 5);
  return 1;
}


__attribute__((noinline)) static void tick (lua_State *L, int frame) {
  lua_getglobal(L, "update");
  lua_pushinteger(L, frame);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    exit(1);
  }
  lua_pop(L, 1);
}


__attribute__((noinline)) static void game_loop (lua_State *L, double secs) {
  double end = now() + secs;
  int frame = 0;
  while (now() < end) tick(L, ++frame);
}


int main (int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  const char *out = argc > 2 ? argv[2] : NULL;
  lua_State *L = luaL_newstate();
  sprof_profiler *p;
  luaL_openlibs(L);
  lua_register(L, "spawn", spawn);
  if (luaL_dostring(L, game) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }
  p = sprof_new(L, NULL);
  if (p == NULL || sprof_start(p) != 0) {
    fprintf(stderr, "host: %s\n", sprof_error(p));
    return 1;
  }
  game_loop(L, secs);
  sprof_stop(p);
  if (out != NULL) {
    const char *dot = strrchr(out, '.');
    const char *format = dot && strcmp(dot, ".html") == 0 ? "html"
                       : dot && strcmp(dot, ".collapsed") == 0 ? "collapsed"
                       : dot && strcmp(dot, ".json") == 0 ? "json" : "text";
    if (sprof_write(p, out, format) != 0) {
      fprintf(stderr, "host: %s\n", sprof_error(p));
      return 1;
    }
  }
  else {
    size_t len;
    char *text = sprof_render(p, "text", &len);
    fwrite(text, 1, len, stdout);
    free(text);
  }
  sprof_free(p);
  lua_close(L);
  return 0;
}
