/*
** two_threads.c — two lua_States in two threads, profiled at once by two
** profilers: each report must hold only its own thread's function.
** Prints both reports as collapsed stacks, each after a "== name" line.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include <sprof.h>

typedef struct Job {
  const char *name;   /* the hot Lua function of this thread */
  char *report;
} Job;


static void *run (void *arg) {
  Job *job = arg;
  lua_State *L = luaL_newstate();
  sprof_profiler *p;
  char code[512];
  size_t len;
  luaL_openlibs(L);
  snprintf(code, sizeof code,
           "local function %s () local x = 0 for i = 1, 2e5 do x = x + i %% 7 end return x end\n"
           "local t0 = os.clock() while os.clock() - t0 < 0.6 do %s() end", job->name, job->name);
  p = sprof_new(L, NULL);
  if (p == NULL || sprof_start(p) != 0 || luaL_dostring(L, code) != LUA_OK
      || sprof_stop(p) != 0) {
    fprintf(stderr, "two_threads: %s\n", p ? sprof_error(p) : lua_tostring(L, -1));
    exit(1);
  }
  job->report = sprof_render(p, "collapsed", &len);
  sprof_free(p);
  lua_close(L);
  return NULL;
}


int main (void) {
  Job jobs[2] = {{"alpha_work", NULL}, {"beta_work", NULL}};
  pthread_t threads[2];
  int i;
  for (i = 0; i < 2; i++) pthread_create(&threads[i], NULL, run, &jobs[i]);
  for (i = 0; i < 2; i++) pthread_join(threads[i], NULL);
  for (i = 0; i < 2; i++) printf("== %s\n%s", jobs[i].name, jobs[i].report);
  for (i = 0; i < 2; i++) free(jobs[i].report);
  return 0;
}
