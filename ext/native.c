/*
** native.c — native frames. The signal handler unwinds the interrupted
** stack with libunwind into a preallocated ring (no malloc, no locks);
** the hook drains the ring, names each address outside the handler
** (libdw, cached) and merges the native stack with the Lua stack:
**
** - a Lua C-function frame anchors the native frame whose function starts
**   at that lua_CFunction; native frames inner to an anchor are its
**   callees (crunch -> kernel_middle -> kernel_inner);
** - each run of Lua frames between C frames is one luaV_execute in the
**   native stack (in 5.4 a Lua-to-Lua call reuses it); native frames inner
**   to it were called by the VM for that Lua frame (the collector);
** - what is outer to everything is the host's path to the first VM entry.
**
** Debian's Lua is stripped: luaV_execute, luaC_step and friends have no
** names. So their addresses are learnt at start by probing a scratch Lua
** state: a C function called directly and through a Lua function (the
** frame that differs is luaV_execute), a finalizer run by lua_gc (the
** frame lua_gc called is luaC_step or luaC_fullgc).
*/
#define UNW_LOCAL_ONLY
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "native.h"
#include "profiler.h"
#include "symtab.h"

#define UNNAMED_NATIVE "(native)"


/* --------------------------------------------- capture (signal handler) */

/* Frames of ours (this handler and the signal trampoline) that a trace
** started here has before the interrupted one. */
#define HANDLER_FRAMES 16

/* The step-by-step unwinder, from the signal's context. */
static int unwind_steps (void *ucontext, uintptr_t *ip, int *truncated) {
  unw_cursor_t cursor;
  int n = 0;
  if (unw_init_local2(&cursor, (unw_context_t *)ucontext,
                      UNW_INIT_SIGNAL_FRAME) < 0)
    return 0;
  do {
    unw_word_t pc;
    if (unw_get_reg(&cursor, UNW_REG_IP, &pc) < 0 || pc == 0) break;
    ip[n++] = (uintptr_t)pc;
  } while (n < SPROF_NATIVE_DEPTH && unw_step(&cursor) > 0);
  *truncated = n == SPROF_NATIVE_DEPTH && unw_step(&cursor) > 0;
  return n;
}


/* Whether pc is in the code of an object with unwind tables. */
static int in_known_code (NativeRing *R, uintptr_t pc) {
  int i, n = atomic_load(&R->ncode);
  for (i = 0; i < n; i++)
    if (pc >= R->code[2 * i] && pc < R->code[2 * i + 1]) return 1;
  return 0;
}


/*
** libunwind's fast trace (what unw_backtrace runs) keeps a per-thread
** cache of how each address unwinds: once warm, a capture is a few loads
** per frame. The step-by-step unwinder locks its cache around each step
** with two sigprocmask calls, about 40 system calls a capture. The trace
** starts here, so the frames up to the interrupted instruction are ours
** and are dropped; it records return addresses less one (the fallback it
** takes inside unw_backtrace, the addresses themselves): naming looks a
** byte back from either and finds the same function.
** The step-by-step unwinder runs instead from the signal's context when
** the interrupted code has no unwind table (a JIT's page: the fast
** trace guesses by frame pointer there and, when frame pointers are
** kept, skips the caller), or when the trace does not reach the
** interrupted instruction.
*/
static int unwind (NativeRing *R, void *ucontext, uintptr_t *ip,
                   int *truncated) {
#if defined(__x86_64__)
  void *trace[SPROF_NATIVE_DEPTH + HANDLER_FRAMES + 1];
  uintptr_t pc = (uintptr_t)((ucontext_t *)ucontext)->uc_mcontext.gregs[REG_RIP];
  int total, i, from = -1, n;
  if (!in_known_code(R, pc)) {
    atomic_store(&R->code_stale, 1);
    return R->stop_outside ? 0 : unwind_steps(ucontext, ip, truncated);
  }
  total = unw_backtrace(trace, (int)(sizeof trace / sizeof trace[0]));
  for (i = 0; i < total && i <= HANDLER_FRAMES; i++)
    if ((uintptr_t)trace[i] == pc) {
      from = i;
      break;
    }
  if (from < 0) return unwind_steps(ucontext, ip, truncated);
  n = total - from;
  *truncated = n > SPROF_NATIVE_DEPTH;
  if (n > SPROF_NATIVE_DEPTH) n = SPROF_NATIVE_DEPTH;
  for (i = 0; i < n; i++) ip[i] = (uintptr_t)trace[from + i];
  return n;
#else  /* the interrupted instruction's register is named otherwise */
  (void)R;
  return unwind_steps(ucontext, ip, truncated);
#endif
}


static int count_objects (struct dl_phdr_info *info, size_t size, void *ud) {
  (void)size;
  *(unsigned long long *)ud = info->dlpi_adds + info->dlpi_subs;
  return 1;  /* the counters are the same in every object's entry */
}


static int add_code (struct dl_phdr_info *info, size_t size, void *ud) {
  NativeRing *R = ud;
  int i, n = atomic_load(&R->ncode), unwinds = 0;
  (void)size;
  for (i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME) unwinds = 1;
  for (i = 0; unwinds && i < info->dlpi_phnum && n < SPROF_CODE_RANGES; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      R->code[2 * n] = (uintptr_t)(info->dlpi_addr + ph->p_vaddr);
      R->code[2 * n + 1] = R->code[2 * n] + ph->p_memsz;
      n++;
    }
  }
  atomic_store(&R->ncode, n);
  return 0;
}


/*
** Rewrites the ranges of known code if objects were loaded or unloaded
** since (a module required after start). Outside the handler: at start,
** before the handler is installed, and in the hook, when the handler
** takes no captures; were it to run meanwhile, it would see fewer ranges
** and take the slow, always right, path.
*/
void native_refresh_code (NativeRing *R) {
  unsigned long long version = 0;
  atomic_store(&R->code_stale, 0);
  dl_iterate_phdr(count_objects, &version);
  if (version == R->code_version && atomic_load(&R->ncode) > 0) return;
  R->code_version = version;
  atomic_store(&R->ncode, 0);
  dl_iterate_phdr(add_code, R);
}


/*
** The fast trace makes its per-thread cache on first use, with
** pthread_once and pthread_setspecific: that first use must not be in a
** signal handler. Called on the profiled thread as it starts.
*/
void native_prepare_thread (NativeRing *R) {
  void *trace[4];
  unw_backtrace(trace, 4);
  native_refresh_code(R);
}


/*
** Async-signal-safe: reads only memory and unwind tables, writes into
** the preallocated ring. A full ring drops the capture; its time is not
** lost, the next sample's weight covers it.
*/
void native_capture (NativeRing *R, void *ucontext, uint64_t t_ns,
                     int in_lua) {
  unsigned head, tail;
  NativeCapture *c;
  if (R == NULL) return;
  head = atomic_load(&R->head);
  tail = atomic_load(&R->tail);
  if (head - tail >= SPROF_NATIVE_SLOTS) return;
  c = &R->slot[head % SPROF_NATIVE_SLOTS];
  c->n = unwind(R, ucontext, c->ip, &c->truncated);
  if (c->n == 0) return;
  c->t_ns = t_ns;
  c->in_lua = in_lua;
  atomic_store(&R->head, head + 1);
}


/* ------------------------------------------------------------- naming */

/* A native function seen in a capture. */
typedef struct NativeSym {
  uintptr_t start;      /* where it starts */
  uintptr_t end;        /* where it ends (exclusive) */
  int frame;            /* its frame in the session, -1 if none yet */
} NativeSym;

struct NativeNames {
  Dwfl *dwfl;           /* libdw's view of this process's modules */
  Dwfl *dwfl_plain;     /* the same without separate debug files */
  SymCache symbols[2];  /* their modules' symbols: [0] dwfl, [1] plain */
  NativeSym *syms;      /* sorted by start: found by binary search, since */
  int nsyms, cap;       /* the interrupted address is new almost each time */
  uintptr_t core_base;  /* load address of the object holding Lua's core */
  uintptr_t vm_execute; /* luaV_execute, as learnt by the probe */
  uintptr_t gc_entry[2];/* luaC_step and luaC_fullgc */
  uintptr_t load_fn;    /* lua_load: what runs inside it is the parser */
  uintptr_t own_hook;   /* our hook: what runs inside it is the profiler */
};


/*
** Separate debug files are looked for by build id (/usr/lib/debug, where
** Debian's -dbgsym packages put them), not with libdw's standard search:
** that one first loads the debuginfod client and its libraries (curl...),
** which alone took tens of milliseconds per stop here.
*/
static int find_debuginfo (Dwfl_Module *m, void **userdata, const char *name,
                           Dwarf_Addr base, const char *file,
                           const char *debuglink, GElf_Word crc,
                           char **debuginfo_file) {
  return dwfl_build_id_find_debuginfo(m, userdata, name, base, file,
                                      debuglink, crc, debuginfo_file);
}


static int no_debuginfo (Dwfl_Module *m, void **userdata, const char *name,
                         Dwarf_Addr base, const char *file,
                         const char *debuglink, GElf_Word crc,
                         char **debuginfo_file) {
  (void)m; (void)userdata; (void)name; (void)base; (void)file;
  (void)debuglink; (void)crc; (void)debuginfo_file;
  return -1;
}


/* 'plain': symbols of the objects themselves only. A separate debug file
** (libc6-dbg's is 4 MB of compressed sections) costs tens of milliseconds
** to load: worth it for frames people read, not for hidden ones. */
static Dwfl *dwfl_open_self (int plain) {
  static char *debuginfo_path = NULL;
  static const Dwfl_Callbacks callbacks[2] = {
    { .find_elf = dwfl_linux_proc_find_elf,
      .find_debuginfo = find_debuginfo,
      .debuginfo_path = &debuginfo_path },
    { .find_elf = dwfl_linux_proc_find_elf,
      .find_debuginfo = no_debuginfo,
      .debuginfo_path = &debuginfo_path },
  };
  Dwfl *dwfl = dwfl_begin(&callbacks[plain != 0]);
  if (dwfl == NULL) return NULL;
  if (dwfl_linux_proc_report(dwfl, getpid()) != 0
      || dwfl_report_end(dwfl, NULL, NULL) != 0) {
    dwfl_end(dwfl);
    return NULL;
  }
  return dwfl;
}


/* The module of an address; libdw's map of the process is made again
** (once per naming pass) when an address is in none: a module loaded
** since, by require. */
static Dwfl_Module *module_of (NativeNames *N, uintptr_t ip, int plain,
                               int *fresh) {
  Dwfl **dwfl = plain ? &N->dwfl_plain : &N->dwfl;
  Dwfl_Module *m = *dwfl ? dwfl_addrmodule(*dwfl, ip) : NULL;
  if (m == NULL && !fresh[plain]) {
    fresh[plain] = 1;
    symcache_clear(&N->symbols[plain != 0]);
    if (*dwfl) dwfl_end(*dwfl);
    *dwfl = dwfl_open_self(plain);
    m = *dwfl ? dwfl_addrmodule(*dwfl, ip) : NULL;
  }
  return m;
}


/* The function holding an address, from the unwind tables (present even
** in stripped objects); code without them (a JIT's) gets its page. */
static void function_range (uintptr_t lookup, uintptr_t *start,
                            uintptr_t *end) {
  unw_proc_info_t pi;
  if (unw_get_proc_info_by_ip(unw_local_addr_space, lookup, &pi, NULL) == 0
      && pi.start_ip != 0 && pi.end_ip > lookup) {
    *start = (uintptr_t)pi.start_ip;
    *end = (uintptr_t)pi.end_ip;
  }
  else {
    *start = lookup & ~(uintptr_t)0xfff;
    *end = *start + 0x1000;
  }
}


static uintptr_t function_start (uintptr_t lookup) {
  uintptr_t start, end;
  function_range(lookup, &start, &end);
  return start;
}


static const char *base_name (const char *path) {
  const char *slash = path ? strrchr(path, '/') : NULL;
  return slash ? slash + 1 : path ? path : "?";
}


/* Whether an address is in the object that holds Lua's core. */
static int in_core (NativeNames *N, uintptr_t addr) {
  Dl_info info;
  return N->core_base != 0 && dladdr((void *)addr, &info)
         && (uintptr_t)info.dli_fbase == N->core_base;
}


/*
** Interns the frame of a function. Its name waits for native_name_frames
** (at stop): reading symbol tables and DWARF costs milliseconds per
** module, which the program must not pay while it is being sampled.
*/
static int make_frame (NativeNames *N, Session *S, uintptr_t start) {
  int f = session_frame(S, FRAME_NATIVE, UNNAMED_NATIVE, "", 0,
                        (const void *)start);
  if (f >= 0) S->frames[f].internal = in_core(N, start);
  return f;
}


/*
** Whether a module carries its own line tables (built with -g). Lines
** from a separate debug file are not read: libc6-dbg's took 57 ms per
** stop here (libdw inflates its whole .debug_info), for source paths of
** the distribution's build tree that users cannot open; its symbol table
** still names the functions.
*/
static int has_lines (Dwfl_Module *m) {
  GElf_Addr bias;
  Elf *elf = dwfl_module_getelf(m, &bias);
  Elf_Scn *scn = NULL;
  size_t strndx;
  if (elf == NULL || elf_getshdrstrndx(elf, &strndx) != 0) return 0;
  while ((scn = elf_nextscn(elf, scn)) != NULL) {
    GElf_Shdr shdr;
    const char *name;
    if (gelf_getshdr(scn, &shdr) == NULL) continue;
    name = elf_strptr(elf, strndx, shdr.sh_name);
    if (name && (strcmp(name, ".debug_line") == 0
                 || strcmp(name, ".zdebug_line") == 0))
      return 1;
  }
  return 0;
}


/* Names a native frame: symbol, file:line where debug information has
** them, else "module+0xOFFSET". */
static void name_frame (NativeNames *N, Frame *f, int *fresh) {
  uintptr_t addr = (uintptr_t)f->addr;
  int plain = f->internal || f->host;
  Dwfl_Module *m = module_of(N, addr, plain, fresh);
  const char *sym = NULL, *modname = NULL, *src = NULL;
  char label[256];
  int line = 0;
  Dwarf_Addr base = 0;
  if (m != NULL) {
    Dwfl_Line *dl;
    GElf_Off offset;
    GElf_Sym elfsym;
    modname = dwfl_module_info(m, NULL, &base, NULL, NULL, NULL, NULL, NULL);
    sym = symcache_lookup(&N->symbols[plain], m, addr);
    if (sym == NULL)  /* libdw's slow scan knows a few more cases */
      sym = dwfl_module_addrinfo(m, addr, &offset, &elfsym, NULL, NULL, NULL);
    /* file:line costs the module's DWARF: not for frames hidden anyway */
    if (!f->internal && has_lines(m) && (dl = dwfl_module_getsrc(m, addr)))
      src = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);
  }
  if (sym == NULL) {
    if (m != NULL)
      snprintf(label, sizeof label, "%s+0x%lx", base_name(modname),
               (unsigned long)(addr - base));
    else
      snprintf(label, sizeof label, "[anonymous]+0x%lx", (unsigned long)addr);
    sym = label;
  }
  /* the C library's start-up frames above main (or a thread's function)
     are not the host's path; without libc's debug file they have no name */
  if (strcmp(sym, "_start") == 0 || strncmp(sym, "__libc_start", 12) == 0
      || strcmp(sym, "start_thread") == 0 || strncmp(sym, "__clone", 7) == 0
      || (f->host && strncmp(base_name(modname), "libc.so", 7) == 0))
    f->internal = 1;
  {
    char *name = strdup(sym), *file = strdup(src ? src : "");
    if (name == NULL || file == NULL) {
      free(name);
      free(file);
      return;
    }
    free(f->name);
    free(f->file);
    f->name = name;
    f->file = file;
    f->line = src ? line : 0;
  }
}


void native_name_frames (NativeNames *N, Session *S) {
  int i, fresh[2] = {0, 0};
  if (N == NULL) return;
  for (i = 0; i < S->nframes; i++) {
    Frame *f = &S->frames[i];
    if (f->kind == FRAME_NATIVE && f->addr != NULL
        && strcmp(f->name, UNNAMED_NATIVE) == 0)
      name_frame(N, f, fresh);
  }
}


/* The function holding an address, added if new; NULL if memory ran
** out. A return address is looked up one byte back, inside the call. */
static NativeSym *sym_of (NativeNames *N, Session *S, uintptr_t ip,
                          int is_return) {
  uintptr_t lookup = is_return && ip > 0 ? ip - 1 : ip;
  int lo = 0, hi = N->nsyms;  /* first sym with start > lookup */
  NativeSym *s;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (N->syms[mid].start <= lookup) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && lookup < N->syms[lo - 1].end) {
    s = &N->syms[lo - 1];
    if (s->frame < 0 || s->frame >= S->nframes)  /* the session was reset */
      s->frame = make_frame(N, S, s->start);
    return s;
  }
  if (N->nsyms == N->cap) {
    int cap = N->cap ? N->cap * 2 : 256;
    NativeSym *syms = realloc(N->syms, (size_t)cap * sizeof *syms);
    if (syms == NULL) return NULL;
    N->syms = syms;
    N->cap = cap;
  }
  memmove(&N->syms[lo + 1], &N->syms[lo],
          (size_t)(N->nsyms - lo) * sizeof *N->syms);
  N->nsyms++;
  s = &N->syms[lo];
  function_range(lookup, &s->start, &s->end);
  if (lo > 0 && N->syms[lo - 1].end > s->start)  /* keep ranges apart */
    N->syms[lo - 1].end = s->start;
  if (lo + 1 < N->nsyms && s->end > N->syms[lo + 1].start)
    s->end = N->syms[lo + 1].start;
  if (s->end <= lookup) s->end = lookup + 1;
  s->frame = make_frame(N, S, s->start);
  return s;
}


/* ------------------------------------------------------------- probes */

static uintptr_t probe_ips[SPROF_NATIVE_DEPTH];
static int probe_n;


static int probe_capture (lua_State *L) {
  (void)L;
  probe_n = unw_backtrace((void **)probe_ips, SPROF_NATIVE_DEPTH);
  return 0;
}


/* Function starts of the frames of the last probe, innermost first. */
static int probe_starts (uintptr_t *starts) {
  int i;
  for (i = 0; i < probe_n; i++)
    starts[i] = function_start(i == 0 ? probe_ips[i] : probe_ips[i] - 1);
  return probe_n;
}


static int index_of (const uintptr_t *starts, int n, uintptr_t start) {
  int i;
  for (i = 0; i < n; i++)
    if (starts[i] == start) return i;
  return -1;
}


#ifdef SPROF_LUAJIT
/* LuaJIT's interpreter is one assembler routine that calls C functions
** itself, even from lua_call: its frame is the one that called ours. */
static uintptr_t probe_vm (lua_State *L) {
  uintptr_t direct[SPROF_NATIVE_DEPTH];
  lua_pushcfunction(L, probe_capture);
  lua_call(L, 0, 0);
  return probe_starts(direct) > 1 ? direct[1] : 0;
}
#else
/* luaV_execute: in the stack of a C function called through a Lua
** function, the frames that a direct call does not have are the VM and,
** in some builds (Debian's lua5.4 binary), the call helper it called:
** the outermost of them is the VM. Only the frames inner to where the two
** stacks meet count: outer ones are whoever created the profiler, Lua
** code itself when it was sprof.new, with a VM frame of its own. */
static uintptr_t probe_vm (lua_State *L) {
  uintptr_t direct[SPROF_NATIVE_DEPTH], via_lua[SPROF_NATIVE_DEPTH];
  int nd, nv, i;
  lua_pushcfunction(L, probe_capture);
  lua_call(L, 0, 0);
  nd = probe_starts(direct);
  if (luaL_loadstring(L, "local probe = ... probe()") != LUA_OK) return 0;
  lua_pushcfunction(L, probe_capture);
  lua_call(L, 1, 0);
  nv = probe_starts(via_lua);
  while (nd > 0 && nv > 0 && direct[nd - 1] == via_lua[nv - 1]) {
    nd--;
    nv--;
  }
  for (i = 1; i < nv; i++)
    if (via_lua[i] != 0 && index_of(direct, nd, via_lua[i]) < 0) {
      while (i + 1 < nv && via_lua[i + 1] != 0
             && index_of(direct, nd, via_lua[i + 1]) < 0)
        i++;
      return via_lua[i];
    }
  return 0;
}
#endif


/* What lua_gc calls for a step or a full collection: the frame just
** inner to lua_gc when a finalizer runs. */
static uintptr_t probe_gc (lua_State *L, int what) {
  uintptr_t starts[SPROF_NATIVE_DEPTH];
  int n, i, tries;
  probe_n = 0;
  compat_newuserdata(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, probe_capture);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
  for (tries = 0; probe_n == 0 && tries < 1000; tries++)
    lua_gc(L, what, 0);
  n = probe_starts(starts);
  i = index_of(starts, n, (uintptr_t)lua_gc);
  return i > 0 ? starts[i - 1] : 0;
}


static void learn_core (NativeNames *N) {
  lua_State *L = luaL_newstate();
  Dl_info info;
  /* (not lua_newstate: libsprof itself defines one, see preload.c) */
  if (dladdr((void *)lua_gettop, &info) && info.dli_fbase)
    N->core_base = (uintptr_t)info.dli_fbase;
  N->load_fn = (uintptr_t)lua_load;
  if (L == NULL) return;
  N->vm_execute = probe_vm(L);
  N->gc_entry[0] = probe_gc(L, LUA_GCSTEP);
  N->gc_entry[1] = probe_gc(L, LUA_GCCOLLECT);
  lua_close(L);
}


NativeNames *native_names_new (uintptr_t own_hook) {
  NativeNames *N = calloc(1, sizeof *N);
  if (N == NULL) return NULL;
  N->own_hook = own_hook;
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  learn_core(N);
  return N;
}


void native_names_free (NativeNames *N) {
  if (N == NULL) return;
  symcache_clear(&N->symbols[0]);
  symcache_clear(&N->symbols[1]);
  if (N->dwfl) dwfl_end(N->dwfl);
  if (N->dwfl_plain) dwfl_end(N->dwfl_plain);
  free(N->syms);
  free(N);
}


/* Forgets the frames (the session was cleared); names stay cached. */
void native_names_reset (NativeNames *N) {
  int i;
  if (N == NULL) return;
  for (i = 0; i < N->nsyms; i++) N->syms[i].frame = -1;
}


/* -------------------------------------------------------------- merge */

/* Emits native frames [from, to) of c, innermost first, with [gc] and
** [parser] markers where the collector or the parser was entered. */
static int emit_natives (NativeNames *N, Session *S, const NativeCapture *c,
                         int from, int to, int *out, int n, int room) {
  int i;
  for (i = from; i < to && n < room; i++) {
    NativeSym *s = sym_of(N, S, c->ip[i], i > 0);
    if (s == NULL || s->frame < 0) continue;
    if (s->start == N->load_fn && n < room - 1) {
      int p = session_frame(S, FRAME_PSEUDO, "[parser]", "", 0, NULL);
      if (p >= 0) out[n++] = p;
    }
    out[n++] = s->frame;
    if ((s->start == N->gc_entry[0] || s->start == N->gc_entry[1])
        && s->start != 0 && n < room) {
      int g = session_frame(S, FRAME_PSEUDO, "[gc]", "", 0, NULL);
      if (g >= 0) out[n++] = g;
    }
  }
  return n;
}


/* The index of the first frame at or after 'from' starting at 'start'. */
static int find_start (NativeNames *N, Session *S, const NativeCapture *c,
                       int from, uintptr_t start) {
  int i;
  if (start == 0) return -1;
  for (i = from; i < c->n; i++) {
    NativeSym *s = sym_of(N, S, c->ip[i], i > 0);
    if (s != NULL && s->start == start) return i;
  }
  return -1;
}


/*
** A signal that lands as our hook begins or ends, before it has told the
** handler so (finding its profiler takes a system call), captures the
** hook's own frames: they are the profiler's, not the program's, so the
** merge starts at the frame that called the hook.
*/
static int skip_own_hook (NativeNames *N, Session *S, const NativeCapture *c) {
  int i = find_start(N, S, c, 0, N->own_hook);
  return i < 0 ? 0 : i + 1;
}


/* The index in c of the innermost frame of the function that starts at
** 'fn' (0: the VM's), or -1. A capture taken in code without unwind
** tables (LuaJIT's compiled traces) stops before the VM's frame. */
int native_find (NativeNames *N, Session *S, const NativeCapture *c,
                 const void *fn) {
  return find_start(N, S, c, 0, fn ? (uintptr_t)fn : N->vm_execute);
}


/*
** Merges a native capture with the Lua frames of the same moment
** (lua[], innermost first; cfun[i] is the address of lua[i] if it is a
** C function, else NULL). Writes the merged frames, innermost first, to
** out and returns how many; *host_from is where the host's frames start,
** *lua_from where the innermost Lua frame is.
*/
int native_merge (NativeNames *N, Session *S, const NativeCapture *c,
                  const int *lua, const void *const *cfun, int nlua,
                  int *out, int room, int *host_from, int *lua_from) {
  int n = 0, ni = skip_own_hook(N, S, c), j;
  *lua_from = 0;
  *host_from = 0;
  for (j = 0; j < nlua && n < room; j++) {
    int p;
    if (cfun[j] != NULL)
      p = find_start(N, S, c, ni, (uintptr_t)cfun[j]);
    else if (j == 0 || cfun[j - 1] != NULL)  /* a new run of Lua frames */
      p = find_start(N, S, c, ni, N->vm_execute);
    else
      p = -1;
    if (p >= 0) {
      n = emit_natives(N, S, c, ni, p, out, n, room);
      ni = p + 1;
    }
    if (j == 0) *lua_from = n;
    if (n < room) out[n++] = lua[j];
  }
  *host_from = n;
  n = emit_natives(N, S, c, ni, c->n, out, n, room);
  if (c->truncated && n < room) {
    int t = session_frame(S, FRAME_PSEUDO, "[truncated]", "", 0, NULL);
    if (t >= 0) out[n++] = t;
  }
  return n;
}
