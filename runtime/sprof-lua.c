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
#include "../report/diff.h"
#include "history.h"

int luaopen_sprof (lua_State *L);

/* the interpreter this one stands in for, as its users call it */
#if defined(SPROF_LUAJIT)
#define LUA_PROGRAM "luajit"
#elif LUA_VERSION_NUM == 504
#define LUA_PROGRAM "lua5.4"
#elif LUA_VERSION_NUM == 503
#define LUA_PROGRAM "lua5.3"
#else
#define LUA_PROGRAM "lua5.1"
#endif

#define MAX_LOADS 64

static const char *progname = "sprof-lua";

typedef struct Args {
  const char *renderer;       /* text, html, ...; NULL: from the outfile */
  const char *outfile;        /* NULL: stderr; "-": stdout */
  double interval;
  const char *clock;
  int show_all;
  int open;                   /* --open: show the report in a browser */
  int no_native;              /* Lua frames only */
  int show_internals;         /* the interpreter's own native frames */
  int host_frames;            /* native frames above the Lua root */
  int memory;                 /* --memory: profile allocations too */
  double memory_rate;         /* mean bytes between samples; 0: default */
  int view;                   /* --memory-view: a ReportView */
  const char *loads[MAX_LOADS];
  int nloads;
  int load_prev;              /* --load-prev: the latest kept session */
  const char *diff_before;    /* --diff BEFORE AFTER: compare two sessions */
  const char *diff_after;
  int diff_absolute;          /* --diff-absolute: seconds, not shares */
  int nlua;                   /* how many -e, -l and -W */
  int has_e;                  /* some -e */
  int version;                /* -v: print Lua's version first */
  int no_env;                 /* -E: no LUA_INIT, LUA_PATH, LUA_CPATH */
  int options_end;            /* index in argv where the options end */
  int script;                 /* index of the script in argv, or 0 */
  int from_stdin;             /* the script is read from stdin */
  int run;                    /* Lua code runs (not --load, not --diff) */
} Args;

/* The profiler and state of this run; atexit and signal handlers need them. */
static Profiler *profiler;
static lua_State *globalL;
static Args args;
static int started;   /* Lua code began to run: a report is due */
static int reported;
static int report_failed;  /* the report could not be rendered */


static void usage (FILE *f) {
  fprintf(f,
    "usage: %s [options] [lua options] [script [args...]]\n"
    "       %s [options] --load session.json [--load ...]\n"
    "       %s [options] --load-prev\n"
    "       %s [options] --diff before.json after.json\n"
    "Runs Lua code as " LUA_PROGRAM " would run it, under the sprof sampling\n"
    "profiler, and writes a report of where the time went (and with --memory,\n"
    "the memory) when it ends.\n\n"
    "options:\n"
    "  -r, --renderer NAME   text, html, collapsed, json, speedscope or pprof;\n"
    "                        default: from the -o file's extension, else text\n"
    "  -o, --outfile FILE    write the report to FILE ('-': stdout); default:\n"
    "                        stderr, so the script's stdout is untouched (an\n"
    "                        html report for a terminal goes to a temporary\n"
    "                        file, whose name is printed). FILE's extension\n"
    "                        picks the renderer: .html .htm, .json,\n"
    "                        .speedscope.json, .pb.gz .pb .pprof,\n"
    "                        .collapsed .folded; anything else is text\n"
    "      --open            open the html report in the browser (xdg-open)\n"
    "  -i, --interval SECS   time between samples (default 0.001)\n"
    "      --clock wall|cpu  wall time (default, includes waiting) or CPU time\n"
    "      --show-all        show library frames and frames under 1%%\n"
    "      --no-native       Lua frames only: no native (C) frames\n"
    "      --show-internals  show the interpreter's own native frames\n"
    "      --host-frames     show the native frames above the Lua root\n"
    "      --memory          profile memory too: the reports weigh stacks by\n"
    "                        bytes allocated (sampled, with full stacks)\n"
    "      --memory-rate BYTES\n"
    "                        mean bytes between sampled allocations\n"
    "                        (default 524288); implies --memory\n"
    "      --memory-view alloc|live|time\n"
    "                        what text, collapsed and speedscope reports\n"
    "                        weigh: bytes allocated (default with --memory),\n"
    "                        bytes still live at the end, or time\n"
    "      --load FILE       re-render a saved JSON session (repeat to sum)\n"
    "      --load-prev       re-render the latest session of this command\n"
    "                        (it keeps the last 10 in $XDG_STATE_HOME/sprof)\n"
    "      --diff BEFORE AFTER\n"
    "                        compare two saved JSON sessions: per function and\n"
    "                        per call path, before, after and the change,\n"
    "                        largest increase first (text or html)\n"
    "      --diff-absolute   compare seconds (bytes), not shares of each run\n"
    "  -h, --help            this help\n"
    "      --version         print the version\n\n"
    "lua options, as " LUA_PROGRAM " takes them (mixed freely with the above):\n"
    "  -e stat               execute string 'stat'\n"
    "  -l mod                require library 'mod' into global 'mod'\n"
    "  -l g=mod              require library 'mod' into global 'g'\n"
    "  -v                    show Lua's version information\n"
    "  -E                    ignore environment variables (LUA_INIT, LUA_PATH...)\n"
#ifdef SPROF_LUAJIT
    "  -j cmd                perform LuaJIT control command (-joff, -jv...)\n"
    "  -O[opt]               control LuaJIT optimizations (-O3, -O-fold...)\n"
#endif
    "  -W                    turn warnings on\n"
    "  --                    stop handling options\n"
    "  -                     stop handling options and execute stdin\n"
    "The profile covers -e, -l and the script. With no script and no -e, stdin\n"
    "is run when it is not a terminal. There is no interactive mode: -i is the\n"
    "interval.\n",
    progname, progname, progname, progname);
}


static int bad_usage (const char *fmt, const char *what) {
  fprintf(stderr, "%s: ", progname);
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nTry '%s --help'.\n", progname);
  return 0;
}


static int set_renderer (Args *a, const char *value) {
  if (!report_known_format(value)) {
    char why[256];
    snprintf(why, sizeof why, "unknown renderer '%%s' (use %s)",
             report_formats());
    return bad_usage(why, value);
  }
  a->renderer = value;
  return 1;
}


static int set_outfile (Args *a, const char *value) {
  a->outfile = value;
  return 1;
}


static int set_interval (Args *a, const char *value) {
  char *end;
  a->interval = strtod(value, &end);
  if (*end != '\0' || end == value || !(a->interval > 0))
    return bad_usage("interval must be a positive number of seconds, "
                     "not '%s' (-i is the interval: there is no "
                     "interactive mode)", value);
  return 1;
}


static int set_clock (Args *a, const char *value) {
  if (strcmp(value, "wall") != 0 && strcmp(value, "cpu") != 0)
    return bad_usage("unknown clock '%s' (use wall or cpu)", value);
  a->clock = value;
  return 1;
}


static int set_memory_rate (Args *a, const char *value) {
  char *end;
  a->memory_rate = strtod(value, &end);
  if (*end != '\0' || end == value || !(a->memory_rate >= 1)
      || a->memory_rate > 1e12)
    return bad_usage("memory rate must be a positive number of bytes, "
                     "not '%s' (e.g. 524288)", value);
  a->memory = 1;
  return 1;
}


static int set_memory_view (Args *a, const char *value) {
  a->view = report_view_of(value);
  if (a->view < 0)
    return bad_usage("unknown memory view '%s' (use alloc, live or time)",
                     value);
  return 1;
}


static int add_load (Args *a, const char *value) {
  if (a->nloads == MAX_LOADS - 1) return bad_usage("too many --load%s", "");
  a->loads[a->nloads++] = value;
  return 1;
}


/* --diff BEFORE AFTER: the two sessions, the next two arguments. */
static int set_diff (Args *a, int left, char **next) {
  if (left < 2 || next[0][0] == '-' || next[1][0] == '-' || a->diff_before)
    return bad_usage("--diff compares two saved sessions: "
                     "--diff before.json after.json%s", "");
  a->diff_before = next[0];
  a->diff_after = next[1];
  return 1;
}


/* --diff takes no code to run and no other sessions. 0: bad usage. */
static int check_diff (const Args *a) {
  if (a->diff_before == NULL) {
    if (a->diff_absolute)
      return bad_usage("--diff-absolute goes with --diff before.json "
                       "after.json%s", "");
    return 1;
  }
  if (a->nloads > 0 || a->load_prev)
    return bad_usage("--diff compares the two sessions it names: "
                     "give it no --load or --load-prev%s", "");
  if (a->script || a->nlua > 0 || a->version || a->no_env)
    return bad_usage("--diff compares two saved sessions: give it no "
                     "script and no lua options%s", "");
  if (a->memory)
    return bad_usage("--diff compares two saved sessions: --memory and "
                     "--memory-rate are for a run (--memory-view picks the "
                     "view)%s", "");
  return 1;
}


/* Our options that take a value (the next argument, whatever it is) */
typedef struct ValueOption {
  const char *short_name;     /* NULL: long name only */
  const char *long_name;
  int (*set) (Args *a, const char *value);  /* 0 for bad usage */
} ValueOption;

static const ValueOption value_options[] = {
  {"-r", "--renderer", set_renderer},
  {"-o", "--outfile", set_outfile},
  {"-i", "--interval", set_interval},
  {NULL, "--clock", set_clock},
  {NULL, "--memory-rate", set_memory_rate},
  {NULL, "--memory-view", set_memory_view},
  {NULL, "--load", add_load},
  {NULL, NULL, NULL}
};


static const ValueOption *value_option (const char *o) {
  const ValueOption *v;
  for (v = value_options; v->long_name; v++)
    if ((v->short_name && strcmp(o, v->short_name) == 0)
        || strcmp(o, v->long_name) == 0)
      return v;
  return NULL;
}


/*
** lua5.4's own options: -e stat, -l mod (also -estat, -lmod), -v, -E, -W.
** Returns how many arguments it took (1 or 2), 0 if O is none of them,
** -1 for bad usage.
*/
static int lua_option (Args *a, const char *o, const char *next) {
  int option = o[1];
  switch (option) {
    case 'v': case 'E': case 'W':  /* (-W: warnings, from 5.4 on) */
      if (o[2] != '\0' || (option == 'W' && LUA_VERSION_NUM < 504)) return 0;
      if (option == 'v') a->version = 1;
      else if (option == 'E') a->no_env = 1;
      else a->nlua++;
      return 1;
#ifdef SPROF_LUAJIT
    case 'O':  /* luajit's -O[level|flag|param=value,...] */
      a->nlua++;
      return 1;
    case 'j':
#endif
    case 'e': case 'l': {
      int took = 1;
      const char *value = o + 2;
      if (*value == '\0') {  /* the statement or module is the next one */
        if (next == NULL || next[0] == '-') {
          bad_usage("'%s' needs an argument", o);
          return -1;
        }
        value = next;
        took = 2;
      }
      if (option == 'e') a->has_e = 1;
      a->nlua++;
      return took;
    }
    default:
      return 0;
  }
}


/* Options end at the script's name, "-" or "--"; the rest is the script's. */
static int parse_args (int argc, char **argv, Args *a) {
  int i, dashes = 0;
  a->interval = 0.001;
  a->clock = "wall";
  for (i = 1; i < argc; i++) {
    const char *o = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    const ValueOption *v;
    int took;
    if (strcmp(o, "--") == 0) { dashes = 1; break; }
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
    if (strcmp(o, "--memory") == 0) { a->memory = 1; continue; }
    if (strcmp(o, "--diff-absolute") == 0) { a->diff_absolute = 1; continue; }
    if (strcmp(o, "--diff") == 0) {
      if (!set_diff(a, argc - i - 1, argv + i + 1)) return 0;
      i += 2;
      continue;
    }
    took = lua_option(a, o, value);
    if (took < 0) return 0;
    if (took > 0) { i += took - 1; continue; }
    v = value_option(o);
    if (v == NULL) return bad_usage("unknown option '%s'", o);
    if (value == NULL) return bad_usage("option '%s' needs a value", o);
    if (!v->set(a, value)) return 0;
    i++;  /* the option's value */
  }
  a->options_end = i;
  i += dashes;
  if (i < argc) {
    a->script = i;
    a->from_stdin = !dashes && strcmp(argv[i], "-") == 0;
  }
  if (!check_diff(a)) return 0;
  a->run = a->nloads == 0 && !a->load_prev && a->diff_before == NULL;
  if (!a->run && (a->script || a->nlua > 0 || a->version || a->no_env))
    return bad_usage("--load re-renders a saved session: give it no script "
                     "and no lua options%s", "");
  if (!a->run && a->memory)
    return bad_usage("--load re-renders a saved session: --memory and "
                     "--memory-rate are for a run (--memory-view picks the "
                     "view)%s", "");
  /* as lua5.4: with no script and no -e (or -v), stdin is the script */
  if (a->run && a->script == 0 && !a->has_e && !a->version) {
    if (isatty(STDIN_FILENO))
      return bad_usage("no script given: name a script, give -e stat, or '-' "
                       "to read stdin (there is no interactive mode)%s", "");
    a->from_stdin = 1;
  }
  if (a->renderer == NULL)
    a->renderer = a->outfile ? report_format_of(a->outfile) : "text";
  if (a->diff_before && strcmp(a->renderer, "text") != 0
      && strcmp(a->renderer, "html") != 0)
    return bad_usage("--diff writes text or html, not %s (-r text, -r html, "
                     "or -o FILE.html)", a->renderer);
  if (a->open && strcmp(a->renderer, "html") != 0)
    return bad_usage("--open shows an html report: add -r html or "
                     "-o FILE.html%s", "");
  if (a->open && a->outfile && strcmp(a->outfile, "-") == 0)
    return bad_usage("--open needs the report in a file, not on stdout%s", "");
  if (strcmp(a->renderer, "pprof") == 0
      && isatty(a->outfile == NULL ? STDERR_FILENO
                : strcmp(a->outfile, "-") == 0 ? STDOUT_FILENO : -1))
    return bad_usage("pprof is gzipped binary: write it to a file with -o%s", "");
  return 1;
}


/*
** As lua.c's runargs, walks the options again (parse_args checked them)
** for the next -e, -l or -W from argv[*i] on: returns its letter, with the
** statement or [g=]module in *value (NULL for -W), or 0 when none is left.
*/
static int next_lua_option (char **argv, int *i, const char **value) {
  while (*i < args.options_end) {
    const char *o = argv[(*i)++];
    if (value_option(o)) (*i)++;  /* skip its value */
    else if (o[1] == 'e' || o[1] == 'l' || o[1] == 'j') {
      *value = o[2] != '\0' ? o + 2 : argv[(*i)++];
      return o[1];
    }
    else if (o[1] == 'O') {
      *value = o + 2;
      return 'O';
    }
    else if (o[1] == 'W') {
      *value = NULL;
      return 'W';
    }
  }
  return 0;
}


/* The program's name in the report: the script, or what -e and -l ran. */
static const char *program_name (char **argv) {
  static char name[128];
  size_t len = 0;
  const char *value;
  int i = 1, n, option;
  if (args.from_stdin) return "stdin";
  if (args.script) return argv[args.script];
  for (n = 0; len < sizeof name
              && (option = next_lua_option(argv, &i, &value)) != 0; n++)
    len += (size_t)snprintf(name + len, sizeof name - len, "%s-%c%s%s",
                            n > 0 ? " " : "", option,
                            value ? " " : "", value ? value : "");
  if (len >= sizeof name) strcpy(name + sizeof name - 4, "...");
  for (len = 0; name[len]; len++)  /* one line in the report's header */
    if ((unsigned char)name[len] < ' ') name[len] = ' ';
  return name;
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
static int write_temp_report (const char *text, size_t len) {
  static char path[4096 + 8];
  char tmp[4096];
  const char *dir = getenv("TMPDIR");
  int fd, ok;
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


/* Where the report goes: stderr, stdout (-o -), or NULL for the -o file. */
static FILE *report_stream (void) {
  return args.outfile == NULL ? stderr
         : strcmp(args.outfile, "-") == 0 ? stdout : NULL;
}


/* The options the report is rendered with, for the stream it goes to. */
static RenderOptions report_options (FILE *to) {
  RenderOptions o = report_default_options();
  o.show_all = args.show_all;
  o.show_internals = args.show_internals;
  o.show_host = args.host_frames;
  o.view = args.view;
  o.color = to != NULL && strcmp(args.renderer, "text") == 0
            && isatty(fileno(to)) && getenv("NO_COLOR") == NULL;
  return o;
}


/* An html report with no -o, for a terminal or for --open: to a file. */
static int to_temp_file (void) {
  return args.outfile == NULL && strcmp(args.renderer, "html") == 0
         && (args.open || isatty(fileno(stderr)));
}


/* Writes the report once; on failure it goes to stderr instead. */
static void write_report (void) {
  RenderOptions o;
  const char *error = NULL;
  char *text;
  size_t len;
  FILE *to;
  if (reported || !started) return;
  reported = 1;
  if (profiler_running(profiler)) profiler_stop(profiler);
  if (args.run) history_save(profiler, progname);  /* for --load-prev */
  to = report_stream();
  o = report_options(to);
  if (to_temp_file()) {
    int saved;
    text = profiler_render(profiler, args.renderer, &o, &len, &error);
    saved = text != NULL && write_temp_report(text, len);
    free(text);
    if (saved) return;
  }
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
    fprintf(stderr, "%s: %s\n", progname, error + strlen("sprof: "));
    report_failed = 1;
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


/* Lua code from the command line starts the profiler when it first runs;
** the report is due from then on. */
static int profiled_call (lua_State *L, int narg, int nres) {
  if (!started) {
    const char *error = profiler_start(profiler, L);
    if (error) {
      lua_pop(L, narg + 1);
      lua_pushstring(L, error + strlen("sprof: "));
      return LUA_ERRRUN;
    }
    started = 1;
  }
  return docall(L, narg, nres);
}


/* A failure ends the run: the report is written first, so that the error
** is the last thing on stderr, as with lua5.4. */
static int report_failure (lua_State *L, int status) {
  if (status != LUA_OK) write_report();
  return report_error(L, status);
}


/* arg: the script at 0, its arguments at 1.., what came before below 0;
** with no script, the command itself at 0. */
static void create_arg_table (lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}


/* LUA_INIT_5_4 or LUA_INIT, as lua.c reads them (not profiled); 5.1
** reads only LUA_INIT */
static int run_init (lua_State *L) {
#if LUA_VERSION_NUM >= 502
  const char *name = "=LUA_INIT_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR;
#else
  const char *name = "=LUA_INIT";
#endif
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


static int dostring (lua_State *L, const char *s) {
  int status = luaL_loadbuffer(L, s, strlen(s), "=(command line)");
  if (status == LUA_OK) status = profiled_call(L, 0, 0);
  return report_failure(L, status);
}


/*
** -l [g=]mod: g = require(mod); g is mod when not given, and from Lua
** 5.4.7 on without the "-version" suffix mark of mod, as lua.c does.
*/
static int dolibrary (lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *modname = eq ? eq + 1 : spec;
  size_t globlen = eq ? (size_t)(eq - spec) : strlen(spec);
  int status;
#if defined(LUA_IGMARK)
  if (eq == NULL && strchr(spec, *LUA_IGMARK))
    globlen = (size_t)(strchr(spec, *LUA_IGMARK) - spec);
#endif
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = profiled_call(L, 1, 1);
  if (status == LUA_OK) {
    lua_pushglobaltable(L);
    lua_pushlstring(L, spec, globlen);
    lua_pushvalue(L, -3);  /* module, _G, g, module */
    lua_settable(L, -3);
    lua_pop(L, 2);
  }
  return report_failure(L, status);
}


/* -e, -l and -W in command-line order; 0 if some code failed */
#ifdef SPROF_LUAJIT
/* luajit's -j cmd[=arg,...] (jit.on, jit.off, jit.flush, or a jit.*
** module's start: -jv, -jdump) and -O[opt,...] (jit.opt.start), as
** luajit.c runs them. */
static const char jit_option_code[] =
  "local kind, value = ...\n"
  "local name, rest = value, ''\n"
  "if kind == 'j' then name, rest = value:match('^([^=]*)=?(.*)$') end\n"
  "if kind == 'j' and name == 'p' then\n"
  "  error('-jp is LuaJIT\\'s own profiler, which would stop sprof\\'s: '\n"
  "        .. 'use one or the other', 0)\n"
  "end\n"
  "local args, n = {}, 0\n"  /* empty pieces stay, as nil, as in luajit */
  "for a in ((kind == 'O' and value or rest) .. ','):gmatch('([^,]*),') do\n"
  "  n = n + 1\n"
  "  if a ~= '' then args[n] = a end\n"
  "end\n"
  "if kind == 'O' then return require('jit.opt').start(unpack(args, 1, n)) end\n"
  "local f = jit[name]\n"
  "if type(f) ~= 'function' then\n"
  "  local ok, m = pcall(require, 'jit.' .. name)\n"
  "  if not ok or type(m) ~= 'table' or type(m.start) ~= 'function' then\n"
  "    error('unknown luaJIT command or jit.* modules not installed', 0)\n"
  "  end\n"
  "  f = m.start\n"
  "end\n"
  "return f(unpack(args, 1, n))\n";

/* (no traceback: luajit prints these errors in one line) */
static int dojitoption (lua_State *L, int kind, const char *value) {
  char letter = (char)kind;
  int status = luaL_loadbuffer(L, jit_option_code, sizeof jit_option_code - 1,
                               "=(command line)");
  if (status == LUA_OK) {
    lua_pushlstring(L, &letter, 1);
    lua_pushstring(L, value);
    status = lua_pcall(L, 2, 0, 0);
  }
  return report_failure(L, status);
}
#endif


static int run_lua_options (lua_State *L, char **argv) {
  const char *value;
  int i = 1, option;
  while ((option = next_lua_option(argv, &i, &value)) != 0) {
    if (option == 'W') {
#if LUA_VERSION_NUM >= 504
      lua_warning(L, "@on", 0);
#endif
    }
#ifdef SPROF_LUAJIT
    else if (option == 'j' || option == 'O') {
      if (dojitoption(L, option, value) != LUA_OK) return 0;
    }
#endif
    else if ((option == 'e' ? dostring(L, value)
                            : dolibrary(L, value)) != LUA_OK)
      return 0;
  }
  return 1;
}


/* The script's arguments are arg[1..#arg], as -e code may have left them. */
static int pushargs (lua_State *L) {
  int i, n;
  lua_getglobal(L, "arg");
  if (!lua_istable(L, -1))
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}


static int run_script (lua_State *L, char **argv) {
  int status = luaL_loadfile(L, args.from_stdin ? NULL : argv[args.script]);
  if (status == LUA_OK) {
    int n = args.script ? pushargs(L) : 0;
    status = profiled_call(L, n, LUA_MULTRET);
  }
  return report_failure(L, status);
}


/* A finalizer that runs when os.exit(code, true) closes the state: stop
** while the state is still whole. */
static int on_state_close (lua_State *L) {
  (void)L;
  if (profiler && profiler_running(profiler))
    profiler_stop_from(profiler, NULL, 0);  /* a finalizer: not our Lua */
  return 0;
}


static void watch_state_close (lua_State *L) {
  compat_newuserdata(L, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, on_state_close);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  luaL_ref(L, LUA_REGISTRYINDEX);
}


/* As lua.c's pmain: LUA_INIT, then -e/-l in order, then the script. */
static int pmain (lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
#if LUA_VERSION_NUM >= 502
  luaL_checkversion(L);
#endif
  if (args.version) {
#if defined(SPROF_LUAJIT)
    printf("%s -- %s. %s\n", LUAJIT_VERSION, LUAJIT_COPYRIGHT, LUAJIT_URL);
#elif LUA_VERSION_NUM >= 502
    printf("%s\n", LUA_COPYRIGHT);
#else
    printf("%s  %s\n", LUA_RELEASE, LUA_COPYRIGHT);  /* as lua5.1 -v */
#endif
    fflush(stdout);
  }
  if (args.no_env) {  /* -E: tells the libraries to ignore LUA_PATH... */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
#if LUA_VERSION_NUM >= 503
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#else
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_remove(L, -2);
#endif
  lua_pushcfunction(L, luaopen_sprof);  /* one engine in the process */
  lua_setfield(L, -2, "sprof");
  lua_pop(L, 1);
  watch_state_close(L);
  create_arg_table(L, argv, argc, args.script);
#if LUA_VERSION_NUM >= 504
  lua_gc(L, LUA_GCGEN, 0, 0);  /* as lua.c: generational mode */
#endif
  if (!args.no_env && run_init(L) != LUA_OK) return 0;
  if (!run_lua_options(L, argv)) return 0;
  if ((args.script || args.from_stdin) && run_script(L, argv) != LUA_OK)
    return 0;
  write_report();
  lua_pushboolean(L, 1);
  return 1;
}


/*
** A memory view of a profile without memory is refused before the program
** runs (or before a report is tried), in the engine's words, which its
** render gives at once with no output. 0: refused (said so).
*/
static int view_available (void) {
  RenderOptions o = report_default_options();
  const char *error = NULL;
  if (!(args.view == VIEW_ALLOC || args.view == VIEW_LIVE)
      || profiler->session.memory_rate > 0)
    return 1;
  o.view = args.view;
  free(profiler_render(profiler, "text", &o, NULL, &error));
  if (error == NULL) return 1;
  fprintf(stderr, "%s: %s\n", progname, error + strlen("sprof: "));
  return 0;
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
  if (!view_available()) return EXIT_FAILURE;
  write_report();
  return report_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}


/* --diff: text, the report of a diff, goes where -o says. 0: it could not. */
static int put_diff (const char *text, size_t len) {
  FILE *to = report_stream(), *f;
  if (to_temp_file() && write_temp_report(text, len)) return 1;
  if (to != NULL) {
    fwrite(text, 1, len, to);
    return fflush(to) == 0;
  }
  f = fopen(args.outfile, "wb");
  if (f != NULL) {
    int written = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0 || !written) f = NULL;
  }
  if (f == NULL) {
    fprintf(stderr, "%s: cannot write '%s': %s\n", progname, args.outfile,
            strerror(errno));
    return 0;
  }
  if (args.open) open_report(args.outfile);
  return 1;
}


static int load_session (Session *S, const char *path) {
  char why[200];
  if (report_load_json_file(S, path, why, sizeof why)) return 1;
  fprintf(stderr, "%s: cannot load '%s': %s\n", progname, path, why);
  return 0;
}


/* --diff BEFORE AFTER: loads both sessions and writes their comparison. */
static int render_diff (void) {
  Session before, after;
  RenderOptions o = report_options(report_stream());
  DiffRuns runs;
  Buf out;
  char why[600];
  int ok = session_init(&before);
  ok = session_init(&after) && ok;  /* both made, to be freed alike */
  if (!ok) fprintf(stderr, "%s: not enough memory\n", progname);
  ok = ok && load_session(&before, args.diff_before)
       && load_session(&after, args.diff_after);
  buf_init(&out);
  if (ok) {
    runs.before = &before;
    runs.after = &after;
    runs.before_name = args.diff_before;
    runs.after_name = args.diff_after;
    runs.absolute = args.diff_absolute;
    ok = diff_render(&runs, args.renderer, &o, &out, why, sizeof why);
    if (!ok) fprintf(stderr, "%s: %s\n", progname, why);
    else if (out.failed) {
      fprintf(stderr, "%s: out of memory while rendering\n", progname);
      ok = 0;
    }
    else ok = put_diff(out.data ? out.data : "", out.len);
  }
  buf_free(&out);
  session_free(&before);
  session_free(&after);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}


/* Memory profiling for the run, if asked. 0: bad usage (said so). */
static int setup_memory (void) {
  const char *error = NULL;
  if (args.memory) error = profiler_set_memory(profiler, args.memory_rate);
  if (error == NULL) return 1;
  fprintf(stderr, "%s: %s\n", progname, error + strlen("sprof: "));
  return 0;
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
  if (args.diff_before) return render_diff();
  if (!args.run) return render_loads();
  profiler = profiler_new(args.interval, args.clock, !args.no_native, &error);
  if (profiler == NULL) {
    fprintf(stderr, "%s: %s\n", progname, error + strlen("sprof: "));
    return 2;
  }
  if (!setup_memory() || !view_available()) return 2;
  profiler_set_program(profiler, program_name(argv));
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
