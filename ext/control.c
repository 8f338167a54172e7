/*
** control.c — a long-running process profiled on a signal or in periods.
**
** One controller thread per process, started with the first profiler
** handed to it, does all the work. The profilers are set up in their own
** Lua threads (profiler_start, paused); from here only their sampling is
** switched (profiler_resume, profiler_pause) and what they sampled taken
** (profiler_snapshot, which holds their hook off for a copy). Rendering,
** gzip and writing happen here, on the copy.
** - SPROF_SIGNAL: the signal's handler only counts it; the controller
**   sees the count within POLL_NS. The first signal starts the sampling
**   of every profiler (and of those handed over later), the next stops it
**   and writes one report of them all, and so on.
** - SPROF_PERIOD: every profiler samples all the time, and every period
**   one report of them all is written as a new file; past SPROF_KEEP
**   files, this process's oldest is removed. With SPROF_SIGNAL too, the
**   signal switches this on and off (off at first).
** A profiler taken back (its state closed) leaves what it sampled for the
** next report; at exit, what was sampled since the last one is written.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../report/report.h"
#include "control.h"
#include "profiler.h"

#define MAX_CONTROLLED PROFILE_MAX
#define POLL_NS 20000000u       /* how soon a signal is seen: 20 ms */
#define DEFAULT_KEEP 60         /* periodic files kept by default */

static const struct { const char *name; int number; } signal_names[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
  {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
  {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
  {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
  {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH}, {"IO", SIGIO}, {"PWR", SIGPWR},
  {NULL, 0}
};

/* Sadly static: a signal handler gets nothing to find its state by, and
** the process has one of each signal. Guarded by 'lock' but 'signals'. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;        /* on the monotonic clock */
  int configured, stopping, thread_on;
  int shutting;               /* at exit: no profiler handed over or back */
  int atfork_set;
  pthread_t thread;
  ControlSettings set;
  struct sigaction old_action;
  Profiler *list[MAX_CONTROLLED];
  int n;
  int sampling;               /* the profilers sample now */
  int show_host;              /* a C host's profiler: its frames shown */
  Session leftovers;          /* what profilers taken back had sampled */
  double period_wall;         /* Unix time when this report's time began */
  uint64_t period_start;      /* the same on the monotonic clock */
  uint64_t deadline;          /* the next period's end (monotonic) */
  unsigned handled;           /* signals acted upon */
  unsigned seq;               /* reports written */
  char last_path[1100];
  char **files;               /* written by this process, oldest first */
  int nfiles;
} C = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_uint signals;   /* counted by the handler */


static uint64_t now_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


static double unix_now (void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}


/* ---------------------------------------------------------- settings */

static int bad (char *why, size_t n, const char *fmt, const char *value) {
  snprintf(why, n, fmt, value);
  return -1;
}


static int signal_of (const char *name) {
  int i;
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (i = 0; signal_names[i].name; i++)
    if (strcmp(name, signal_names[i].name) == 0) return signal_names[i].number;
  return 0;
}


int control_parse (ControlSettings *c, const char *signal, const char *period,
                   const char *keep, const char *output, const char *format,
                   const char *service, char *why, size_t whylen) {
  char *end;
  memset(c, 0, sizeof *c);
  if (signal && *signal && (c->signal = signal_of(signal)) == 0)
    return bad(why, whylen, "sprof: SPROF_SIGNAL '%s' is not a signal sprof "
               "can use (e.g. USR2, SIGUSR1, HUP)", signal);
  if (period && *period) {
    c->period = strtod(period, &end);
    if (end == period || *end != '\0' || !(c->period > 0) || c->period > 1e6)
      return bad(why, whylen, "sprof: SPROF_PERIOD must be a positive number "
                 "of seconds (e.g. 10 or 0.5), not '%s'", period);
    if (c->period < 0.001) c->period = 0.001;
  }
  c->keep = c->period > 0 ? DEFAULT_KEEP : 0;
  if (keep && *keep) {
    long k = strtol(keep, &end, 10);
    if (end == keep || *end != '\0' || k < 0 || k > 1000000000)
      return bad(why, whylen, "sprof: SPROF_KEEP must be a whole number of "
                 "files, 0 for all (e.g. 60), not '%s'", keep);
    c->keep = (int)k;
  }
  if (format && *format && !report_known_format(format))
    return bad(why, whylen, "sprof: unknown SPROF_FORMAT '%s' (use text, "
               "html, json, collapsed, speedscope or pprof)", format);
  if (output && strlen(output) >= sizeof c->output - 32)
    return bad(why, whylen, "sprof: SPROF_OUTPUT is too long: '%.60s...'",
               output);
  snprintf(c->output, sizeof c->output, "%s", output && *output ? output
           : c->period > 0 ? "sprof-%p-%n.pb.gz" : "sprof-%p-%n.txt");
  snprintf(c->format, sizeof c->format, "%s", format ? format : "");
  snprintf(c->service, sizeof c->service, "%s", service ? service : "");
  return 0;
}


int control_from_env (ControlSettings *c, char *why, size_t whylen) {
  const char *signal = getenv("SPROF_SIGNAL"), *period = getenv("SPROF_PERIOD");
  if (!(signal && *signal) && !(period && *period)) return 0;
  return control_parse(c, signal, period, getenv("SPROF_KEEP"),
                       getenv("SPROF_OUTPUT"), getenv("SPROF_FORMAT"),
                       getenv("SPROF_SERVICE"), why, whylen) == 0 ? 1 : -1;
}


/* ------------------------------------------------------------- names */

/* 'pattern' with %p (pid), %t (local time, 20261201-143000), %n (the
** report's number) and %% replaced. */
void control_expand (char *out, size_t size, const char *pattern, unsigned n,
                    time_t t) {
  size_t len = 0;
  const char *s;
  struct tm tm;
  localtime_r(&t, &tm);
  out[0] = '\0';
  for (s = pattern; *s && len + 1 < size; s++) {
    char piece[64];
    if (*s != '%' || s[1] == '\0') {
      out[len++] = *s;
      out[len] = '\0';
      continue;
    }
    switch (*++s) {
      case 'p': snprintf(piece, sizeof piece, "%ld", (long)getpid()); break;
      case 'n': snprintf(piece, sizeof piece, "%u", n); break;
      case 't': strftime(piece, sizeof piece, "%Y%m%d-%H%M%S", &tm); break;
      case '%': snprintf(piece, sizeof piece, "%%"); break;
      default: snprintf(piece, sizeof piece, "%%%c", *s); break;
    }
    len += (size_t)snprintf(out + len, size - len, "%s", piece);
    if (len >= size) len = size - 1;
  }
}


/* Where ".N" goes in a name: before its extension (".pb.gz" and
** ".speedscope.json" are one), or at the end. */
static size_t extension_at (const char *path) {
  static const char *const doubles[] = {".pb.gz", ".speedscope.json", NULL};
  const char *slash = strrchr(path, '/'), *dot;
  size_t len = strlen(path);
  int i;
  for (i = 0; doubles[i]; i++) {
    size_t d = strlen(doubles[i]);
    if (len > d && strcmp(path + len - d, doubles[i]) == 0) return len - d;
  }
  dot = strrchr(path, '.');
  return dot && (!slash || dot > slash + 1) ? (size_t)(dot - path) : len;
}


/* The name of report number n. A pattern without %n gets the number
** before its extension from the second report on (or when %t gave the
** last name again), so reports never overwrite each other. */
static void report_path (char *out, size_t size, unsigned n) {
  char name[1024];
  control_expand(name, sizeof name, C.set.output, n, time(NULL));
  if (strstr(C.set.output, "%n") == NULL && n > 1
      && (strstr(C.set.output, "%t") == NULL
          || strcmp(name, C.last_path) == 0)) {
    size_t at = extension_at(name);
    snprintf(out, size, "%.*s.%u%s", (int)at, name, n, name + at);
  }
  else snprintf(out, size, "%s", name);
}


/* Whether reports can be written where the output names them. */
static int check_output (char *why, size_t whylen) {
  char path[1024], *slash;
  struct stat st;
  control_expand(path, sizeof path, C.set.output, 1, time(NULL));
  slash = strrchr(path, '/');
  if (slash == path) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else snprintf(path, sizeof path, ".");
  errno = 0;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || access(path, W_OK | X_OK)) {
    snprintf(why, whylen, "sprof: cannot write reports into '%s' "
             "(SPROF_OUTPUT=%s): %s", path, C.set.output,
             errno ? strerror(errno) : "not a directory");
    return -1;
  }
  return 0;
}


/* ----------------------------------------------------------- reports */

static int write_file (const char *path, const char *data, size_t len) {
  char tmp[1200];
  size_t n = strlen(path);
  FILE *f;
  int ok;
  if (n + 5 > sizeof tmp) return 0;
  /* a collector watching the directory sees only whole files */
  memcpy(tmp, path, n);
  memcpy(tmp + n, ".tmp", 5);
  if ((f = fopen(tmp, "wb")) == NULL) return 0;
  ok = fwrite(data, 1, len, f) == len;
  ok = fclose(f) == 0 && ok;
  if (ok && rename(tmp, path) == 0) return 1;
  ok = errno;
  unlink(tmp);
  errno = ok;  /* the reason, for the message */
  return 0;
}


/* Removes this process's oldest reports past SPROF_KEEP. */
static void rotate (const char *path) {
  char **files, *copy;
  if (C.set.keep == 0) return;  /* all are kept: none remembered */
  files = realloc(C.files, (size_t)(C.nfiles + 1) * sizeof *files);
  copy = strdup(path);
  if (files == NULL || copy == NULL) {
    if (files) C.files = files;
    free(copy);
    return;
  }
  C.files = files;
  C.files[C.nfiles++] = copy;
  while (C.set.keep > 0 && C.nfiles > C.set.keep) {
    unlink(C.files[0]);
    free(C.files[0]);
    memmove(C.files, C.files + 1, (size_t)--C.nfiles * sizeof *C.files);
  }
}


static void set_labels (Session *S) {
  char host[256], pid[32];
  if (C.set.service[0]) session_set_label(S, "service", C.set.service);
  if (gethostname(host, sizeof host) == 0) {
    host[sizeof host - 1] = '\0';
    session_set_label(S, "host", host);
  }
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  session_set_label(S, "pid", pid);
}


/* Renders and writes a report; the lock is not held meanwhile (the
** controller alone writes, so 'seq' and the file list are its own). */
static void write_report (Session *S) {
  RenderOptions ro = report_default_options();
  char path[1100];
  const char *format;
  Buf out;
  ro.show_host = C.show_host;
  C.seq++;
  report_path(path, sizeof path, C.seq);
  format = C.set.format[0] ? C.set.format : report_format_of(path);
  pthread_mutex_unlock(&C.lock);
  buf_init(&out);
  if (!report_render(S, format, &ro, &out) || out.failed)
    fprintf(stderr, "sprof: out of memory while rendering '%s'\n", path);
  else if (!write_file(path, out.data ? out.data : "", out.len))
    fprintf(stderr, "sprof: cannot write '%s': %s\n", path, strerror(errno));
  buf_free(&out);
  pthread_mutex_lock(&C.lock);
  snprintf(C.last_path, sizeof C.last_path, "%s", path);
  rotate(path);
}


/* One report of every profiler and of the leftovers: the time from the
** last report (or the start of sampling) to now. */
static void report_all (void) {
  Session S;
  int i;
  if (!session_init(&S)) return;
  if (C.n > 0) {
    S.interval = C.list[0]->session.interval;
    S.clock = C.list[0]->session.clock;
  }
  else {
    S.interval = C.leftovers.interval;
    S.clock = C.leftovers.clock;
  }
  session_merge(&S, &C.leftovers);
  session_clear(&C.leftovers);
  for (i = 0; i < C.n; i++) profiler_snapshot(C.list[i], &S);
  if (S.weight_ns == 0 && S.samples == 0 && C.n == 0) {
    session_free(&S);  /* no state, nothing left by one: no report */
    C.period_wall = unix_now();
    C.period_start = now_ns();
    return;
  }
  if (S.duration_ns == 0) {  /* nothing sampled: the controller's clock */
    S.start_time = C.period_wall;
    S.duration_ns = now_ns() - C.period_start;
  }
  set_labels(&S);
  C.period_wall = unix_now();
  C.period_start = now_ns();
  write_report(&S);
  session_free(&S);
}


static void start_sampling (void) {
  int i;
  C.sampling = 1;
  C.period_wall = unix_now();
  C.period_start = now_ns();
  C.deadline = C.period_start + (uint64_t)(C.set.period * 1e9);
  for (i = 0; i < C.n; i++) {
    int err = profiler_resume(C.list[i]);
    if (err != 0)
      fprintf(stderr, "sprof: cannot start the sampling timer: %s\n",
              strerror(err));
  }
}


static void stop_sampling (void) {
  int i;
  for (i = 0; i < C.n; i++) profiler_pause(C.list[i]);
  C.sampling = 0;
  report_all();
}


/* ------------------------------------------------------------ thread */

static void on_signal (int sig) {
  (void)sig;
  atomic_fetch_add(&signals, 1);  /* all else in the controller */
}


static void deadline_of (struct timespec *ts, uint64_t ns) {
  ts->tv_sec = (time_t)(ns / 1000000000u);
  ts->tv_nsec = (long)(ns % 1000000000u);
}


static void *controller_main (void *arg) {
  (void)arg;
  pthread_mutex_lock(&C.lock);
  while (!C.stopping) {
    uint64_t now = now_ns(), wake = now + POLL_NS;
    unsigned seen;
    struct timespec ts;
    if (C.set.period > 0 && C.sampling && C.deadline < wake) wake = C.deadline;
    deadline_of(&ts, wake);
    pthread_cond_timedwait(&C.wake, &C.lock, &ts);
    if (C.stopping) break;
    for (seen = atomic_load(&signals); C.handled != seen; C.handled++) {
      if (C.sampling) stop_sampling();
      else start_sampling();
    }
    now = now_ns();
    if (C.set.period > 0 && C.sampling && now >= C.deadline) {
      report_all();
      C.deadline += (uint64_t)(C.set.period * 1e9);
      if (C.deadline <= now)  /* fell behind: the next period from now */
        C.deadline = now + (uint64_t)(C.set.period * 1e9);
    }
  }
  pthread_mutex_unlock(&C.lock);
  return NULL;
}


static int start_thread (void) {
  sigset_t all, old;
  int err;
  sigfillset(&all);  /* the program's signals are not for this thread */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&C.thread, NULL, controller_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err == 0) C.thread_on = 1;
  return err;
}


/*
** At exit (or when the module is unloaded): the controller stops and
** what was sampled since the last report is written; the profilers still
** handed over are taken back paused. From here on, none is handed over
** (no controller would take it) and one taken back leaves nothing for a
** report (the last one may be written meanwhile, the lock not held).
*/
static void control_shutdown (void) {
  int i;
  pthread_mutex_lock(&C.lock);
  if (!C.configured || C.shutting) {
    pthread_mutex_unlock(&C.lock);
    return;
  }
  C.shutting = 1;
  C.stopping = 1;
  pthread_cond_signal(&C.wake);
  pthread_mutex_unlock(&C.lock);
  if (C.thread_on) pthread_join(C.thread, NULL);
  pthread_mutex_lock(&C.lock);
  C.thread_on = 0;
  if (C.set.signal) sigaction(C.set.signal, &C.old_action, NULL);
  if (C.sampling) {
    for (i = 0; i < C.n; i++) profiler_pause(C.list[i]);
    report_all();
  }
  for (i = 0; i < C.n; i++) C.list[i]->controlled = 0;
  C.n = 0;
  C.sampling = 0;
  C.configured = 0;
  session_free(&C.leftovers);
  for (i = 0; i < C.nfiles; i++) free(C.files[i]);
  free(C.files);
  C.files = NULL;
  C.nfiles = 0;
  pthread_cond_destroy(&C.wake);
  C.shutting = 0;
  pthread_mutex_unlock(&C.lock);
}


/*
** In a child made by fork, only the forking thread runs: no controller.
** The settings stay; the parent's profilers (marked foreign by timer.c),
** its leftovers and its files are forgotten, so the child neither writes
** nor removes the parent's reports. A state the child makes starts the
** child's own controller, its reports named with the child's %p. The
** lock may have been held at the fork: if so, what it guards may be half
** changed, and is dropped rather than freed.
*/
static void forget_after_fork (void) {
  int consistent = pthread_mutex_trylock(&C.lock) == 0, i;
  pthread_condattr_t attr;
  pthread_mutex_init(&C.lock, NULL);
  if (!C.configured || C.shutting) return;
  for (i = 0; i < C.n; i++) C.list[i]->controlled = 0;
  C.n = 0;
  C.thread_on = 0;
  C.stopping = 0;
  if (consistent) {
    session_free(&C.leftovers);
    for (i = 0; i < C.nfiles; i++) free(C.files[i]);
    free(C.files);
  }
  if (!session_init(&C.leftovers)) C.configured = 0;
  C.files = NULL;
  C.nfiles = 0;
  C.seq = 0;
  C.last_path[0] = '\0';
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&C.wake, &attr);
  pthread_condattr_destroy(&attr);
  if (C.sampling) {  /* periods: the child's first starts now */
    C.period_wall = unix_now();
    C.period_start = now_ns();
    C.deadline = C.period_start + (uint64_t)(C.set.period * 1e9);
  }
}


static int configure (const ControlSettings *c, char *why, size_t whylen) {
  pthread_condattr_t attr;
  int err;
  pthread_mutex_lock(&C.lock);
  if (C.configured) {  /* the first settings stand */
    pthread_mutex_unlock(&C.lock);
    return 0;
  }
  C.set = *c;
  if (check_output(why, whylen) != 0) {
    pthread_mutex_unlock(&C.lock);
    return -1;
  }
  if (!session_init(&C.leftovers)) {
    snprintf(why, whylen, "sprof: out of memory");
    pthread_mutex_unlock(&C.lock);
    return -1;
  }
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  err = pthread_cond_init(&C.wake, &attr);
  pthread_condattr_destroy(&attr);
  if (err == 0 && c->signal) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(c->signal, &sa, &C.old_action) != 0) {
      err = errno;
      pthread_cond_destroy(&C.wake);
    }
  }
  if (err != 0) {
    session_free(&C.leftovers);
    snprintf(why, whylen, "sprof: cannot set the controller up: %s",
             strerror(err));
    pthread_mutex_unlock(&C.lock);
    return -1;
  }
  C.configured = 1;
  C.stopping = 0;
  if (!C.atfork_set && pthread_atfork(NULL, NULL, forget_after_fork) == 0)
    C.atfork_set = 1;
  C.seq = 0;
  C.last_path[0] = '\0';
  C.handled = atomic_load(&signals);
  if (!c->signal) start_sampling();  /* periodic: from now on */
  atexit(control_shutdown);
  pthread_mutex_unlock(&C.lock);
  return 0;
}


int control_configure (const ControlSettings *c, char *why, size_t whylen) {
#ifdef SPROF_LUAJIT
  /* LuaJIT's profiler is started and stopped in the Lua thread, not by
     a controller thread */
  (void)c;
  (void)configure;
  snprintf(why, whylen, "sprof: SPROF_SIGNAL and SPROF_PERIOD are not "
           "available on LuaJIT: profile with SPROF_OUTPUT at exit");
  return -1;
#else
  return configure(c, why, whylen);
#endif
}


int control_add (Profiler *P, char *why, size_t whylen) {
  int err = 0;
  pthread_mutex_lock(&C.lock);
  if (!C.configured || C.shutting) err = EINVAL;
  else if (C.n == MAX_CONTROLLED) err = EAGAIN;
  else if (!C.thread_on) err = start_thread();
  if (err == 0) {
    C.list[C.n++] = P;
    P->controlled = 1;
    C.show_host |= P->show_host;
    if (C.leftovers.nnodes == 1 && C.leftovers.samples == 0) {
      C.leftovers.interval = P->session.interval;
      C.leftovers.clock = P->session.clock;
    }
    if (C.sampling && (err = profiler_resume(P)) != 0) {
      C.n--;
      P->controlled = 0;
    }
  }
  pthread_mutex_unlock(&C.lock);
  if (err != 0)
    snprintf(why, whylen, "sprof: cannot hand the profiler to the "
             "controller: %s", err == EAGAIN ? "too many Lua states"
             : err == EINVAL ? "not set up, or the process is exiting"
             : strerror(err));
  return err == 0 ? 0 : -1;
}


void control_remove (Profiler *P) {
  int i;
  pthread_mutex_lock(&C.lock);
  for (i = 0; i < C.n; i++)
    if (C.list[i] == P) {
      profiler_pause(P);
      if (!C.shutting) profiler_snapshot(P, &C.leftovers);
      C.list[i] = C.list[--C.n];
      break;
    }
  P->controlled = 0;
  pthread_mutex_unlock(&C.lock);
}
