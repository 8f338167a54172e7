/*
** history.h — the sessions sprof-lua keeps for --load-prev.
*/
#ifndef sprof_history_h
#define sprof_history_h

#include <stddef.h>

#include "../ext/profiler.h"

#define HISTORY_KEEP 10  /* sessions kept; older ones are removed */

/* Saves P's session as JSON and prunes older ones. Never fails the run:
** a problem is one line on stderr, prefixed by progname. */
void history_save (Profiler *P, const char *progname);

/* The path of the latest kept session; 0 with a reason if there is none. */
int history_latest (char *path, size_t len, char *why, size_t whylen);

#endif
