/*
** luaversion.c — the Lua version of the library (or program) that
** defines a given lua_* function, told by the functions only that version
** has. No Lua header is used: the preload dispatcher links no Lua, and a
** module asks this about its host before it calls anything version-bound.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

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


typedef struct Span { uintptr_t base, lo, hi; } Span;

static int span_of (struct dl_phdr_info *info, size_t size, void *data) {
  Span *span = data;
  int i;
  (void)size;
  if (info->dlpi_addr != span->base) return 0;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type != PT_LOAD) continue;
    if (span->lo == 0 || start < span->lo) span->lo = start;
    if (start + ph->p_memsz > span->hi) span->hi = start + ph->p_memsz;
  }
  return 1;
}


/* The addresses [*lo, *hi) of the object that holds 'fn': a call from
** inside it (Lua's own) is then told from one from the host by a
** comparison, where dladdr would cost a lock and a search per call. */
static int span (const void *fn, uintptr_t *lo, uintptr_t *hi) {
  Dl_info info;
  Span span = {0, 0, 0};
  if (fn == NULL || !dladdr(fn, &info)) return 0;
  span.base = (uintptr_t)info.dli_fbase;
  dl_iterate_phdr(span_of, &span);
  if (span.hi == 0 && span.base != 0) {  /* the program: its base is 0 */
    span.base = 0;
    dl_iterate_phdr(span_of, &span);
  }
  *lo = span.lo;
  *hi = span.hi;
  return span.hi > span.lo && (uintptr_t)fn >= span.lo && (uintptr_t)fn < span.hi;
}


/* Whether 'caller' lies in the object that holds 'fn'. The span of the
** last object asked about is kept: lua_resume asks at every resume. (Two
** Lua libraries resumed at once in two threads could pair one's function
** with the other's span for a call: an answer wrong for that call.) */
int luaversion_inside (const void *caller, const void *fn) {
  static _Atomic(const void *) cached_fn;
  static _Atomic uintptr_t cached_lo, cached_hi;
  uintptr_t lo, hi;
  if (atomic_load_explicit(&cached_fn, memory_order_acquire) == fn) {
    lo = atomic_load_explicit(&cached_lo, memory_order_relaxed);
    hi = atomic_load_explicit(&cached_hi, memory_order_relaxed);
  }
  else {
    if (!span(fn, &lo, &hi)) return 0;
    atomic_store_explicit(&cached_lo, lo, memory_order_relaxed);
    atomic_store_explicit(&cached_hi, hi, memory_order_relaxed);
    atomic_store_explicit(&cached_fn, fn, memory_order_release);
  }
  return (uintptr_t)caller >= lo && (uintptr_t)caller < hi;
}
