/*
** capture.c — taking a sample: the signal handler only marks a sample as
** due and arms the Lua hook; the hook, at the next safe point, walks the Lua
** stack, adds it to the call tree with its weight, and disarms itself.
** Between samples nothing of ours runs.
*/
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "profiler.h"

#define OUR_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT)
#define UNNAMED_C "(C function)"


uint64_t capture_now (ClockKind clock) {
  struct timespec ts;
  clock_gettime(clock == CLOCK_KIND_CPU ? CLOCK_THREAD_CPUTIME_ID
                                        : CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


/* ------------------------------------------------------- frame naming */

/*
** C functions have no name of their own; the name a call site used
** ("rep", "for iterator") is poor. package.loaded knows them as
** "string.rep", "table.sort", "print": learn those names. This also runs
** inside the hook (for modules loaded after start), so it must not
** allocate Lua objects: a collection there could run finalizers.
*/
static void learn_name (Profiler *P, const void *fn, const char *module,
                        const char *field) {
  size_t mlen = module ? strlen(module) + 1 : 0, flen = strlen(field);
  char **list, *name;
  if (map_get(&P->cnames, (uint64_t)(uintptr_t)fn) >= 0) return;
  list = realloc(P->cname_list, (size_t)(P->ncnames + 1) * sizeof *list);
  if (list == NULL) return;
  P->cname_list = list;
  name = malloc(mlen + flen + 1);
  if (name == NULL) return;
  if (module) {
    memcpy(name, module, mlen - 1);
    name[mlen - 1] = '.';
  }
  memcpy(name + mlen, field, flen + 1);
  if (map_put(&P->cnames, (uint64_t)(uintptr_t)fn, P->ncnames))
    list[P->ncnames++] = name;
  else free(name);
}


/* What stands for a C function: its address, or, for LuaJIT's fast
** functions (written in assembler, with no address to give), the
** address of the function object. */
static const void *cfunction_key (lua_State *L, int idx) {
  lua_CFunction fn = lua_tocfunction(L, idx);
  return fn != NULL ? (const void *)fn : lua_topointer(L, idx);
}


/* Names the C functions in the table on the top of the stack. */
void capture_learn_module (Profiler *P, lua_State *L, const char *module) {
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)
        && cfunction_key(L, -1) != NULL)
      learn_name(P, cfunction_key(L, -1), module, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
}


void capture_learn_cnames (Profiler *P, lua_State *L) {
  if (P->cnames.keys == NULL && !map_init(&P->cnames, 512)) return;
  if (!lua_checkstack(L, 6)) return;
  if (compat_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  if (compat_getfield(L, -1, "_G") == LUA_TTABLE)  /* "print", not "_G.print" */
    capture_learn_module(P, L, NULL);
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)
        && strcmp(lua_tostring(L, -2), "_G") != 0)
      capture_learn_module(P, L, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}


/* After a run: C functions named by their call site while their module
** was not yet known by package.loaded get their full name. */
void capture_rename_cfunctions (Profiler *P, lua_State *L) {
  Session *S = &P->session;
  int i;
  capture_learn_cnames(P, L);
  if (P->cnames.keys == NULL) return;
  for (i = 0; i < S->nframes; i++) {
    Frame *f = &S->frames[i];
    int k = f->kind == FRAME_C && f->addr
            ? map_get(&P->cnames, (uint64_t)(uintptr_t)f->addr) : -1;
    if (k >= 0 && strcmp(f->name, P->cname_list[k]) != 0) {
      char *name = strdup(P->cname_list[k]);
      if (name) {
        free(f->name);
        f->name = name;
      }
    }
  }
}


void capture_free_cnames (Profiler *P) {
  int i;
  for (i = 0; i < P->ncnames; i++) free(P->cname_list[i]);
  free(P->cname_list);
  P->cname_list = NULL;
  P->ncnames = 0;
  map_free(&P->cnames);
}


/* The package.loaded name of fn; modules required since the last look
** are looked at again, at most once a second. */
static const char *cname_of (Profiler *P, lua_State *L, const void *fn) {
  int i = P->cnames.keys ? map_get(&P->cnames, (uint64_t)(uintptr_t)fn) : -1;
  if (i < 0 && P->last_ns >= P->next_learn_ns) {
    P->next_learn_ns = P->last_ns + 1000000000u;
    capture_learn_cnames(P, L);
    i = P->cnames.keys ? map_get(&P->cnames, (uint64_t)(uintptr_t)fn) : -1;
  }
  return i >= 0 ? P->cname_list[i] : NULL;
}


static const char *source_name (lua_Debug *d) {
  if (d->source[0] == '@' || d->source[0] == '=') return d->source + 1;
  return d->short_src;  /* a chunk loaded from a string */
}


/*
** The frame of a stack level. The name a call site gives ("n") costs a
** scan of the caller's code, so it is asked only for frames not yet
** known, or still without a name.
*/
static int frame_of (Profiler *P, lua_State *L, lua_Debug *d,
                     const void **cfun) {
  Session *S = &P->session;
  int known;
  *cfun = NULL;
  lua_getinfo(L, "S", d);
  if (d->what[0] == 't')  /* 5.1: where a tail call was, its caller gone */
    return -1;            /* (5.2 on keeps no such level) */
  if (d->what[0] == 'C') {
    const void *fn;
    const char *name;
    lua_getinfo(L, "f", d);
    fn = cfunction_key(L, -1);
    *cfun = (const void *)lua_tocfunction(L, -1);
    lua_pop(L, 1);
    known = session_find_frame(S, FRAME_C, "", "[C]", 0, fn);
    if (known >= 0) return known;
    name = cname_of(P, L, fn);
    if (name == NULL) {
      lua_getinfo(L, "n", d);
      name = d->name ? d->name : UNNAMED_C;
    }
    return session_frame(S, FRAME_C, name, "[C]", 0, fn);
  }
  if (d->what[0] == 'm')
    return session_frame(S, FRAME_LUA, "(main chunk)", source_name(d), 0, NULL);
  known = session_find_frame(S, FRAME_LUA, "", source_name(d),
                             d->linedefined, NULL);
  if (known >= 0 && strcmp(S->frames[known].name, "(anonymous)") != 0)
    return known;
  lua_getinfo(L, "n", d);
  return session_frame(S, FRAME_LUA, d->name ? d->name : "(anonymous)",
                       source_name(d), d->linedefined, NULL);
}


/*
** Appends the frames of thread L from 'level' outwards (innermost first)
** to P->stack; returns the new count. L may be another thread than the
** running one: a suspended resumer is read like debug.traceback reads it.
*/
static int walk (Profiler *P, lua_State *L, int level, int n) {
  lua_Debug d;
  if (!lua_checkstack(L, 2)) return n;
  while (n < SPROF_MAX_DEPTH && lua_getstack(L, level, &d)) {
    const void *cfun;
    int f = frame_of(P, L, &d, &cfun);
    if (f >= 0) {
      P->cfun[n] = cfun;
      P->stack[n++] = f;
    }
    level++;
  }
  if (n == SPROF_MAX_DEPTH && lua_getstack(L, level, &d)) {
    int f = session_frame(&P->session, FRAME_PSEUDO, "[truncated]", "", 0,
                          NULL);
    if (f >= 0) {
      P->cfun[n - 1] = NULL;
      P->stack[n - 1] = f;
    }
  }
  return n;
}


/* Whether thread R is waiting in a C function (resume, or a host's call
** to lua_resume) for a coroutine to yield: it is not suspended itself. */
static int is_resuming (lua_State *R) {
  lua_Debug d;
  return lua_status(R) == LUA_OK && lua_getstack(R, 0, &d)
         && lua_getinfo(R, "S", &d) && d.what[0] == 'C';
}


#ifdef SPROF_LUAJIT
/* The coroutine a resuming thread R resumes: the argument of its
** coroutine.resume, or the upvalue of its coroutine.wrap function. */
static lua_State *resumed_from (lua_State *R) {
  lua_Debug d;
  lua_State *co = NULL;
  if (!is_resuming(R) || !lua_getstack(R, 0, &d) || !lua_checkstack(R, 2))
    return NULL;
  if (lua_getlocal(R, &d, 1) != NULL) {
    co = lua_tothread(R, -1);
    lua_pop(R, 1);
  }
  if (co == NULL && lua_getinfo(R, "f", &d)) {
    if (lua_getupvalue(R, -1, 1) != NULL) {
      co = lua_tothread(R, -1);
      lua_pop(R, 1);
    }
    lua_pop(R, 1);
  }
  return co;
}


/*
** LuaJIT has no hook to learn resumers from: the chain is followed from
** the thread that started, down what each resuming thread resumes, to L.
** Appends the frames of the threads on the way, nearest first; returns
** the new count, or -1 when L is not on it.
*/
static int walk_resume_chain (Profiler *P, lua_State *L, int n) {
  lua_State *chain[SPROF_MAX_THREADS + 1];
  int k = 0;
  chain[0] = P->L;
  while (k < SPROF_MAX_THREADS) {
    lua_State *next = resumed_from(chain[k]);
    if (next == NULL || next == chain[k]) return -1;
    if (next == L) break;
    chain[++k] = next;
  }
  if (k == SPROF_MAX_THREADS) return -1;
  for (; k >= 0; k--) n = walk(P, chain[k], 0, n);
  return n;
}
#endif


/*
** Appends the frames of whoever resumed thread L: its resumer if known
** and still resuming, that one's resumer, and so on; where the chain is
** unknown, the thread that started the profiler stands in (it resumed
** the coroutine, directly or through code we cannot see).
*/
static int walk_resumers (Profiler *P, lua_State *L, int n) {
  lua_State *main = P->threads[0].L;
  int hops;
#ifdef SPROF_LUAJIT
  int chained = L != main ? walk_resume_chain(P, L, n) : -1;
  if (chained >= 0) return chained;
#endif
  for (hops = 0; L != main && hops < SPROF_MAX_THREADS; hops++) {
    Armed *t = threads_find(P, L);
    lua_State *R = t ? t->resumer : NULL;
    if (R == NULL || R == L || !is_resuming(R)) R = main;
    if (R == main && !is_resuming(main)) break;
    n = walk(P, R, 0, n);
    L = R;
  }
  return n;
}


/*
** Collects the Lua frames of a sample into P->stack (innermost first):
** thread L from 'level' outwards, then its resumers. 'ran' is a coroutine
** that ran (and has yielded) since the last sample: its main function
** goes on top.
*/
static int lua_frames (Profiler *P, lua_State *L, int level, lua_State *ran) {
  Session *S = &P->session;
  int n = 0;
  if (ran != NULL) {
    lua_Debug d;
    int depth = 0;
    while (lua_getstack(ran, depth + 1, &d)) depth++;
    if (lua_getstack(ran, depth, &d) && lua_checkstack(ran, 2)) {
      const void *cfun;
      int f = frame_of(P, ran, &d, &cfun);
      if (f >= 0) {
        P->cfun[n] = cfun;
        P->stack[n++] = f;
      }
    }
  }
  n = walk(P, L, level, n);
  n = walk_resumers(P, L, n);
  /* the host's own entry (lua.c's pmain) is a nameless C function at the
     bottom of the stack: the program starts above it */
  while (n > 0 && S->frames[P->stack[n - 1]].kind == FRAME_C
         && strcmp(S->frames[P->stack[n - 1]].name, UNNAMED_C) == 0)
    n--;
  return n;
}


static uint64_t take_weight (Profiler *P, uint64_t now) {
  uint64_t weight = now > P->last_ns ? now - P->last_ns : 0;
  if (now > P->last_ns) P->last_ns = now;
  return weight;
}


/*
** A sample the sampler thread armed (not a tick) that weighs more wait
** than CPU time fired as a wait ended, in the C function that waited.
** The thread's CPU time since the previous sample ran before the wait,
** where that sample was (within an interval of it: around waits the
** sampler samples running code every interval, elsewhere ticks do): it
** goes there; the rest, the wait, stays in *weight. With a tick since,
** the thread was in this C function from that tick on, and it all stays.
** 'whole': no tick found the thread suspended or outside Lua meanwhile.
** Returns whether it split. With the CPU clock a sample weighs no wait.
*/
static int split_wait (Profiler *P, uint64_t *weight, int whole) {
  uint64_t cpu, ran;
  int by_sampler;
  if (P->clock != CLOCK_KIND_WALL) return 0;
  cpu = capture_now(CLOCK_KIND_CPU);
  ran = cpu > P->last_cpu_ns ? cpu - P->last_cpu_ns : 0;
  P->last_cpu_ns = cpu;
  by_sampler = atomic_exchange(&P->sampler_armed, 0);
  if (!by_sampler || !whole || P->last_node <= 0 || 2 * ran >= *weight)
    return 0;  /* (after a native capture, ran may exceed the weight) */
  session_add_weight(&P->session, P->last_node, ran);
  *weight -= ran;
  return 1;
}


/* The Lua heap's size: two reads of a counter (O(1), allocates nothing).
** Inside a finalizer lua_gc answers -1: the last size stands then. */
static uint64_t heap_bytes (Profiler *P) {
  int kb = lua_gc(P->L, LUA_GCCOUNT, 0), b = lua_gc(P->L, LUA_GCCOUNTB, 0);
  if (kb >= 0 && b >= 0) P->heap_bytes = (uint64_t)kb * 1024 + (uint64_t)b;
  return P->heap_bytes;
}


/* Adds a stack given innermost first; returns its node. */
static int add_sample (Profiler *P, int *frames, int n, uint64_t weight) {
  Session *S = &P->session;
  int i, j, node;
  for (i = 0, j = n - 1; i < j; i++, j--) {  /* root first */
    int t = frames[i];
    frames[i] = frames[j];
    frames[j] = t;
  }
  node = session_add_stack(S, frames, n, weight, 1);
  session_add_moment(S, capture_now(CLOCK_KIND_WALL) - P->first_wall_ns, node,
                     heap_bytes(P));
  return node;
}


/* The time of the ticks that found no Lua code running (the host was busy
** or waiting, or another state ran) is not this stack's: it goes to the
** root, "(outside Lua)". */
static uint64_t add_idle (Profiler *P, uint64_t weight) {
  uint64_t idle = atomic_exchange(&P->idle_ns, 0);
  if (idle > weight) idle = weight;
  if (idle > 0) session_add_weight(&P->session, 0, idle);
  return weight - idle;
}


static uint64_t hash_frames (const int *frames, int n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  int i;
  for (i = 0; i < n; i++) h = (h ^ (uint32_t)frames[i]) * 0x100000001b3ULL;
  return h ? h : 1;
}


/* Remembers P->merged[0, n) as the native view of the Lua frames
** P->stack[0, nlua). */
static void keep_replay (Profiler *P, int nlua, int n) {
  uint64_t key = hash_frames(P->stack, nlua);
  Replay *r = &P->replay[key % SPROF_REPLAYS];
  r->key = key;
  r->n = n;
  memcpy(r->frames, P->merged, (size_t)n * sizeof *r->frames);
}


/*
** The native captures taken since the last sample, each merged with the
** Lua frames of now (the handler armed the hook, which fired at the next
** safe point: the same Lua frames, or the C function they were in is
** returning). Returns how many there were.
*/
static int drain_native (Profiler *P, int nlua) {
  NativeRing *R = P->ring;
  int drained = 0;
  while (atomic_load(&R->tail) != atomic_load(&R->head)) {
    unsigned tail = atomic_load(&R->tail);
    const NativeCapture *c = &R->slot[tail % SPROF_NATIVE_SLOTS];
    int room = (int)(sizeof P->merged / sizeof P->merged[0]);
    int host_from, lua_from, n, i;
    uint64_t weight = add_idle(P, take_weight(P, c->t_ns));
    int lua_n = c->in_lua ? nlua : 0;  /* else the host alone ran */
    n = native_merge(P->names, &P->session, c, P->stack, P->cfun, lua_n,
                     P->merged, room, &host_from, &lua_from);
    for (i = host_from; i < n; i++)
      if (P->session.frames[P->merged[i]].kind == FRAME_NATIVE)
        P->session.frames[P->merged[i]].host = 1;
    if (lua_n > 0 && host_from <= n) {
      P->host_root = P->stack[nlua - 1];
      P->nhost_path = n - host_from;
      memcpy(P->host_path, P->merged + host_from,
             (size_t)P->nhost_path * sizeof *P->merged);
    }
    /* what ran natively inside the innermost frame is kept too (a C
       function's callees, the collector under a Lua function): the
       Lua-only samples of the same Lua stack (most samples, with the wall
       clock) take it from the last capture, so each native detail gets
       its share of their time; without it [gc] showed 12% of a run where
       the CPU clock, all captures, showed 27% */
    if (lua_n > 0)
      keep_replay(P, nlua, n);
    P->last_node = add_sample(P, P->merged, n, weight);
    atomic_store(&R->tail, tail + 1);
    drained++;
  }
  /* code outside the known objects: a module loaded since, or a JIT's */
  if (atomic_load(&R->code_stale)) native_refresh_code(R);
  return drained;
}


/*
** When profiling started inside a coroutine (a request handler), the
** time it spends suspended belongs to others. The ticks that find it
** suspended count the time each stands for (since the tick before);
** that much of the next sample's weight goes to where it waited, under a
** [suspended] frame.
*/
static uint64_t add_suspended (Profiler *P, int n, uint64_t weight) {
  uint64_t suspended = atomic_exchange(&P->suspended_ns, 0);
  int f;
  if (suspended == 0 || weight == 0) return weight;
  if (suspended > weight) suspended = weight;
  f = session_frame(&P->session, FRAME_PSEUDO, "[suspended]", "", 0, NULL);
  if (f >= 0 && n < SPROF_MAX_DEPTH) {
    memmove(P->merged + 1, P->stack, (size_t)n * sizeof *P->stack);
    P->merged[0] = f;
    add_sample(P, P->merged, n + 1, suspended);
    return weight - suspended;
  }
  return weight;
}


/* The native view last captured for the n Lua frames in P->stack, if
** any: the native frames between them (a C function's own helpers, its
** callees) were there too. */
static const Replay *replay_of (Profiler *P, int n) {
  const Replay *r;
  uint64_t key;
  if (P->replay == NULL || n == 0) return NULL;
  key = hash_frames(P->stack, n);
  r = &P->replay[key % SPROF_REPLAYS];
  return r->key == key ? r : NULL;
}


/*
** The stack for the allocations sampled since the hook last ran: the Lua
** frames of now. Not the native view a time sample of the same Lua frames
** would borrow: what ran natively then (a memcpy) is not what allocated.
*/
static void record_memory (Profiler *P, lua_State *L, int level) {
  int n = lua_frames(P, L, level, NULL), i;
  for (i = 0; i < n; i++) P->merged[i] = P->stack[n - 1 - i];  /* root first */
  memory_record(P, P->merged, n);
}


/*
** Records a sample: the Lua frames of thread L from 'level' outwards with
** its resumers', and the native captures waiting, weighted by the time
** since the previous sample, so a sample that comes late (the hook waited
** for a long C function to return) still counts all the time it stands
** for.
*/
static void record (Profiler *P, lua_State *L, int level, lua_State *ran) {
  Session *S = &P->session;
  int n = lua_frames(P, L, level, ran);
  const Replay *r;
  uint64_t whole, weight;
  if (P->ring != NULL && drain_native(P, n) > 0) {
    weight = take_weight(P, capture_now(P->clock));
    if (!split_wait(P, &weight, 1)) {
      /* the time since the last capture: as where that capture was */
      session_add_weight(S, P->last_node, weight);
      return;
    }  /* else the sampler armed us in a wait since: it is the frames' of now */
  }
  else {
    whole = take_weight(P, capture_now(P->clock));
    weight = add_idle(P, add_suspended(P, n, whole));
    split_wait(P, &weight, weight == whole);
  }
  if (n == 0 && P->last_node > 0)  /* no Lua running: as where we were */
    session_add_weight(S, P->last_node, weight);
  else if ((r = replay_of(P, n)) != NULL) {
    /* these Lua frames were seen natively: the native frames between them
       (a C function's own helpers, its callees) were there too */
    memcpy(P->merged, r->frames, (size_t)r->n * sizeof *P->merged);
    P->last_node = add_sample(P, P->merged, r->n, weight);
  }
  else {
    if (P->ring != NULL && n > 0 && P->stack[n - 1] == P->host_root
        && n + P->nhost_path <= SPROF_MAX_DEPTH) {
      /* the host's path below the same root, as last seen natively */
      memcpy(P->stack + n, P->host_path,
             (size_t)P->nhost_path * sizeof *P->stack);
      n += P->nhost_path;
    }
    P->last_node = add_sample(P, P->stack, n, weight);
  }
}


void capture_record (Profiler *P, lua_State *L, int level) {
  record(P, L, level, NULL);
}


/* A native frame that is a C function Lua knows (its start is one of
** package.loaded's, "table.sort") becomes that function's frame: a
** stripped library has no name for it. */
static void as_c_function (Profiler *P, int *frame) {
  const Frame *f = &P->session.frames[*frame];
  int k, c;
  if (f->kind != FRAME_NATIVE || f->addr == NULL || P->cnames.keys == NULL)
    return;
  k = map_get(&P->cnames, (uint64_t)(uintptr_t)f->addr);
  if (k < 0) return;
  c = session_frame(&P->session, FRAME_C, P->cname_list[k], "[C]", 0, f->addr);
  if (c >= 0) *frame = c;
}


/*
** LuaJIT: the captures of the ticks since the last callback (jit.c) are
** used at a 'C' tick only ('use'), when a C function ran: the last one,
** merged with the Lua frames of now into P->merged, shows what it did.
** The callback comes later than the tick: when the C function has
** returned, its native frames go under its caller, which runs now; when
** it has called back into Lua (table.sort's comparator), the Lua frames
** inner to it began after the tick and are left out. Returns the merged
** count, 0 for none: a capture taken in compiled code (or a helper it
** called) stops at the trace, which has no unwind tables, and never
** reaches the VM's frame.
*/
static int jit_native (Profiler *P, int nlua, int use) {
  NativeRing *R = P->ring;
  unsigned head = atomic_load(&R->head), tail = atomic_load(&R->tail);
  const NativeCapture *c = head != tail
                           ? &R->slot[(head - 1) % SPROF_NATIVE_SLOTS] : NULL;
  int room = (int)(sizeof P->merged / sizeof P->merged[0]);
  int n = 0, host_from, lua_from, vm, first = 0, i;
  if (use && c != NULL && nlua > 0
      && (vm = native_find(P->names, &P->session, c, NULL)) >= 0) {
    for (i = 0; i < nlua; i++) {
      int at = P->cfun[i] ? native_find(P->names, &P->session, c, P->cfun[i])
                          : -1;
      if (at >= 0 && at < vm) { first = i; break; }
    }
    n = native_merge(P->names, &P->session, c, P->stack + first,
                     P->cfun + first, nlua - first, P->merged, room,
                     &host_from, &lua_from);
    for (i = host_from; i < n; i++)
      if (P->session.frames[P->merged[i]].kind == FRAME_NATIVE)
        P->session.frames[P->merged[i]].host = 1;
    for (i = 0; i < host_from; i++) as_c_function(P, &P->merged[i]);
  }
  atomic_store(&R->tail, head);  /* (no tick captures while in_hook) */
  if (atomic_load(&R->code_stale)) native_refresh_code(R);
  return n;
}


/* The leaf that says what the VM did at a LuaJIT tick, or NULL when it
** interpreted Lua code. At 'C' the C function has returned by the time
** of the callback: its time stands under the Lua function that called
** it. */
static const char *vmstate_leaf (int vmstate) {
  switch (vmstate) {
    case 'N': return "[jit compiled]";
    case 'C': return "[C code]";
    case 'G': return "[gc]";
    case 'J': return "[jit compiler]";
    default: return NULL;
  }
}


/*
** A LuaJIT sample (jit.c): the Lua frames of L now, weighed by the time
** since the last one, with the VM's state as a leaf. While the thread
** that started is suspended, the sample is another coroutine's (another
** request's): its time is not this profile's.
*/
void capture_jit_sample (Profiler *P, lua_State *L, int vmstate) {
  const char *leaf = vmstate_leaf(vmstate);
  uint64_t t0 = capture_now(CLOCK_KIND_WALL), weight;
  int n, f, merged = 0;
  if (atomic_load(&P->in_hook) || !P->running) return;  /* stopping */
  atomic_store(&P->in_hook, 1);
  weight = take_weight(P, capture_now(P->clock));
  if (L == P->L || lua_status(P->L) != LUA_YIELD) {
    n = lua_frames(P, L, 0, NULL);
    if (P->ring != NULL) merged = jit_native(P, n, vmstate == 'C');
    f = leaf && merged == 0
        ? session_frame(&P->session, FRAME_PSEUDO, leaf, "", 0, NULL) : -1;
    if (f >= 0 && n < SPROF_MAX_DEPTH) {
      memmove(P->stack + 1, P->stack, (size_t)n * sizeof *P->stack);
      P->stack[0] = f;
      n++;
    }
    if (merged > 0) P->last_node = add_sample(P, P->merged, merged, weight);
    else P->last_node = add_sample(P, P->stack, n, weight);
    P->own_ns += weight;
  }
  else if (P->ring != NULL) jit_native(P, 0, 0);  /* not ours: dropped */
  P->hook_ns += capture_now(CLOCK_KIND_WALL) - t0;
  atomic_store(&P->in_hook, 0);
}


/*
** The hook, in whichever armed thread runs first. At a call event the
** callee has not started yet: the sample belongs to its caller, so level
** 0 is skipped. At a return event the returning function is still on the
** stack and is the one that ran. At a call or return of a resume, the
** coroutine is adopted: at the call, it is armed and takes the sample
** itself as it starts; at the return, the sample (which waited for the
** coroutine to yield) goes to the coroutine's main function.
*/
void capture_hook (lua_State *L, lua_Debug *ar) {
  Profiler *P = profile_of_state(profile_gettid(), L);
  int is_call = ar->event == LUA_HOOKCALL || ar->event == SPROF_HOOKTAILCALL;
  lua_State *co = NULL;
  lua_Hook due;
  Armed *t, self;
  uint64_t t0;
  if (P == NULL) {  /* left armed by a profiler that has stopped */
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  if (!profiler_try_enter(P)) {  /* the sampler is arming: next time */
    t = threads_find(P, L);       /* (it does not touch our entries' */
    due = t ? threads_due(t, ar) : NULL;  /* chained hooks while ours is in) */
    if (due) due(L, ar);
    return;
  }
  t0 = capture_now(CLOCK_KIND_WALL);
  if (ar->event != LUA_HOOKCOUNT && ar->event != LUA_HOOKLINE
      && (co = threads_resumed_by(P, L)) != NULL) {
    Armed *c = threads_adopt(P, L, -1, L);
    lua_pop(L, 1);
    if (c && is_call && atomic_load(&P->pending)) {
      threads_arm(c);
      co = NULL;  /* the sample waits for the coroutine's first step */
    }
  }
  t = threads_find(P, L);
  if (t == NULL) {  /* it inherited our hook when it was created */
    lua_pushthread(L);
    t = threads_adopt(P, L, -1, NULL);
    lua_pop(L, 1);
  }
  if (P->memory.npending > 0) record_memory(P, L, is_call);
  if (atomic_load(&P->pending) && (co == NULL || !is_call)) {
    atomic_store(&P->pending, 0);
    /* while the thread that started is suspended, the time is not ours */
    if (L == P->L || lua_status(P->L) != LUA_YIELD)
      record(P, L, is_call, is_call ? NULL : co);
  }
  if (t == NULL) {  /* could not adopt it: serve it as the first thread */
    self = P->threads[0];
    self.L = L;
    t = &self;
  }
  due = threads_due(t, ar);  /* first: it reads the count of our hook */
  threads_disarm(t);
  /* the clock is read before leaving: a signal landing in that read after
     the leave would capture our own frames for the program's */
  P->hook_ns += capture_now(CLOCK_KIND_WALL) - t0;
  profiler_leave(P);
  if (due) due(L, ar);  /* last: it may raise an error */
}
