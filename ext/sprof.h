/*
** sprof.h — the sprof profiler for Lua 5.4, as a C library.
**
** A host that embeds Lua profiles its own calls:
**
**   sprof_Profiler *P = sprof_new(0.001, "wall", &err);
**   sprof_start(P, L);
**   ... lua_pcall(L, ...) ...
**   sprof_stop(P);
**   sprof_write(P, "profile.txt", "text");
**   sprof_free(P);
**
** Functions that can fail return NULL on success and otherwise a one-line
** message (valid until the next call on the same profiler).
*/
#ifndef sprof_h
#define sprof_h

#include <stddef.h>

#include <lua.h>

#define SPROF_VERSION "0.1.0"

typedef struct Profiler sprof_Profiler;

typedef struct sprof_RenderOptions {
  int show_all;      /* show library frames and frames under the threshold */
  int color;         /* ANSI colours in the text report */
  double threshold;  /* hide frames under this share of the total (0.01) */
} sprof_RenderOptions;

/* interval in seconds (> 0); clock "wall" or "cpu" (NULL: "wall") */
sprof_Profiler *sprof_new (double interval, const char *clock,
                           const char **error);
void sprof_free (sprof_Profiler *P);

/* Samples the thread L until sprof_stop; a second start adds to the
** same session. Must be called from the OS thread that runs L. */
const char *sprof_start (sprof_Profiler *P, lua_State *L);
const char *sprof_stop (sprof_Profiler *P);
int sprof_running (const sprof_Profiler *P);
void sprof_reset (sprof_Profiler *P);
void sprof_set_program (sprof_Profiler *P, const char *program);

/* A host that resumes coroutines with lua_resume itself calls this just
** before, from the thread that runs 'from' (NULL if none): the time the
** coroutine then runs is found in it, under the frames of 'from'. Cheap,
** and does nothing unless a profiler runs in this OS thread. */
void sprof_resuming (lua_State *co, lua_State *from);

/* format: "text", "collapsed" or "json". The result is malloc'd. */
char *sprof_render (sprof_Profiler *P, const char *format,
                    const sprof_RenderOptions *options, size_t *len,
                    const char **error);
const char *sprof_write (sprof_Profiler *P, const char *path,
                         const char *format,
                         const sprof_RenderOptions *options);
/* Adds a saved JSON session to P's session. */
const char *sprof_load (sprof_Profiler *P, const char *path);

#endif
