/*
** sleepy.c — a test module whose functions block or burn time in C, and
** say whether a signal interrupted them (EINTR): what a real C module
** that sleeps, polls or reads would see.
*/
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "compat.h"  /* luaL_newlib on 5.1 */


static int push_result (lua_State *L, int rc) {
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, errno == EINTR ? "EINTR" : strerror(errno));
  return 2;
}


/* nanosleep once, not retried: EINTR surfaces as it would in a module. */
static int l_nanosleep (lua_State *L) {
  double secs = luaL_checknumber(L, 1);
  struct timespec ts;
  ts.tv_sec = (time_t)secs;
  ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
  return push_result(L, nanosleep(&ts, NULL));
}


static int l_poll (lua_State *L) {
  int ms = (int)luaL_checkinteger(L, 1);
  int rc = poll(NULL, 0, ms);
  return push_result(L, rc < 0 ? -1 : 0);
}


/* Reads n bytes from a file descriptor with one read(2). */
static int l_read (lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0) return push_result(L, -1);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}


/* Busy for 'secs' seconds of CPU time without returning to Lua. */
static int l_spin (lua_State *L) {
  double secs = luaL_checknumber(L, 1);
  struct timespec start, now;
  volatile unsigned long x = 0;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    int i;
    for (i = 0; i < 10000; i++) x += (unsigned long)i;
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((double)(now.tv_sec - start.tv_sec)
           + (now.tv_nsec - start.tv_nsec) / 1e9 < secs);
  lua_pushinteger(L, (lua_Integer)x);
  return 1;
}


/* The calling thread's CPU time: os.clock counts every thread of the
** process, the profiler's sampler thread too. */
static int l_thread_clock (lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}


/* Bytes of the C heap in use (malloc's, all arenas), in KB: unlike the
** resident size, it goes down again when memory is freed, so a transient
** peak (a profile being written) is not counted as growth. */
static int l_heap_kb (lua_State *L) {
  struct mallinfo2 m = mallinfo2();
  lua_pushnumber(L, (double)(m.uordblks + m.hblkhd) / 1024);
  return 1;
}


static const luaL_Reg functions[] = {
  {"nanosleep", l_nanosleep},
  {"poll", l_poll},
  {"read", l_read},
  {"spin", l_spin},
  {"thread_clock", l_thread_clock},
  {"heap_kb", l_heap_kb},
  {NULL, NULL}
};


int luaopen_sleepy (lua_State *L) {
  luaL_newlib(L, functions);
  return 1;
}
