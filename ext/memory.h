/*
** memory.h — sampled allocations: which stacks allocate, and what they
** keep (internal to the engine).
*/
#ifndef sprof_memory_h
#define sprof_memory_h

#include <stdint.h>

#include <lua.h>

/* Sampled allocations waiting for the hook to take their stack. */
#define SPROF_MEM_PENDING 64

/* The default mean number of bytes between sampled allocations. */
#define SPROF_MEM_RATE (512 * 1024)

/* A sampled allocation, as the allocator saw it. */
typedef struct MemSample {
  uintptr_t addr;       /* the block */
  double bytes;         /* what it stands for: size / P(sampled) */
  double objects;       /* 1 / P(sampled) */
  int type;             /* its Lua type (the allocator's osize tag), or 0 */
} MemSample;

/* A sampled block still allocated. */
typedef struct MemBlock {
  uintptr_t addr;       /* 0: an empty slot */
  int node;             /* its stack in the call tree; -1 until known */
  double bytes, objects;
} MemBlock;

/* Bits of the filter of sampled blocks' addresses (memory.c). */
#define SPROF_MEM_FILTER 64

/*
** The allocator we put between a Lua state and its own. It lives apart
** from the profiler and is never freed while installed: if the program
** wrapped the allocator again after us, we cannot take ours out, and it
** then only passes calls through (profiler NULL, nothing sampled).
** Every allocation and free of the program runs through it: what each
** call reads comes first, in one cache line, with no pointer to follow.
*/
typedef struct MemTrampoline {
  _Alignas(64) int64_t left;  /* bytes to go until the next sampled one */
  uint64_t filter;      /* bit b set: a sampled block hashing to b is live */
  lua_Alloc alloc;      /* the allocator we wrap */
  void *ud;
  int libc;             /* alloc is lauxlib's: call malloc, realloc, free */
  struct Profiler *profiler;  /* NULL: pass everything through */
  int fail_next;        /* fail the next new block (memory.c, collect) */
  /* the sampled blocks still allocated, by address (open addressing) */
  MemBlock *blocks;
  uint32_t cap, count;  /* cap: 0 or a power of 2 */
  uint32_t in_filter[SPROF_MEM_FILTER];  /* blocks under each filter bit */
} MemTrampoline;

typedef struct Memory {
  double rate;          /* mean bytes between sampled allocations */
  uint64_t rng;         /* state of the gaps' random numbers */
  MemTrampoline *tramp; /* installed in the state, or NULL */
  MemSample pending[SPROF_MEM_PENDING];
  int npending;
  int merged;           /* samples were merged: the queue was full */
} Memory;

struct Profiler;
int memory_start (struct Profiler *P, lua_State *L);  /* 0: no memory */
void memory_stop (struct Profiler *P, lua_State *L);
void memory_record (struct Profiler *P, const int *frames, int n);
void memory_reset (struct Profiler *P);
void memory_free (struct Profiler *P);

#endif
