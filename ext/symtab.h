/*
** symtab.h — the function symbols of a module, sorted by address.
*/
#ifndef sprof_symtab_h
#define sprof_symtab_h

#include <stdint.h>

#include <elfutils/libdwfl.h>

typedef struct ModuleSyms ModuleSyms;

/* The modules of one Dwfl whose symbols were asked for. */
typedef struct SymCache {
  ModuleSyms *mods;
  int n;
} SymCache;

const char *symcache_lookup (SymCache *C, Dwfl_Module *m, uintptr_t addr);
void symcache_clear (SymCache *C);

#endif
