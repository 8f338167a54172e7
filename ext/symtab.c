/*
** symtab.c — names of native functions by address. libdw's own lookup
** (dwfl_module_addrinfo) scans the module's whole symbol table for each
** address: 0.3 ms an address in libc6-dbg's, so a stop naming 17 libc
** frames took 6 ms. Here each module's function symbols are read once,
** sorted, and found by binary search.
*/
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "symtab.h"

typedef struct Sym {
  uintptr_t start;
  uintptr_t size;       /* 0: unknown (hand-written code may not say) */
  int rank;             /* among aliases, the higher is shown */
  const char *name;     /* in libdw's copy of the string table */
} Sym;

struct ModuleSyms {
  Dwfl_Module *module;
  Sym *syms;            /* sorted by start, then best alias first */
  int n;
};


static int by_start (const void *a, const void *b) {
  const Sym *x = a, *y = b;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  if (x->rank != y->rank) return y->rank - x->rank;
  return strcmp(x->name, y->name);
}


/* Among aliases a global name reads better than a weak or local one, and
** the public name better than the internal one (malloc, not
** __libc_malloc) or an old version's (free, not cfree@GLIBC_2.2.5). */
static int rank_of (const GElf_Sym *sym, const char *name) {
  int rank = GELF_ST_BIND(sym->st_info) == STB_GLOBAL ? 8
             : GELF_ST_BIND(sym->st_info) == STB_WEAK ? 4 : 0;
  int i;
  for (i = 0; i < 3 && name[i] == '_'; i++) rank--;
  return strchr(name, '@') ? rank - 3 : rank;
}


static int read_module (ModuleSyms *ms, Dwfl_Module *m) {
  int total = dwfl_module_getsymtab(m), i;
  ms->module = m;
  ms->n = 0;
  ms->syms = total > 0 ? malloc((size_t)total * sizeof *ms->syms) : NULL;
  if (ms->syms == NULL) return total <= 0;
  for (i = 1; i < total; i++) {
    GElf_Sym sym;
    GElf_Addr value;
    GElf_Word shndx;
    const char *name = dwfl_module_getsym_info(m, i, &sym, &value, &shndx,
                                               NULL, NULL);
    if (name == NULL || name[0] == '\0' || value == 0
        || shndx == SHN_UNDEF  /* an import: its value is the PLT's */
        || (GELF_ST_TYPE(sym.st_info) != STT_FUNC
            && GELF_ST_TYPE(sym.st_info) != STT_GNU_IFUNC))
      continue;
    ms->syms[ms->n].start = (uintptr_t)value;
    ms->syms[ms->n].size = (uintptr_t)sym.st_size;
    ms->syms[ms->n].rank = rank_of(&sym, name);
    ms->syms[ms->n].name = name;
    ms->n++;
  }
  qsort(ms->syms, (size_t)ms->n, sizeof *ms->syms, by_start);
  return 1;
}


static ModuleSyms *module_syms (SymCache *C, Dwfl_Module *m) {
  ModuleSyms *mods;
  int i;
  for (i = 0; i < C->n; i++)
    if (C->mods[i].module == m) return &C->mods[i];
  mods = realloc(C->mods, (size_t)(C->n + 1) * sizeof *mods);
  if (mods == NULL) return NULL;
  C->mods = mods;
  if (!read_module(&mods[C->n], m)) return NULL;
  return &mods[C->n++];
}


/*
** The function holding addr: the sized symbol that contains it; failing
** that, the nearest one before it whose size is not known. NULL if none
** (a stripped module's static function).
*/
const char *symcache_lookup (SymCache *C, Dwfl_Module *m, uintptr_t addr) {
  ModuleSyms *ms = module_syms(C, m);
  int lo = 0, hi, i;
  if (ms == NULL) return NULL;
  hi = ms->n;
  while (lo < hi) {  /* the first symbol starting after addr */
    int mid = (lo + hi) / 2;
    if (ms->syms[mid].start <= addr) lo = mid + 1;
    else hi = mid;
  }
  /* symbols may nest (a function inside another's range): look back a
     little for one that contains addr */
  for (i = lo - 1; i >= 0 && i >= lo - 16; i--) {
    const Sym *s = &ms->syms[i];
    if (s->size > 0 && addr < s->start + s->size) {
      while (i > 0 && ms->syms[i - 1].start == s->start
             && ms->syms[i - 1].size > 0)
        s = &ms->syms[--i];  /* the best-ranked alias comes first */
      return s->name;
    }
  }
  return lo > 0 && ms->syms[lo - 1].size == 0 ? ms->syms[lo - 1].name : NULL;
}


void symcache_clear (SymCache *C) {
  int i;
  for (i = 0; i < C->n; i++) free(C->mods[i].syms);
  free(C->mods);
  C->mods = NULL;
  C->n = 0;
}
