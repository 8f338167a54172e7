/*
** memory_host.c — a host that profiles memory through the C API
** (sprof_options.memory): the report of an allocating function, the
** allocator given back at sprof_stop (also when the host wrapped ours),
** and lua_close while memory is being profiled (clean under ASan).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include <sprof.h>

/* allocates for 0.1 s of CPU, keeping a little of it */
static const char *work =
  "local function hoard ()\n"
  "  local t0, keep = os.clock(), {}\n"
  "  repeat\n"
  "    for i = 1, 1000 do\n"
  "      keep[i % 500 + 1] = { string.rep('x', 100 + i % 50) .. i }\n"
  "    end\n"
  "  until os.clock() - t0 >= 0.1\n"
  "  return keep\n"
  "end\n"
  "kept = hoard()\n";

static const sprof_options memory = {.memory = 1};


static sprof_profiler *started (lua_State *L) {
  sprof_profiler *p = sprof_new(L, &memory);
  if (p == NULL || sprof_start(p) != 0) {
    fprintf(stderr, "memory_host: %s\n", sprof_error(p));
    exit(1);
  }
  return p;
}


static void run (lua_State *L) {
  if (luaL_dostring(L, work) != LUA_OK) {
    fprintf(stderr, "memory_host: %s\n", lua_tostring(L, -1));
    exit(1);
  }
}


/* the host's own wrapper, set while the profiler runs */
typedef struct Counting { lua_Alloc alloc; void *ud; size_t calls; } Counting;

static void *counting_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  Counting *c = ud;
  c->calls++;
  return c->alloc(c->ud, ptr, osize, nsize);
}


static void report_and_restore (void) {
  lua_State *L = luaL_newstate();
  void *ud, *ud_now;
  lua_Alloc f, f_now;
  sprof_profiler *p;
  char *text;
  size_t len;
  luaL_openlibs(L);
  f = lua_getallocf(L, &ud);
  p = started(L);
  run(L);
  sprof_stop(p);
  f_now = lua_getallocf(L, &ud_now);
  printf("allocator restored: %s\n", f_now == f && ud_now == ud ? "yes" : "no");
  text = sprof_render(p, "text", &len);
  printf("== text\n%s== end\n", text ? text : sprof_error(p));
  free(text);
  sprof_free(p);
  lua_close(L);
}


static void host_wraps_ours (void) {
  lua_State *L = luaL_newstate();
  Counting c = {NULL, NULL, 0};
  sprof_profiler *p;
  luaL_openlibs(L);
  p = started(L);
  c.alloc = lua_getallocf(L, &c.ud);
  lua_setallocf(L, counting_alloc, &c);
  run(L);
  sprof_stop(p);
  sprof_free(p);
  c.calls = 0;
  run(L);  /* through the host's wrapper, then ours, passing calls on */
  printf("host wrapper kept: %s\n",
         lua_getallocf(L, NULL) == counting_alloc && c.calls > 0 ? "yes" : "no");
  lua_close(L);
}


static void close_while_profiling (void) {
  lua_State *L = luaL_newstate();
  sprof_profiler *p;
  char *text;
  size_t len;
  luaL_openlibs(L);
  p = started(L);
  run(L);
  lua_close(L);
  printf("stop after close: %s\n", sprof_stop(p) != 0 ? "refused" : "accepted");
  text = sprof_render(p, "collapsed", &len);
  printf("hoard recorded: %s\n", text && strstr(text, "hoard") ? "yes" : "no");
  free(text);
  sprof_free(p);
}


int main (void) {
  report_and_restore();
  host_wraps_ours();
  close_while_profiling();
  return 0;
}
