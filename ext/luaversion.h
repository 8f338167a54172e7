/*
** luaversion.h — which Lua a process runs, found from its symbols.
*/
#ifndef sprof_luaversion_h
#define sprof_luaversion_h

#define LUAVERSION_JIT 1000  /* LuaJIT (its API is 5.1's) */

int luaversion_of (const void *lua_function);
const char *luaversion_name (int version);
int luaversion_inside (const void *caller, const void *fn);

#endif
