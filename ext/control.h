/*
** control.h — profiling a long-running process on a signal, and
** continuously in periods: one controller thread per process switches the
** sampling of every profiler handed to it and writes the reports.
*/
#ifndef sprof_control_h
#define sprof_control_h

#include <stddef.h>
#include <time.h>

struct Profiler;

typedef struct ControlSettings {
  int signal;             /* SPROF_SIGNAL's number; 0: none */
  double period;          /* SPROF_PERIOD in seconds; 0: none */
  int keep;               /* SPROF_KEEP: files kept; 0: all */
  char output[1024];      /* SPROF_OUTPUT, with %p %t %n %% */
  char format[32];        /* SPROF_FORMAT; "": from the output's name */
  char service[256];      /* SPROF_SERVICE; "": no service label */
} ControlSettings;

/* Reads the settings from strings as in the environment (NULL or "": not
** set). Returns 0, or -1 with a one-line message in 'why'. */
int control_parse (ControlSettings *c, const char *signal, const char *period,
                   const char *keep, const char *output, const char *format,
                   const char *service, char *why, size_t whylen);

/* The variables themselves; 0 when neither SPROF_SIGNAL nor SPROF_PERIOD
** is set (c is then untouched), 1 when set and good, -1 when bad. */
int control_from_env (ControlSettings *c, char *why, size_t whylen);

/* Sets the process's controller up (the first call; later ones keep the
** first settings): checks that the output can be written and installs
** the signal's handler. Returns 0, or -1 with a message in 'why'. */
int control_configure (const ControlSettings *c, char *why, size_t whylen);

/* Hands a profiler started paused (set up in its Lua thread) to the
** controller, which resumes and pauses its sampling and takes what it
** samples. Returns 0, or -1 with a message in 'why'. */
int control_add (struct Profiler *P, char *why, size_t whylen);

/* Takes the profiler back (profiler_stop calls it): what it sampled
** goes into the next report. */
void control_remove (struct Profiler *P);

/* 'pattern' with %p (pid), %t (local time, 20261201-143000), %n (the
** report's number 'n') and %% replaced. */
void control_expand (char *out, size_t size, const char *pattern, unsigned n,
                     time_t t);

#endif
