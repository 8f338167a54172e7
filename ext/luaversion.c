/*
** luaversion.c — the Lua version of the library (or program) that
** defines a given lua_* function, told by the functions only that version
** has. No Lua header is used: the preload dispatcher links no Lua, and a
** module asks this about its host before it calls anything version-bound.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

#include "luaversion.h"


/* Whether the object at 'base' (opened as 'lib') defines 'name' itself:
** a handle's lookup also searches the object's dependencies. */
static int defines (void *lib, const void *base, const char *name) {
  Dl_info info;
  void *p = dlsym(lib, name);
  return p != NULL && dladdr(p, &info) && info.dli_fbase == base;
}


/* 504, 503, 502, 501, LUAVERSION_JIT, or 0 when not known. */
int luaversion_of (const void *lua_function) {
  Dl_info info;
  void *lib;
  int version = 0;
  if (lua_function == NULL || !dladdr(lua_function, &info)) return 0;
  lib = info.dli_fname ? dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)
                       : NULL;
  if (lib == NULL) lib = dlopen(NULL, RTLD_LAZY);  /* the program itself */
  if (lib == NULL) return 0;
  if (defines(lib, info.dli_fbase, "luaJIT_setmode")) version = LUAVERSION_JIT;
  else if (defines(lib, info.dli_fbase, "lua_newuserdatauv")) version = 504;
  else if (defines(lib, info.dli_fbase, "lua_rotate")) version = 503;
  else if (defines(lib, info.dli_fbase, "lua_callk")) version = 502;
  else if (defines(lib, info.dli_fbase, "lua_objlen")) version = 501;
  dlclose(lib);
  return version;
}


/* "Lua 5.3" for 503 */
const char *luaversion_name (int version) {
  switch (version) {
    case 504: return "Lua 5.4";
    case 503: return "Lua 5.3";
    case 502: return "Lua 5.2";
    case 501: return "Lua 5.1";
    case LUAVERSION_JIT: return "LuaJIT";
    default: return "an unknown Lua";
  }
}
