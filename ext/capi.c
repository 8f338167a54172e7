/*
** capi.c — the public C API (sprof.h) over the engine's own functions.
*/
#include <stdlib.h>

#include "profiler.h"
#include "sprof.h"

/* Why the last sprof_new failed (no profiler to hold the message). */
static _Thread_local const char *new_error;


sprof_profiler *sprof_new (lua_State *L, const sprof_options *opts) {
  double interval = opts && opts->interval != 0 ? opts->interval : 0.001;
  const char *clock = opts && opts->clock ? opts->clock : "wall";
  Profiler *P;
  if (L == NULL) {
    new_error = "sprof: sprof_new needs the lua_State to profile";
    return NULL;
  }
  P = profiler_new(interval, clock, !(opts && opts->no_native), &new_error);
  if (P != NULL) {
    P->host_L = L;
    P->show_host = !(opts && opts->no_host_frames);  /* a host wants them */
  }
  return P;
}


static int result (const char *error) {
  return error ? -1 : 0;
}


int sprof_start (sprof_profiler *p) {
  return result(profiler_start(p, p->host_L));
}


int sprof_stop (sprof_profiler *p) {
  return result(profiler_stop(p));
}


static RenderOptions host_options (const sprof_profiler *p) {
  RenderOptions o = report_default_options();
  o.show_host = p->show_host;
  return o;
}


int sprof_write (sprof_profiler *p, const char *path, const char *format) {
  RenderOptions o = host_options(p);
  return result(profiler_write(p, path, format, &o));
}


char *sprof_render (sprof_profiler *p, const char *format, size_t *len) {
  RenderOptions o = host_options(p);
  const char *error;
  return profiler_render(p, format, &o, len, &error);
}


const char *sprof_error (const sprof_profiler *p) {
  if (p == NULL) return new_error;
  return p->error[0] ? p->error : NULL;
}


void sprof_free (sprof_profiler *p) {
  profiler_free(p);
}


void sprof_reset (sprof_profiler *p) {
  profiler_reset(p);
}


int sprof_load (sprof_profiler *p, const char *path) {
  return result(profiler_load(p, path));
}


void sprof_set_program (sprof_profiler *p, const char *name) {
  profiler_set_program(p, name);
}
