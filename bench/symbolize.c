/*
** symbolize.c — how long naming native addresses takes: 10,000 distinct
** addresses spread over the text of the loaded objects (libc, liblua,
** libdw...), turned into frames (function starts from the unwind tables,
** as the hook does) and then named (libdw, as a stop does).
**   build/bench/symbolize [count]
*/
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "native.h"
#include "session.h"

typedef struct Span { uintptr_t lo, hi; } Span;
static Span spans[64];
static int nspans;


static int collect (struct dl_phdr_info *info, size_t size, void *data) {
  int i;
  (void)size; (void)data;
  for (i = 0; i < info->dlpi_phnum && nspans < 64; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && ph->p_memsz > 4096) {
      spans[nspans].lo = info->dlpi_addr + ph->p_vaddr;
      spans[nspans].hi = spans[nspans].lo + ph->p_memsz;
      nspans++;
    }
  }
  return 0;
}


static double seconds (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


int main (int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 10000, done = 0, i, out[256];
  NativeNames *N = native_names_new(0);  /* no hook of ours here */
  NativeCapture c;
  Session S;
  uint64_t total = 0;
  double t0, t1, t2;
  dl_iterate_phdr(collect, NULL);
  for (i = 0; i < nspans; i++) total += spans[i].hi - spans[i].lo;
  session_init(&S);
  t0 = seconds();
  while (done < count) {  /* captures of 100 addresses, no Lua frames */
    int host_from, lua_from, k;
    c.n = 0;
    c.truncated = 0;
    c.in_lua = 0;
    for (k = 0; k < 100 && done < count; k++, done++) {
      uint64_t at = (uint64_t)done * total / (uint64_t)count, base = 0;
      int s = 0;
      while (at - base >= spans[s].hi - spans[s].lo) {
        base += spans[s].hi - spans[s].lo;
        s++;
      }
      c.ip[c.n++] = spans[s].lo + (uintptr_t)(at - base);
    }
    native_merge(N, &S, &c, NULL, NULL, 0, out, 256, &host_from, &lua_from);
  }
  t1 = seconds();
  native_name_frames(N, &S);
  t2 = seconds();
  printf("%d addresses in %d objects: %d functions; starts %.3f s, names %.3f s, total %.3f s\n",
         count, nspans, S.nframes, t1 - t0, t2 - t1, t2 - t0);
  native_names_free(N);
  session_free(&S);
  return 0;
}
