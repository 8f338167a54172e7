/*
** sprof.h — the sprof profiler for Lua 5.4, as a C library for programs
** that embed Lua. Link libsprof (pkg-config sprof).
**
**   sprof_profiler *p = sprof_new(L, NULL);     // defaults: 1 ms, wall
**   if (sprof_start(p) != 0) fprintf(stderr, "%s\n", sprof_error(p));
**   ... lua_pcall(L, ...) ...
**   sprof_stop(p);
**   sprof_write(p, "profile.txt", "text");
**   sprof_free(p);
**
** Functions returning int return 0, or -1 with sprof_error() saying why
** in one line. Call start and stop from the OS thread that runs L.
*/
#ifndef sprof_h
#define sprof_h

#include <stddef.h>

#include <lua.h>

#define SPROF_VERSION "0.1.0"

/* what libsprof exports (the Lua module keeps it all hidden) */
#if defined(SPROF_EXPORTS)
#define SPROF_API __attribute__((visibility("default")))
#else
#define SPROF_API
#endif

typedef struct Profiler sprof_profiler;

typedef struct sprof_options {  /* all-zero means the defaults */
  double interval;              /* seconds between samples; 0 = 0.001 */
  const char *clock;            /* "wall" (default) or "cpu" */
  int no_native;                /* 1 = Lua frames only */
  int no_host_frames;           /* 1 = hide the host's frames above Lua */
  int memory;                   /* 1 = profile memory too (below) */
  double memory_rate;           /* mean bytes between sampled allocations;
                                   0 = 524288; not 0 implies memory */
} sprof_options;

/*
** Memory profiling wraps the state's allocator (lua_setallocf) from
** sprof_start to sprof_stop, which puts the original back. A host that
** sets its own allocator while profiling should wrap ours: it then stays
** in place after stop, passing calls through. Reports then weigh stacks
** by bytes allocated (the default view; "json", "html" and "pprof" also
** carry the live bytes and the time).
*/

/* A profiler for the thread L. NULL if the options are bad or memory ran
** out: sprof_error(NULL) says which. */
SPROF_API sprof_profiler *sprof_new (lua_State *L, const sprof_options *opts);
SPROF_API int sprof_start (sprof_profiler *p);  /* again after stop: adds to it */
SPROF_API int sprof_stop (sprof_profiler *p);
/* format: "text", "html", "collapsed", "json", "speedscope", "pprof" (binary:
** use the length); for sprof_write, NULL takes it from the path's ending
** (".html", ".json", ".speedscope.json", ".pb.gz", ".collapsed"; else text) */
SPROF_API int sprof_write (sprof_profiler *p, const char *path, const char *format);
SPROF_API char *sprof_render (sprof_profiler *p, const char *format, size_t *len);
SPROF_API const char *sprof_error (const sprof_profiler *p);
SPROF_API void sprof_free (sprof_profiler *p);  /* stops it first if it runs */

/* Beyond the basics */
SPROF_API void sprof_reset (sprof_profiler *p);          /* forget what was recorded */
SPROF_API int sprof_load (sprof_profiler *p, const char *path);  /* add a saved json */
SPROF_API void sprof_set_program (sprof_profiler *p, const char *name);

/* A host that resumes coroutines with lua_resume itself calls this just
** before, from the thread that runs 'from' (NULL if none): the time the
** coroutine then runs is found in it, under the frames of 'from'. Cheap,
** and does nothing unless a profiler runs in this OS thread. */
SPROF_API void sprof_resuming (lua_State *co, lua_State *from);

#endif
