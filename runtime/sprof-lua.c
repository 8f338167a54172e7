/*
** sprof-lua — runs a Lua script under the profiler, as lua5.4 would run
** it, and writes the report when the script ends: normally, with an error,
** on Ctrl-C or through os.exit. The exit status is the script's.
** (Not named "sprof": glibc ships a /usr/bin/sprof.)
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../ext/profiler.h"
#include "../ext/sprof.h"
#include "history.h"

int luaopen_sprof (lua_State *L);

#define MAX_LOADS 64

static const char *progname = "sprof-lua";

typedef struct Args {
  const char *renderer;       /* text, html, collapsed, json, ... */
  const char *outfile;        /* NULL: stderr; "-": stdout */
  double interval;
  const char *clock;
  int show_all;
  int open;                   /* --open: show the report in a browser */
  int no_native;              /* Lua frames only */
  int show_internals;         /* the interpreter's own native frames */
  int host_frames;            /* native frames above the Lua root */
  const char *loads[MAX_LOADS];
  int nloads;
  int load_prev;              /* --load-prev: the latest kept session */
  int script;                 /* index of the script in argv, or 0 */
} Args;

/* The profiler and state of this run; atexit and signal handlers need them. */
static Profiler *profiler;
static lua_State *globalL;
static Args args;
static int started;   /* the script began to run: a report is due */
static int reported;


static void usage (FILE *f) {
  fprintf(f,
    "usage: %s [options] script.lua [args...]\n"
    "       %s [options] --load session.json [--load ...]\n"
    "       %s [options] --load-prev\n"
    "Runs a Lua 5.4 script under the sprof sampling profiler and writes a\n"
    "report of where the time went when it ends.\n\n"
    "options:\n"
    "  -r, --renderer NAME   text (default), html, collapsed, json,\n"
    "                        speedscope or pprof\n"
    "  -o, --outfile FILE    write the report to FILE ('-': stdout);\n"
    "                        default: stderr, so the script's stdout is untouched\n"
    "                        (an html report for a terminal goes to a temporary\n"
    "                        file, whose name is printed)\n"
    "      --open            open the html report in the browser (xdg-open)\n"
    "  -i, --interval SECS   time between samples (default 0.001)\n"
    "      --clock wall|cpu  wall time (default, includes waiting) or CPU time\n"
    "      --show-all        show library frames and frames under 1%%\n"
    "      --no-native       Lua frames only: no native (C) frames\n"
    "      --show-internals  show the interpreter's own native frames\n"
    "      --host-frames     show the native frames above the Lua root\n"
    "      --load FILE       re-render a saved JSON session (repeat to sum)\n"
    "      --load-prev       re-render the latest session of this command\n"
    "                        (it keeps the last 10 in $XDG_STATE_HOME/sprof)\n"
    "  -h, --help            this help\n"
    "      --version         print the version\n",
    progname, progname, progname);
}


static int bad_usage (const char *fmt, const char *what) {
  fprintf(stderr, "%s: ", progname);
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nTry '%s --help'.\n", progname);
  return 0;
}


static int known_renderer (const char *name) {
  static const char *const names[] = {
    "text", "html", "collapsed", "json", "speedscope", "pprof", NULL
  };
  int i;
  for (i = 0; names[i]; i++)
    if (strcmp(name, names[i]) == 0) return 1;
  return 0;
}


/* Options end at the script's name (or "--"); the rest is the script's. */
static int parse_args (int argc, char **argv, Args *a) {
  int i;
  a->renderer = "text";
  a->interval = 0.001;
  a->clock = "wall";
  for (i = 1; i < argc; i++) {
    const char *o = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(o, "--") == 0) { i++; break; }
    if (o[0] != '-' || strcmp(o, "-") == 0) break;
    if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
      usage(stdout);
      exit(EXIT_SUCCESS);
    }
    if (strcmp(o, "--version") == 0) {
      printf("sprof-lua %s (%s)\n", SPROF_VERSION, LUA_RELEASE);
      exit(EXIT_SUCCESS);
    }
    if (strcmp(o, "--show-all") == 0) { a->show_all = 1; continue; }
    if (strcmp(o, "--open") == 0) { a->open = 1; continue; }
    if (strcmp(o, "--no-native") == 0) { a->no_native = 1; continue; }
    if (strcmp(o, "--show-internals") == 0) { a->show_internals = 1; continue; }
    if (strcmp(o, "--host-frames") == 0) { a->host_frames = 1; continue; }
    if (strcmp(o, "--load-prev") == 0) { a->load_prev = 1; continue; }
    if (value == NULL) return bad_usage("option '%s' needs a value", o);
    if (strcmp(o, "-r") == 0 || strcmp(o, "--renderer") == 0) {
      if (!known_renderer(value)) {
        char why[256];
        snprintf(why, sizeof why, "unknown renderer '%%s' (use %s)",
                 report_formats());
        return bad_usage(why, value);
      }
      a->renderer = value;
    }
    else if (strcmp(o, "-o") == 0 || strcmp(o, "--outfile") == 0)
      a->outfile = value;
    else if (strcmp(o, "-i") == 0 || strcmp(o, "--interval") == 0) {
      char *end;
      a->interval = strtod(value, &end);
      if (*end != '\0' || end == value || !(a->interval > 0))
        return bad_usage("interval must be a positive number of seconds, "
                         "not '%s'", value);
    }
    else if (strcmp(o, "--clock") == 0) {
      if (strcmp(value, "wall") != 0 && strcmp(value, "cpu") != 0)
        return bad_usage("unknown clock '%s' (use wall or cpu)", value);
      a->clock = value;
    }
    else if (strcmp(o, "--load") == 0) {
      if (a->nloads == MAX_LOADS - 1) return bad_usage("too many --load%s", "");
      a->loads[a->nloads++] = value;
    }
    else return bad_usage("unknown option '%s'", o);
    i++;  /* the option's value */
  }
  a->script = i < argc ? i : 0;
  if (a->script == 0 && a->nloads == 0 && !a->load_prev)
    return bad_usage("no script given%s", "");
  if (a->script != 0 && (a->nloads > 0 || a->load_prev))
    return bad_usage("give a script or --load, not both%s", "");
  if (a->open && strcmp(a->renderer, "html") != 0)
    return bad_usage("--open shows an html report: add -r html%s", "");
  if (a->open && a->outfile && strcmp(a->outfile, "-") == 0)
    return bad_usage("--open needs the report in a file, not on stdout%s", "");
  if (strcmp(a->renderer, "pprof") == 0
      && isatty(a->outfile == NULL ? STDERR_FILENO
                : strcmp(a->outfile, "-") == 0 ? STDOUT_FILENO : -1))
    return bad_usage("pprof is gzipped binary: write it to a file with -o%s", "");
  return 1;
}


/* Fails early, before the script runs, if the report cannot be written. */
static int outfile_writable (const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (strcmp(path, "-") == 0) return 1;
  if (access(path, F_OK) == 0) return access(path, W_OK) == 0;
  if (slash == NULL) return access(".", W_OK) == 0;
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  return access(slash == path ? "/" : dir, W_OK) == 0;
}


/* A program on PATH, or NULL. */
static const char *find_program (const char *name, char *path, size_t len) {
  const char *dirs = getenv("PATH");
  while (dirs && *dirs) {
    const char *end = strchr(dirs, ':');
    size_t n = end ? (size_t)(end - dirs) : strlen(dirs);
    snprintf(path, len, "%.*s/%s", (int)n, n ? dirs : ".", name);
    if (access(path, X_OK) == 0) return path;
    dirs = end ? end + 1 : NULL;
  }
  return NULL;
}


/* --open: hands the report to xdg-open and does not wait for it (it may
** run the browser in the foreground). */
static void open_report (const char *file) {
  char opener[4096];
  pid_t pid;
  if (find_program("xdg-open", opener, sizeof opener) == NULL) {
    fprintf(stderr, "%s: cannot open the report: xdg-open not found; "
            "open %s in a browser\n", progname, file);
    return;
  }
  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    setsid();
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    execl(opener, "xdg-open", file, (char *)NULL);
    _exit(127);
  }
  if (pid < 0)
    fprintf(stderr, "%s: cannot open the report: %s; open %s in a browser\n",
            progname, strerror(errno), file);
}


/*
** An html report with no -o, for a terminal or for --open, goes to a new
** file in $TMPDIR written through the descriptor mkstemp made, then gets
** its .html suffix. Returns 0 if that failed (the report then goes to
** stderr as usual).
*/
static int write_temp_report (const RenderOptions *o) {
  static char path[4096 + 8];
  char tmp[4096];
  const char *dir = getenv("TMPDIR"), *error = NULL;
  size_t len;
  char *text = profiler_render(profiler, args.renderer, o, &len, &error);
  int fd, ok;
  if (text == NULL) return 0;
  snprintf(tmp, sizeof tmp, "%s/sprof-XXXXXX", dir && *dir ? dir : "/tmp");
  fd = mkstemp(tmp);
  ok = fd >= 0;
  if (ok) {
    size_t done = 0;
    while (ok && done < len) {
      ssize_t n = write(fd, text + done, len - done);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) done += (size_t)n;
    }
    ok = close(fd) == 0 && ok;
    snprintf(path, sizeof path, "%s.html", tmp);
    ok = ok && rename(tmp, path) == 0;
    if (!ok) unlink(tmp);
  }
  free(text);
  if (!ok) {
    fprintf(stderr, "%s: cannot write a temporary file in %s: %s\n", progname,
            dir && *dir ? dir : "/tmp", strerror(errno));
    return 0;
  }
  if (args.open) {
    fprintf(stderr, "%s: report saved to %s\n", progname, path);
    open_report(path);
  }
  else
    fprintf(stderr, "%s: stderr is a terminal, so the report was saved to %s\n",
            progname, path);
  return 1;
}


/* Writes the report once; on failure it goes to stderr instead. */
static void write_report (void) {
  RenderOptions o = report_default_options();
  const char *error = NULL;
  char *text;
  size_t len;
  FILE *to;
  if (reported || !started) return;
  reported = 1;
  if (profiler_running(profiler)) profiler_stop(profiler);
  if (args.script) history_save(profiler, progname);  /* for --load-prev */
  to = args.outfile == NULL ? stderr
       : strcmp(args.outfile, "-") == 0 ? stdout : NULL;
  o.show_all = args.show_all;
  o.show_internals = args.show_internals;
  o.show_host = args.host_frames;
  o.color = to != NULL && strcmp(args.renderer, "text") == 0
            && isatty(fileno(to)) && getenv("NO_COLOR") == NULL;
  if (args.outfile == NULL && strcmp(args.renderer, "html") == 0
      && (args.open || isatty(fileno(stderr))) && write_temp_report(&o))
    return;
  if (to == NULL) {
    error = profiler_write(profiler, args.outfile, args.renderer, &o);
    if (error == NULL) {
      if (args.open) open_report(args.outfile);
      return;
    }
    fprintf(stderr, "%s: %s; the report follows on stderr\n", progname,
            error + strlen("sprof: "));
    to = stderr;
  }
  text = profiler_render(profiler, args.renderer, &o, &len, &error);
  if (text == NULL) {
    fprintf(stderr, "%s: %s\n", progname, error);
    return;
  }
  fflush(stdout);
  fwrite(text, 1, len, to);
  fflush(to);
  free(text);
}


/* ---------------------------------------------- running like lua.c does */

static void lstop (lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}


/* Ctrl-C: stop the script at its next instruction, as lua.c does. */
static void laction (int sig) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(sig, SIG_DFL);
  lua_sethook(globalL, lstop, flag, 1);
}


static int msghandler (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}


static int docall (lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  signal(SIGINT, laction);
  status = lua_pcall(L, narg, nres, base);
  signal(SIGINT, SIG_DFL);
  lua_remove(L, base);
  return status;
}


static int report_error (lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}


/* arg: the script at 0, its arguments at 1.., what came before below 0. */
static void create_arg_table (lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}


/* LUA_INIT_5_4 or LUA_INIT, as lua.c reads them */
static int run_init (lua_State *L) {
  const char *name = "=LUA_INIT_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR;
  const char *init = getenv(name + 1);
  int status;
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') status = luaL_loadfile(L, init + 1);
  else status = luaL_loadbuffer(L, init, strlen(init), name);
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report_error(L, status);
}


/* A finalizer that runs when os.exit(code, true) closes the state: stop
** while the state is still whole. */
static int on_state_close (lua_State *L) {
  (void)L;
  if (profiler && profiler_running(profiler)) profiler_stop(profiler);
  return 0;
}


static void watch_state_close (lua_State *L) {
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, on_state_close);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  luaL_ref(L, LUA_REGISTRYINDEX);
}


static int pmain (lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  const char *script = argv[args.script];
  const char *error;
  int status, n;
  luaL_checkversion(L);
  lua_gc(L, LUA_GCGEN, 0, 0);  /* as lua.c: generational mode */
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_sprof);  /* one engine in the process */
  lua_setfield(L, -2, "sprof");
  lua_pop(L, 1);
  watch_state_close(L);
  create_arg_table(L, argv, argc, args.script);
  if (run_init(L) != LUA_OK) return 0;
  if (strcmp(script, "-") == 0) script = NULL;
  status = luaL_loadfile(L, script);
  if (status != LUA_OK) {
    report_error(L, status);
    return 0;
  }
  for (n = args.script + 1; n < argc; n++) lua_pushstring(L, argv[n]);
  n = argc - args.script - 1;
  error = profiler_start(profiler, L);
  if (error) {
    fprintf(stderr, "%s: %s\n", progname, error);
    return 0;
  }
  started = 1;
  status = docall(L, n, LUA_MULTRET);
  profiler_stop(profiler);
  write_report();
  if (report_error(L, status) != LUA_OK) return 0;
  lua_pushboolean(L, 1);
  return 1;
}


static int render_loads (void) {
  int i;
  const char *error = NULL;
  profiler = profiler_new(0.001, "wall", 0, &error);
  if (profiler == NULL) {
    fprintf(stderr, "%s: %s\n", progname, error);
    return EXIT_FAILURE;
  }
  started = 1;
  if (args.load_prev) {
    static char latest[4096];
    char why[4200];
    if (!history_latest(latest, sizeof latest, why, sizeof why)) {
      fprintf(stderr, "%s: --load-prev: %s\n", progname, why);
      return EXIT_FAILURE;
    }
    args.loads[args.nloads++] = latest;  /* MAX_LOADS keeps a slot free */
  }
  for (i = 0; i < args.nloads; i++) {
    error = profiler_load(profiler, args.loads[i]);
    if (error) {
      fprintf(stderr, "%s: %s\n", progname, error + strlen("sprof: "));
      return EXIT_FAILURE;
    }
  }
  write_report();
  return EXIT_SUCCESS;
}


int main (int argc, char **argv) {
  const char *error = NULL;
  lua_State *L;
  int status, ok;
  if (argv[0] && argv[0][0]) progname = argv[0];
  if (!parse_args(argc, argv, &args)) return 2;
  if (args.outfile && !outfile_writable(args.outfile)) {
    fprintf(stderr, "%s: cannot write the report to '%s': %s\n", progname,
            args.outfile, strerror(errno));
    return 2;
  }
  if (args.nloads > 0 || args.load_prev) return render_loads();
  profiler = profiler_new(args.interval, args.clock, !args.no_native, &error);
  if (profiler == NULL) {
    fprintf(stderr, "%s: %s\n", progname, error + strlen("sprof: "));
    return 2;
  }
  profiler_set_program(profiler, argv[args.script]);
  atexit(write_report);  /* os.exit ends the script without returning here */
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = lua_toboolean(L, -1);
  report_error(L, status);
  write_report();
  lua_close(L);
  return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
