/*
** memory.c — sampled allocations.
**
** While profiling memory, the state's allocator is wrapped. An allocation
** is sampled when the bytes allocated since the last sampled one pass a
** random gap, exponential with mean 'rate' (Poisson sampling by bytes, as
** tcmalloc, jemalloc and Go do: sampling every Nth byte would alias with
** programs that allocate in a period). A sampled allocation of s bytes
** stands for s / (1 - exp(-s/rate)) bytes and 1 / (1 - exp(-s/rate))
** objects, so the totals are unbiased. A reallocation is a free and an
** allocation of the new size.
**
** The allocator never reads the Lua stack: mid-instruction the stack may
** be in the middle of being reallocated, 'savedpc' may be stale, and
** lua_getinfo itself allocates. It queues the sample and arms the hook,
** as the timer does; the hook takes the stack at the next instruction
** (memory_record). Inside a C function that allocates (string.rep,
** table.concat), the hook fires as it returns, with its frame on the
** stack: the bytes are that function's.
**
** The sampled blocks still allocated are kept by address, so that at
** stop, after a full collection, what is left is the live heap.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "profiler.h"


/* xorshift64*: fast, and good enough to draw gaps */
static double uniform (Memory *M) {
  uint64_t x = M->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  M->rng = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}


/* floor(X) + 1 for X exponential: an allocation of s bytes reaches it
** when X < s, with probability 1 - exp(-s/rate) exactly. */
static int64_t next_gap (Memory *M) {
  return (int64_t)(-log(1.0 - uniform(M)) * M->rate) + 1;  /* 1-u: (0, 1] */
}


/* The hash of a block's address: its bits above 32 choose its slot in
** the table, its top bits its bit in the filter. */
static uint64_t hash_of (uintptr_t addr) {
  return ((uint64_t)addr >> 4) * 0x9E3779B97F4A7C15ULL;
}


static uint32_t slot_of (const MemTrampoline *T, uintptr_t addr) {
  return (uint32_t)(hash_of(addr) >> 32) & (T->cap - 1);
}


static int filter_bit (uintptr_t addr) {
  return (int)(hash_of(addr) >> 58);  /* 0 to SPROF_MEM_FILTER - 1 */
}


static MemBlock *find_block (MemTrampoline *T, uintptr_t addr) {
  uint32_t i;
  if (T->count == 0) return NULL;
  for (i = slot_of(T, addr); T->blocks[i].addr != 0; i = (i + 1) & (T->cap - 1))
    if (T->blocks[i].addr == addr) return &T->blocks[i];
  return NULL;
}


static int grow_blocks (MemTrampoline *T) {
  uint32_t cap = T->cap ? 2 * T->cap : 64, i;
  MemBlock *old = T->blocks;
  uint32_t old_cap = T->cap;
  T->blocks = calloc(cap, sizeof *T->blocks);
  if (T->blocks == NULL) {
    T->blocks = old;
    return 0;
  }
  T->cap = cap;
  for (i = 0; i < old_cap; i++) {
    if (old[i].addr != 0) {
      uint32_t j = slot_of(T, old[i].addr);
      while (T->blocks[j].addr != 0) j = (j + 1) & (cap - 1);
      T->blocks[j] = old[i];
    }
  }
  free(old);
  return 1;
}


static void add_block (MemTrampoline *T, uintptr_t addr, double bytes,
                       double objects) {
  uint32_t i;
  int bit = filter_bit(addr);
  if (4 * (T->count + 1) > 3 * T->cap && !grow_blocks(T)) return;
  i = slot_of(T, addr);
  while (T->blocks[i].addr != 0) i = (i + 1) & (T->cap - 1);
  T->blocks[i].addr = addr;
  T->blocks[i].node = -1;
  T->blocks[i].bytes = bytes;
  T->blocks[i].objects = objects;
  T->count++;
  T->in_filter[bit]++;
  T->filter |= (uint64_t)1 << bit;
}


/* Removes a block, moving back the ones after it that belong before. */
static void drop_block (MemTrampoline *T, MemBlock *b) {
  uint32_t i = (uint32_t)(b - T->blocks), j = i;
  int bit = filter_bit(b->addr);
  if (--T->in_filter[bit] == 0) T->filter &= ~((uint64_t)1 << bit);
  for (;;) {
    uint32_t home;
    j = (j + 1) & (T->cap - 1);
    if (T->blocks[j].addr == 0) break;
    home = slot_of(T, T->blocks[j].addr);
    /* j may move to i if its home is not in (i, j], cyclically */
    if ((i < j) ? (home <= i || home > j) : (home <= i && home > j)) {
      T->blocks[i] = T->blocks[j];
      i = j;
    }
  }
  T->blocks[i].addr = 0;
  T->count--;
}


/* Empties the table of sampled blocks (keeping its memory). */
static void clear_blocks (MemTrampoline *T) {
  if (T->blocks) memset(T->blocks, 0, (size_t)T->cap * sizeof *T->blocks);
  T->count = 0;
  memset(T->in_filter, 0, sizeof T->in_filter);
  T->filter = 0;
}


/*
** The queue is full: every sample in it gets the same stack (the one
** the hook finds), so a new one adds to one of the same type, or to the
** first one, whose type is then unknown. Its block's stack is set after
** the others' (memory_record).
*/
static MemSample *merged_sample (Memory *M, int type) {
  int i;
  M->merged = 1;
  for (i = 0; i < M->npending; i++)
    if (M->pending[i].type == type) return &M->pending[i];
  M->pending[0].type = 0;
  return &M->pending[0];
}


static void sample (Profiler *P, void *block, size_t size, int type) {
  Memory *M = &P->memory;
  double p = -expm1(-(double)size / M->rate);  /* 1 - exp(-size/rate) */
  MemSample *s;
  add_block(M->tramp, (uintptr_t)block, (double)size / p, 1.0 / p);
  if (M->npending == SPROF_MEM_PENDING)  /* no hook for a while (a long */
    s = merged_sample(M, type);          /* C call, a finalizer) */
  else {
    s = &M->pending[M->npending++];
    s->addr = (uintptr_t)block;
    s->bytes = s->objects = 0;
    s->type = type;
  }
  s->bytes += (double)size / p;
  s->objects += 1.0 / p;
  profiler_enter(P);  /* not while the sampler thread arms */
  capture_arm(P);
  profiler_leave(P);
}


/*
** The allocator we wrap. When it is lauxlib's (luaL_newstate's, which
** most states use), what it does is done here: the wrapper then takes
** its place instead of adding a call to every allocation (and a new
** block is malloc's at once, as realloc(NULL, n) would make it).
*/
static inline void *call_wrapped (MemTrampoline *T, void *ptr, size_t osize,
                                  size_t nsize) {
  if (T->libc) {  /* lauxlib's l_alloc */
    if (nsize == 0) {
      free(ptr);
      return NULL;
    }
    return ptr == NULL ? malloc(nsize) : realloc(ptr, nsize);
  }
  return T->alloc(T->ud, ptr, osize, nsize);
}


/*
** lauxlib's allocator, learnt once from a scratch state (native.c's
** probes make one too; preload.c lets it pass unprofiled). A start that
** comes while it is being learnt (another thread, or that scratch state
** profiled after all) goes without: the calls are then passed on.
*/
static lua_Alloc lauxlib_alloc;
static atomic_int lauxlib_known;  /* 0: not yet, 1: being learnt, 2: known */

static lua_Alloc learn_lauxlib_alloc (void) {
  int unknown = 0;
  if (atomic_compare_exchange_strong(&lauxlib_known, &unknown, 1)) {
    lua_State *L = luaL_newstate();
    if (L != NULL) {
      void *ud;
      lauxlib_alloc = lua_getallocf(L, &ud);
      lua_close(L);
    }
    atomic_store(&lauxlib_known, 2);
  }
  return atomic_load(&lauxlib_known) == 2 ? lauxlib_alloc : NULL;
}


/* The slow paths, out of line: the common call is a few instructions
** and a jump, with no stack frame (the wrapper costs every allocation
** and free). */
static __attribute__((noinline)) void *sampled_alloc (MemTrampoline *T,
                                                      void *ptr, size_t osize,
                                                      size_t nsize) {
  Profiler *P = T->profiler;
  void *block = call_wrapped(T, ptr, osize, nsize);
  if (P == NULL) {  /* passing through (memory_stop) */
    T->left = INT64_MAX;
    return block;
  }
  T->left = next_gap(&P->memory);
  /* our own hook's allocations (lua_getinfo) are not the program's */
  if (block != NULL && !atomic_load(&P->in_hook))
    sample(P, block, nsize, ptr == NULL ? (int)osize : 0);
  return block;
}


/* A block that may be a sampled one is freed or moved: it is dropped
** from them first (a failed reallocation, which keeps its block, then
** drops it too: rare enough); then the call goes on as any other. */
static __attribute__((noinline)) void *forget_block (MemTrampoline *T,
                                                     void *ptr, size_t osize,
                                                     size_t nsize) {
  MemBlock *b = find_block(T, (uintptr_t)ptr);
  if (b != NULL) drop_block(T, b);
  if ((T->left -= (int64_t)nsize) <= 0)
    return sampled_alloc(T, ptr, osize, nsize);
  return call_wrapped(T, ptr, osize, nsize);
}


/*
** Every call: a block whose bit is clear in the filter was not sampled
** (no other memory read); 'left' is at least 1 here, so a free (nsize
** 0) never reaches the sampling.
*/
static void *sampling_alloc (void *ud, void *ptr, size_t osize,
                             size_t nsize) {
  MemTrampoline *T = ud;
  if (ptr != NULL && (T->filter >> filter_bit((uintptr_t)ptr) & 1))
    return forget_block(T, ptr, osize, nsize);
  if ((T->left -= (int64_t)nsize) <= 0)
    return sampled_alloc(T, ptr, osize, nsize);
  return call_wrapped(T, ptr, osize, nsize);
}


/* The allocator while collect_quietly asks for a failure. */
static void *failing_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  MemTrampoline *T = ud;
  if (T->fail_next && ptr == NULL && nsize > 0) {
    T->fail_next = 0;
    return NULL;
  }
  return sampling_alloc(ud, ptr, osize, nsize);
}


int memory_start (Profiler *P, lua_State *L) {
  Memory *M = &P->memory;
  MemTrampoline *T = aligned_alloc(_Alignof(MemTrampoline), sizeof *T);
  lua_Alloc lauxlib = learn_lauxlib_alloc();
  if (T == NULL) return 0;
  memset(T, 0, sizeof *T);
  if (M->rng == 0) M->rng = (uint64_t)(uintptr_t)P ^ capture_now(CLOCK_KIND_WALL)
                            ^ 0x9E3779B97F4A7C15ULL;
  M->npending = 0;
  M->merged = 0;
  T->left = next_gap(M);
  T->alloc = lua_getallocf(L, &T->ud);
  T->libc = lauxlib != NULL && T->alloc == lauxlib;
  T->profiler = P;
  M->tramp = T;
  lua_setallocf(L, sampling_alloc, T);
  return 1;
}


/* The stack of a sample: the frames, then what was allocated when its
** type is known ("[table]", "[string]"...). Returns its length. */
static int with_type (Profiler *P, const int *frames, int n, int type,
                      int *out) {
  static const char *const names[] = {
    NULL, NULL, NULL, NULL, "[string]", "[table]", "[function]",
    "[userdata]", "[thread]", "[upvalue]", "[prototype]"
  };
  memcpy(out, frames, (size_t)n * sizeof *out);
  if (type > 0 && type < (int)(sizeof names / sizeof names[0])
      && names[type] != NULL) {
    int f = session_frame(&P->session, FRAME_PSEUDO, names[type], "", 0,
                          NULL);
    if (f >= 0) out[n++] = f;
  }
  return n;
}


/*
** Gives the samples queued by the allocator the stack of now (frames,
** root first). Called by the hook.
*/
void memory_record (Profiler *P, const int *frames, int n) {
  Memory *M = &P->memory;
  MemTrampoline *T = M->tramp;
  int i, out[SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 9];
  if (T == NULL) {  /* stopped meanwhile: its samples went with it */
    M->npending = 0;
    M->merged = 0;
    return;
  }
  if (n > SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 8)
    n = SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 8;
  /* newest first: a block freed and its address sampled again since
     takes the stack of the newer sample */
  for (i = M->npending - 1; i >= 0; i--) {
    const MemSample *s = &M->pending[i];
    int m = with_type(P, frames, n, s->type, out);
    int node = session_add_stack(&P->session, out, m, 0, 0);
    MemBlock *b = find_block(T, s->addr);
    session_add_memory(&P->session, node, s->bytes, s->objects, 0);
    if (b != NULL && b->node < 0) b->node = node;
  }
  if (M->merged) {  /* the merged samples' blocks: this stack, no type */
    int node = session_add_stack(&P->session, frames, n, 0, 0);
    uint32_t j;
    for (j = 0; j < T->cap; j++)
      if (T->blocks[j].addr != 0 && T->blocks[j].node < 0)
        T->blocks[j].node = node;
    M->merged = 0;
  }
  M->npending = 0;
}


static int new_block (lua_State *L) {
  compat_newuserdata(L, 1, 0);
  return 0;
}


/*
** A full collection that runs no finalizers: they are the program's, to
** run when its own collections do (lua_gc would run them now, and a
** program that stopped its collector would see them run). Lua makes
** such a collection, an emergency one, when an allocation fails: the
** next one is made to fail once. If Lua cannot collect then, the
** allocation error is caught: garbage not yet collected counts as live.
*/
static void collect_quietly (lua_State *L, MemTrampoline *T) {
  void *ud;
  if (!lua_checkstack(L, 2) || lua_getallocf(L, &ud) != sampling_alloc
      || ud != T)
    return;  /* wrapped again since: leave the program's allocator be */
  lua_pushcfunction(L, new_block);
  T->fail_next = 1;
  lua_setallocf(L, failing_alloc, T);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
  T->fail_next = 0;
  if (lua_getallocf(L, &ud) == failing_alloc && ud == T)  /* else a
                                 finalizer wrapped it meanwhile: leave it */
    lua_setallocf(L, sampling_alloc, T);
}


/*
** Ends the sampling: a full collection first, run by L (the thread that
** called stop, or the host's between its calls into Lua), so that what
** is still allocated is what the program keeps; those blocks are the
** live heap. With L NULL (stopped by a finalizer, as the state closes or
** a running profiler is collected) or a suspended L there is none.
*/
void memory_stop (Profiler *P, lua_State *L) {
  Memory *M = &P->memory;
  MemTrampoline *T = M->tramp;
  void *ud;
  uint32_t i;
  if (T == NULL) return;
  if (L != NULL && lua_status(L) == LUA_OK) collect_quietly(L, T);
  M->npending = 0;  /* allocations of the collection's finalizers */
  M->merged = 0;
  for (i = 0; i < T->cap; i++)
    if (T->blocks[i].addr != 0 && T->blocks[i].node >= 0)
      session_add_memory(&P->session, T->blocks[i].node, T->blocks[i].bytes,
                         T->blocks[i].objects, 1);
  free(T->blocks);
  T->blocks = NULL;
  T->cap = 0;
  clear_blocks(T);
  T->profiler = NULL;
  T->left = INT64_MAX;  /* never sample again */
  M->tramp = NULL;
  if (lua_getallocf(P->main, &ud) == sampling_alloc && ud == T) {
    lua_setallocf(P->main, T->alloc, T->ud);
    free(T);
  }
  /* else the program wrapped ours: it stays, passing calls through */
}


/* Forgets the samples so far (the session was cleared while running). */
void memory_reset (Profiler *P) {
  Memory *M = &P->memory;
  M->npending = 0;
  M->merged = 0;
  if (M->tramp != NULL) clear_blocks(M->tramp);
}


/* A profiler is freed: it was stopped first (profiler_free), so this
** only makes sure no allocator still refers to it. */
void memory_free (Profiler *P) {
  if (P->memory.tramp != NULL) memory_stop(P, NULL);
}
