/*
** plain_host.c — a host that knows nothing of sprof and links
** liblua5.4.so, as lighttpd's mod_magnet does: LD_PRELOAD=libsprof.so
** with SPROF_OUTPUT profiles it. Runs the Lua file given, in two states
** one after the other (the second closed, the first left to exit).
*/
#include <stdio.h>

#include <lauxlib.h>
#include <lualib.h>

#include "compat.h"  /* LUA_OK on 5.1 */


int main (int argc, char **argv) {
  lua_State *first, *second;
  if (argc < 2) return 2;
  first = luaL_newstate();
  luaL_openlibs(first);
  if (luaL_dofile(first, argv[1]) != LUA_OK) {
    fprintf(stderr, "plain_host: %s\n", lua_tostring(first, -1));
    return 1;
  }
  second = luaL_newstate();
  luaL_openlibs(second);
  if (luaL_dofile(second, argv[1]) != LUA_OK) return 1;
  lua_close(second);
  return 0;  /* 'first' is never closed: its report comes at exit */
}
