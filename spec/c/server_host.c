/*
** server_host.c — a host that knows nothing of sprof, links
** liblua5.4.so and does what servers do, for LD_PRELOAD=libsprof.so with
** SPROF_PERIOD or SPROF_SIGNAL (spec/periodic_spec.lua):
**   server_host fork SECONDS     a state, then fork: the child makes its
**                                own; each runs Lua for SECONDS of CPU
**   server_host states N SECONDS N states open at once, each running Lua
**   server_host resume SECONDS   coroutines resumed by the host, telling
**                                sprof with sprof_resuming (if loaded)
**   server_host thread SECONDS   a state made and run in a worker thread,
**                                closed from the main thread
**   server_host sigprof          its own SIGPROF handler, then a state;
**                                prints how many of 5 SIGPROFs it got
** Exits 0 when all went well; prints what it did on stdout.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

/* NAME_busy runs until 'seconds' of this thread's CPU time have passed
** (os.clock is the process's: with a worker thread it is the same here) */
static const char busy_code[] =
  "local name, seconds = ...\n"
  "local function work () local x = 0 for i = 1, 10000 do x = x + i %% 7 end"
  " return x end\n"
  "local t0 = os.clock()\n"
  "local %s_busy = function () repeat work() until os.clock() - t0 >= seconds end\n"
  "%s_busy()\n";


static lua_State *new_state (void) {
  lua_State *L = luaL_newstate();
  if (L != NULL) luaL_openlibs(L);
  return L;
}


/* Runs NAME_busy for 'seconds' of CPU in L; 0 when it went well. */
static int run_busy (lua_State *L, const char *name, double seconds) {
  char code[sizeof busy_code + 64];
  snprintf(code, sizeof code, busy_code, name, name);
  if (luaL_loadstring(L, code) != LUA_OK) goto failed;
  lua_pushstring(L, name);
  lua_pushnumber(L, seconds);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) goto failed;
  return 0;
failed:
  fprintf(stderr, "server_host: %s\n", lua_tostring(L, -1));
  return 1;
}


static int do_fork (double seconds) {
  lua_State *L = new_state();
  pid_t child;
  int status;
  if (L == NULL || run_busy(L, "parent", seconds) != 0) return 1;
  fflush(stdout);
  child = fork();
  if (child < 0) return 1;
  if (child == 0) {  /* the parent's state is there, but not ours to run */
    lua_State *mine = new_state();
    int failed = mine == NULL || run_busy(mine, "child", seconds) != 0;
    if (mine) lua_close(mine);
    exit(failed);  /* exit: its atexit handlers run, as a server's child */
  }
  if (waitpid(child, &status, 0) != child) return 1;
  printf("child %ld %d\n", (long)child, status);
  if (run_busy(L, "parent", seconds / 4) != 0) return 1;
  lua_close(L);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}


static int do_states (int n, double seconds) {
  lua_State **states = calloc((size_t)n, sizeof *states);
  int i, failed = 0;
  if (states == NULL) return 1;
  for (i = 0; i < n; i++) {
    states[i] = new_state();
    if (states[i] == NULL || run_busy(states[i], "state", seconds / n)) {
      failed = 1;
      break;
    }
  }
  for (i = 0; i < n; i++)
    if (states[i]) lua_close(states[i]);
  free(states);
  printf("states %d\n", n);
  return failed;
}


static double wall_now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


/* A request handler: a coroutine that yields between bits of work. */
static const char handler_code[] =
  "return function () while true do\n"
  "  local x = 0 for i = 1, 2000 do x = x + i % 7 end\n"
  "  coroutine.yield(x)\n"
  "end end\n";

static int do_resume (double seconds) {
  typedef void (*Resuming) (lua_State *co, lua_State *from);
  Resuming resuming = (Resuming)dlsym(RTLD_DEFAULT, "sprof_resuming");
  lua_State *L = new_state();
  double end = wall_now() + seconds;
  long resumes = 0;
  if (L == NULL || luaL_dostring(L, handler_code) != LUA_OK) return 1;
  while (wall_now() < end) {
    lua_State *co = lua_newthread(L);
    int i, nres;
    lua_pushvalue(L, -2);  /* the handler */
    lua_xmove(L, co, 1);
    for (i = 0; i < 50; i++) {
      if (resuming) resuming(co, L);
      if (lua_resume(co, L, 0, &nres) != LUA_YIELD) return 1;
      lua_pop(co, nres);
      resumes++;
    }
    lua_pop(L, 1);  /* the coroutine */
  }
  lua_close(L);
  printf("resumes %ld %s\n", resumes, resuming ? "told" : "untold");
  return 0;
}


static void *worker (void *arg) {
  double seconds = *(double *)arg;
  lua_State *L = new_state();
  if (L != NULL && run_busy(L, "worker", seconds) != 0) {
    lua_close(L);
    L = NULL;
  }
  return L;
}


static int do_thread (double seconds) {
  pthread_t t;
  void *L;
  if (pthread_create(&t, NULL, worker, &seconds) != 0) return 1;
  if (pthread_join(t, &L) != 0 || L == NULL) return 1;
  lua_close(L);  /* the worker has gone: its state is closed from here */
  L = new_state();  /* and the next one runs with the first one gone */
  if (L == NULL || run_busy(L, "main", seconds) != 0) return 1;
  lua_close(L);
  printf("thread\n");
  return 0;
}


static atomic_int sigprofs;

static void on_sigprof (int sig) {
  (void)sig;
  atomic_fetch_add(&sigprofs, 1);
}


static int do_sigprof (void) {
  struct sigaction sa;
  lua_State *L;
  int i;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigprof;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGPROF, &sa, NULL) != 0) return 1;
  L = new_state();  /* sprof's handler now comes first */
  if (L == NULL || run_busy(L, "main", 0.05) != 0) return 1;
  for (i = 0; i < 5; i++) raise(SIGPROF);
  lua_close(L);
  printf("sigprof %d\n", atomic_load(&sigprofs));
  return 0;
}


int main (int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "fork") == 0 && argc == 3) return do_fork(atof(argv[2]));
  if (strcmp(mode, "states") == 0 && argc == 4)
    return do_states(atoi(argv[2]), atof(argv[3]));
  if (strcmp(mode, "resume") == 0 && argc == 3) return do_resume(atof(argv[2]));
  if (strcmp(mode, "thread") == 0 && argc == 3) return do_thread(atof(argv[2]));
  if (strcmp(mode, "sigprof") == 0) return do_sigprof();
  fprintf(stderr, "usage: server_host fork|states N|resume|thread SECONDS"
                  " | sigprof\n");
  return 2;
}
