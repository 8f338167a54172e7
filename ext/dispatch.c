/*
** dispatch.c — LD_PRELOAD=libsprof-preload.so for a program whatever Lua
** it runs. Each libsprof is built for one Lua version and links that
** liblua; preloaded into a program that runs another, its calls would go
** to the wrong Lua. This library links no Lua: it interposes the calls
** that make and close states, finds which Lua defines the real ones
** (luaversion.c), and loads the libsprof built for that version from its
** own directory. That library's preload.c then profiles the state as if
** it had been preloaded itself: SPROF_OUTPUT, SPROF_SIGNAL and the rest
** mean the same.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luaversion.h"

#define DISPATCH_API __attribute__((visibility("default")))

typedef struct lua_State lua_State;
typedef void *(*Alloc) (void *ud, void *ptr, size_t osize, size_t nsize);
typedef void (*StateHook) (lua_State *L);
typedef void (*ResumeHook) (lua_State *co, lua_State *from);

/* What the libsprof of one Lua version gives us. */
typedef struct Backend {
  int version;            /* 504, 503...; 0: this slot is free */
  StateHook made;         /* a state was just made: profile it */
  StateHook closing;      /* a state is about to be closed */
  ResumeHook resuming;    /* the host resumes a coroutine */
} Backend;

/* A process rarely runs more than one Lua; a few slots cover the rest.
** Which backend serves which real function is remembered: finding a
** function's Lua version costs lookups, and lua_resume is frequent.
** Guarded by 'lock'. */
static Backend backends[4];
static struct { void *fn; Backend *backend; } served[16];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int told;  /* the one line about an unsupported Lua was printed */
static __thread int inside;  /* in luaL_newstate, which calls lua_newstate */
static __thread int in_backend;  /* a backend runs: its own states (scratch
                                    ones) are not the program's */


/* The libsprof for 'version', next to this library: libsprof.so.0 for
** 5.4, libsprof-5.3.so.0 for 5.3... */
static void *open_backend (int version) {
  static const char *const names[] = {"libsprof.so.0", "libsprof-5.3.so.0",
                                      "libsprof-5.1.so.0",
                                      "libsprof-luajit.so.0"};
  static const int versions[] = {504, 503, 501, LUAVERSION_JIT};
  char path[4096];
  Dl_info self;
  const char *slash;
  size_t i;
  for (i = 0; i < sizeof versions / sizeof versions[0]; i++)
    if (versions[i] == version) break;
  if (i == sizeof versions / sizeof versions[0]) return NULL;
  if (!dladdr((void *)open_backend, &self) || self.dli_fname == NULL
      || (slash = strrchr(self.dli_fname, '/')) == NULL)
    return dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  snprintf(path, sizeof path, "%.*s/%s", (int)(slash - self.dli_fname),
           self.dli_fname, names[i]);
  return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}


/* The backend for the Lua that defines 'real', loaded at first need; NULL
** when there is none (said once). */
/* Whether 'fn' is a libsprof's own (its preload.c's): a program that
** links libsprof, or a backend's call, reaches that one first. */
static int in_libsprof (void *fn) {
  Dl_info info, entry_info;
  void *lib, *entry;
  int ours = 0;
  if (!dladdr(fn, &info) || info.dli_fname == NULL) return 0;
  lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (lib == NULL) return 0;
  entry = dlsym(lib, "sprof_preload_made");
  ours = entry != NULL && dladdr(entry, &entry_info)
         && entry_info.dli_fbase == info.dli_fbase;
  dlclose(lib);
  return ours;
}


/* The backend for the Lua that defines 'real'; NULL, said once, when
** there is none; NULL, quietly, when 'real' is a libsprof's (it profiles
** by itself). 'lock' is held. */
static Backend *find_backend (void *real) {
  int version = luaversion_of(real);
  Backend *b = NULL;
  size_t i;
  if (version <= 0) {
    if (!told && !in_libsprof(real)) {
      told = 1;
      fprintf(stderr, "sprof: cannot tell which Lua this program runs; it "
              "runs unprofiled\n");
    }
    return NULL;
  }
  for (i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    if (backends[i].version == version) { b = &backends[i]; break; }
    if (backends[i].version == 0) {
      void *lib = open_backend(version);
      if (lib != NULL) {
        backends[i].made = (StateHook)dlsym(lib, "sprof_preload_made");
        backends[i].closing = (StateHook)dlsym(lib, "sprof_preload_closing");
        backends[i].resuming = (ResumeHook)dlsym(lib, "sprof_resuming");
      }
      if (backends[i].made != NULL && backends[i].closing != NULL
          && backends[i].resuming != NULL) {
        backends[i].version = version;
        b = &backends[i];
      }
      else if (!told) {
        const char *why = lib != NULL ? "no preload entry points" : dlerror();
        told = 1;
        fprintf(stderr, "sprof: this program runs %s, and sprof is not built "
                "for it (%s); it runs unprofiled\n", luaversion_name(version),
                why != NULL ? why : "no such build");
      }
      break;
    }
  }
  return b;
}


static Backend *backend_for (void *real) {
  Backend *b = NULL;
  size_t i;
  pthread_mutex_lock(&lock);
  for (i = 0; i < sizeof served / sizeof served[0] && served[i].fn; i++)
    if (served[i].fn == real) break;
  if (i < sizeof served / sizeof served[0] && served[i].fn == real)
    b = served[i].backend;
  else {
    b = find_backend(real);
    if (i < sizeof served / sizeof served[0]) {
      served[i].fn = real;
      served[i].backend = b;
    }
  }
  pthread_mutex_unlock(&lock);
  return b;
}


/*
** The real function: the next definition after this library, or, when
** Lua was loaded later with its caller (a server's module opened with
** dlopen), the one the caller's own object would reach.
*/
static void *real (const char *name, void *caller) {
  void *fn = dlsym(RTLD_NEXT, name);
  Dl_info info;
  if (fn == NULL && dladdr(caller, &info) && info.dli_fname != NULL) {
    void *lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (lib != NULL) {
      fn = dlsym(lib, name);
      dlclose(lib);
    }
  }
  return fn;
}


static lua_State *made (lua_State *L, void *fn) {
  Backend *b = L != NULL && !in_backend ? backend_for(fn) : NULL;
  if (b != NULL) {
    in_backend = 1;
    b->made(L);
    in_backend = 0;
  }
  return L;
}


/* luaL_newstate may call lua_newstate through this same interposition:
** 'inside' makes the inner call pass through. */
DISPATCH_API lua_State *luaL_newstate (void) {
  lua_State *(*next)(void) =
    (lua_State *(*)(void))real("luaL_newstate", __builtin_return_address(0));
  lua_State *L;
  int outer = !inside;
  if (next == NULL) return NULL;
  inside = 1;
  L = next();
  inside = !outer;
  return outer ? made(L, (void *)next) : L;
}


DISPATCH_API lua_State *lua_newstate (Alloc f, void *ud) {
  lua_State *(*next)(Alloc, void *) = (lua_State *(*)(Alloc, void *))
    real("lua_newstate", __builtin_return_address(0));
  if (next == NULL) return NULL;
  return inside ? next(f, ud) : made(next(f, ud), (void *)next);
}


/* With SPROF_SIGNAL, the signal's handler must be there before the first
** state (preload.c installs it as it loads): when the program links Lua,
** its libsprof is loaded as the program starts. */
__attribute__((constructor)) static void load_early (void) {
  const char *signal = getenv("SPROF_SIGNAL");
  void *fn;
  if (signal == NULL || *signal == '\0') return;
  if ((fn = dlsym(RTLD_NEXT, "lua_newstate")) != NULL) backend_for(fn);
}


DISPATCH_API void lua_close (lua_State *L) {
  void (*next)(lua_State *) =
    (void (*)(lua_State *))real("lua_close", __builtin_return_address(0));
  Backend *b = next && !in_backend ? backend_for((void *)next) : NULL;
  if (b != NULL) {
    in_backend = 1;
    b->closing(L);
    in_backend = 0;
  }
  if (next) next(L);
}


/*
** A host that resumes coroutines itself (HAProxy runs each request in
** one) is told to the profiler, as C API hosts do with sprof_resuming:
** the coroutine's time is then found in it. Lua's own coroutine.resume,
** a call from inside the Lua library, is seen by the hook already.
**
** lua_resume has three signatures: (L, from, nargs, nres) in 5.4, (L,
** from, nargs) in 5.3, (L, nargs) in 5.1. This one function stands for
** all: it passes on what it got in the same places, and reads 'from' only
** from a version that has it. That holds where integer and pointer
** arguments travel in the same registers (x86-64, arm64): the compromise
** of a library that cannot know the signature it is called with.
*/

DISPATCH_API int lua_resume (lua_State *L, void *second, int nargs,
                             int *nres) {
  /* RTLD_NEXT's lua_resume and its backend, looked up once: resumes are
     frequent */
  static _Atomic(void *) next_found;
  static _Atomic(Backend *) next_backend;
  static atomic_int next_known;
  void *caller = __builtin_return_address(0);
  void *next = atomic_load(&next_found);
  Backend *b;
  if (next == NULL && (next = dlsym(RTLD_NEXT, "lua_resume")) != NULL)
    atomic_store(&next_found, next);
  if (next == NULL && (next = real("lua_resume", caller)) == NULL)
    return 2;  /* LUA_ERRRUN; no Lua is there to resume anything */
  if (in_backend) b = NULL;
  else if (next == atomic_load(&next_found) && atomic_load(&next_known))
    b = atomic_load(&next_backend);
  else {
    b = backend_for(next);
    if (next == atomic_load(&next_found)) {
      atomic_store(&next_backend, b);
      atomic_store(&next_known, 1);
    }
  }
  if (b != NULL && !luaversion_inside(caller, next)) {
    in_backend = 1;
    b->resuming(L, b->version >= 502 ? (lua_State *)second : NULL);
    in_backend = 0;
  }
  return ((int (*)(lua_State *, void *, int, int *))next)(L, second, nargs,
                                                          nres);
}
