/*
** native.h — native frames: capture in the signal handler, names, merge.
*/
#ifndef sprof_native_h
#define sprof_native_h

#include <stdatomic.h>
#include <stdint.h>

#include "session.h"

#define SPROF_NATIVE_DEPTH 128  /* frames per capture */
#define SPROF_NATIVE_SLOTS 64   /* captures waiting for the hook */

typedef struct NativeCapture {
  uint64_t t_ns;        /* when, on the profile's clock */
  int n;                /* frames in ip */
  int truncated;        /* the stack went on past SPROF_NATIVE_DEPTH */
  int in_lua;           /* Lua code was running (else: only the host) */
  uintptr_t ip[SPROF_NATIVE_DEPTH];  /* innermost first */
} NativeCapture;

#define SPROF_CODE_RANGES 256  /* executable segments of loaded objects */

/* Written by the signal handler, read by the hook: one producer, one
** consumer, on one OS thread (the handler may interrupt the hook). */
typedef struct NativeRing {
  NativeCapture slot[SPROF_NATIVE_SLOTS];
  atomic_uint head;     /* next slot the handler fills */
  atomic_uint tail;     /* next slot the hook reads */
  /* the code of the loaded objects that have unwind tables, as [start,
     end) pairs, written outside the handler; 0 ranges while rewritten */
  uintptr_t code[2 * SPROF_CODE_RANGES];
  atomic_int ncode;
  unsigned long long code_version;  /* dlopens + dlcloses seen by it */
  atomic_int code_stale;  /* the handler met code outside the ranges */
  int stop_outside;     /* then take no capture (LuaJIT: its traces) */
} NativeRing;

typedef struct NativeNames NativeNames;

void native_prepare_thread (NativeRing *R);
void native_refresh_code (NativeRing *R);
void native_capture (NativeRing *R, void *ucontext, uint64_t t_ns,
                     int in_lua);
NativeNames *native_names_new (uintptr_t own_hook);
void native_names_free (NativeNames *N);
void native_names_reset (NativeNames *N);
void native_name_frames (NativeNames *N, Session *S);
int native_find (NativeNames *N, Session *S, const NativeCapture *c,
                 const void *fn);
int native_merge (NativeNames *N, Session *S, const NativeCapture *c,
                  const int *lua, const void *const *cfun, int nlua,
                  int *out, int room, int *host_from, int *lua_from);

#endif
