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


static uint32_t slot_of (const Memory *M, uintptr_t addr) {
  return (uint32_t)(((uint64_t)addr >> 4) * 0x9E3779B97F4A7C15ULL >> 32)
         & (M->cap - 1);
}


static MemBlock *find_block (Memory *M, uintptr_t addr) {
  uint32_t i;
  if (M->count == 0) return NULL;
  for (i = slot_of(M, addr); M->blocks[i].addr != 0; i = (i + 1) & (M->cap - 1))
    if (M->blocks[i].addr == addr) return &M->blocks[i];
  return NULL;
}


static int grow_blocks (Memory *M) {
  uint32_t cap = M->cap ? 2 * M->cap : 64, i;
  MemBlock *old = M->blocks;
  uint32_t old_cap = M->cap;
  M->blocks = calloc(cap, sizeof *M->blocks);
  if (M->blocks == NULL) {
    M->blocks = old;
    return 0;
  }
  M->cap = cap;
  for (i = 0; i < old_cap; i++) {
    if (old[i].addr != 0) {
      uint32_t j = slot_of(M, old[i].addr);
      while (M->blocks[j].addr != 0) j = (j + 1) & (cap - 1);
      M->blocks[j] = old[i];
    }
  }
  free(old);
  return 1;
}


static void add_block (Memory *M, uintptr_t addr, double bytes,
                       double objects) {
  uint32_t i;
  if (4 * (M->count + 1) > 3 * M->cap && !grow_blocks(M)) return;
  i = slot_of(M, addr);
  while (M->blocks[i].addr != 0) i = (i + 1) & (M->cap - 1);
  M->blocks[i].addr = addr;
  M->blocks[i].node = -1;
  M->blocks[i].bytes = bytes;
  M->blocks[i].objects = objects;
  M->count++;
}


/* Removes a block, moving back the ones after it that belong before. */
static void drop_block (Memory *M, MemBlock *b) {
  uint32_t i = (uint32_t)(b - M->blocks), j = i;
  for (;;) {
    uint32_t home;
    j = (j + 1) & (M->cap - 1);
    if (M->blocks[j].addr == 0) break;
    home = slot_of(M, M->blocks[j].addr);
    /* j may move to i if its home is not in (i, j], cyclically */
    if ((i < j) ? (home <= i || home > j) : (home <= i && home > j)) {
      M->blocks[i] = M->blocks[j];
      i = j;
    }
  }
  M->blocks[i].addr = 0;
  M->count--;
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
  M->left = next_gap(M);
  add_block(M, (uintptr_t)block, (double)size / p, 1.0 / p);
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


/* The slow paths, out of line: the common call is a few instructions
** and a tail call, with no stack frame (the wrapper costs every
** allocation and free). */
static void *sampling_alloc (void *ud, void *ptr, size_t osize,
                             size_t nsize);


static __attribute__((noinline)) void *sampled_alloc (MemTrampoline *T,
                                                      void *ptr, size_t osize,
                                                      size_t nsize) {
  Profiler *P = T->profiler;
  void *block = T->alloc(T->ud, ptr, osize, nsize);
  /* our own hook's allocations (lua_getinfo) are not the program's */
  if (block != NULL && !atomic_load(&P->in_hook))
    sample(P, block, nsize, ptr == NULL ? (int)osize : 0);
  else
    P->memory.left = next_gap(&P->memory);
  return block;
}


/* A block that may be a sampled one is freed or moved: it is dropped
** from them first (a failed reallocation, which keeps its block, then
** drops it too: rare enough); then the call goes on as any other. */
static __attribute__((noinline)) void *forget_block (MemTrampoline *T,
                                                     void *ptr, size_t osize,
                                                     size_t nsize) {
  Memory *M = &T->profiler->memory;
  MemBlock *b = find_block(M, (uintptr_t)ptr);
  if (b != NULL) drop_block(M, b);
  if (nsize > 0 && (M->left -= (int64_t)nsize) <= 0)
    return sampled_alloc(T, ptr, osize, nsize);
  return T->alloc(T->ud, ptr, osize, nsize);
}


/* An empty home slot says at once that a block was not sampled. */
static void *sampling_alloc (void *ud, void *ptr, size_t osize,
                             size_t nsize) {
  MemTrampoline *T = ud;
  Profiler *P = T->profiler;
  if (P != NULL) {
    Memory *M = &P->memory;
    if (ptr != NULL && M->count > 0
        && M->blocks[slot_of(M, (uintptr_t)ptr)].addr != 0)
      return forget_block(T, ptr, osize, nsize);
    if (nsize > 0 && (M->left -= (int64_t)nsize) <= 0)
      return sampled_alloc(T, ptr, osize, nsize);
  }
  return T->alloc(T->ud, ptr, osize, nsize);
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
  MemTrampoline *T = malloc(sizeof *T);
  if (T == NULL) return 0;
  if (M->rng == 0) M->rng = (uint64_t)(uintptr_t)P ^ capture_now(CLOCK_KIND_WALL)
                            ^ 0x9E3779B97F4A7C15ULL;
  M->left = next_gap(M);
  M->npending = 0;
  M->merged = 0;
  T->alloc = lua_getallocf(L, &T->ud);
  T->profiler = P;
  T->fail_next = 0;
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
  int i, out[SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 9];
  if (n > SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 8)
    n = SPROF_MAX_DEPTH + SPROF_NATIVE_DEPTH + 8;
  /* newest first: a block freed and its address sampled again since
     takes the stack of the newer sample */
  for (i = M->npending - 1; i >= 0; i--) {
    const MemSample *s = &M->pending[i];
    int m = with_type(P, frames, n, s->type, out);
    int node = session_add_stack(&P->session, out, m, 0, 0);
    MemBlock *b = find_block(M, s->addr);
    session_add_memory(&P->session, node, s->bytes, s->objects, 0);
    if (b != NULL && b->node < 0) b->node = node;
  }
  if (M->merged) {  /* the merged samples' blocks: this stack, no type */
    int node = session_add_stack(&P->session, frames, n, 0, 0);
    uint32_t j;
    for (j = 0; j < M->cap; j++)
      if (M->blocks[j].addr != 0 && M->blocks[j].node < 0)
        M->blocks[j].node = node;
    M->merged = 0;
  }
  M->npending = 0;
}


static int new_block (lua_State *L) {
  lua_newuserdatauv(L, 1, 0);
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
  for (i = 0; i < M->cap; i++)
    if (M->blocks[i].addr != 0 && M->blocks[i].node >= 0)
      session_add_memory(&P->session, M->blocks[i].node, M->blocks[i].bytes,
                         M->blocks[i].objects, 1);
  T->profiler = NULL;
  if (lua_getallocf(P->main, &ud) == sampling_alloc && ud == T) {
    lua_setallocf(P->main, T->alloc, T->ud);
    free(T);
  }
  /* else the program wrapped ours: it stays, passing calls through */
  M->tramp = NULL;
  free(M->blocks);
  M->blocks = NULL;
  M->cap = M->count = 0;
}


/* Forgets the samples so far (the session was cleared while running). */
void memory_reset (Profiler *P) {
  Memory *M = &P->memory;
  M->npending = 0;
  M->merged = 0;
  if (M->blocks) memset(M->blocks, 0, (size_t)M->cap * sizeof *M->blocks);
  M->count = 0;
}


void memory_free (Profiler *P) {
  free(P->memory.blocks);
  P->memory.blocks = NULL;
  P->memory.cap = P->memory.count = 0;
}
