/*
** history.c — sprof-lua keeps the sessions of its last HISTORY_KEEP runs
** as JSON in $XDG_STATE_HOME/sprof (or ~/.local/state/sprof), so
** --load-prev can render the latest again in any format. The files are
** named by the time they were saved, so their names sort in that order.
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "history.h"

#define PREFIX "session-"
#define SUFFIX ".json"


/* The directory, made if missing (with its parents, private to the user). */
static int state_dir (char *dir, size_t len, int make) {
  const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char *p;
  if (state != NULL && state[0] == '/')  /* the spec ignores relative ones */
    snprintf(dir, len, "%s/sprof", state);
  else if (home != NULL && home[0] != '\0')
    snprintf(dir, len, "%s/.local/state/sprof", home);
  else {
    errno = ENOENT;
    snprintf(dir, len, "~/.local/state/sprof ($HOME is not set)");
    return 0;
  }
  if (!make) return 1;
  for (p = dir + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(dir, 0700) != 0 && errno != EEXIST) return 0;
      *p = c;
      if (c == '\0') break;
    }
  }
  return 1;
}


static int is_session (const struct dirent *e) {
  size_t n = strlen(e->d_name);
  return strncmp(e->d_name, PREFIX, strlen(PREFIX)) == 0
      && n > strlen(SUFFIX)
      && strcmp(e->d_name + n - strlen(SUFFIX), SUFFIX) == 0;
}


/* Removes all but the newest HISTORY_KEEP sessions. */
static void prune (const char *dir) {
  struct dirent **list;
  int n = scandir(dir, &list, is_session, alphasort), i;
  char path[4096 + 256 + 2];
  for (i = 0; i < n; i++) {
    if (i < n - HISTORY_KEEP) {
      snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
      unlink(path);  /* another run may have removed it already */
    }
    free(list[i]);
  }
  if (n >= 0) free(list);
}


static int write_file (const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  int ok;
  if (f == NULL) return 0;
  ok = fwrite(text, 1, len, f) == len;
  ok = fclose(f) == 0 && ok;
  return ok;
}


void history_save (Profiler *P, const char *progname) {
  char dir[4096], path[4096 + 128], tmp[4096 + 64], when[32];
  const char *error = NULL;
  struct timespec now;
  struct tm tm;
  size_t len;
  char *json;
  if (!state_dir(dir, sizeof dir, 1)) {
    fprintf(stderr, "%s: cannot keep this session in %s: %s\n", progname,
            dir, strerror(errno));
    return;
  }
  json = profiler_render(P, "json", NULL, &len, &error);
  if (json == NULL) {
    fprintf(stderr, "%s: cannot keep this session: %s\n", progname, error);
    return;
  }
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  strftime(when, sizeof when, "%Y%m%dT%H%M%S", &tm);
  snprintf(path, sizeof path, "%s/" PREFIX "%s.%09ldZ-%ld" SUFFIX, dir, when,
           now.tv_nsec, (long)getpid());
  /* written aside, then renamed: a reader never sees half a file */
  snprintf(tmp, sizeof tmp, "%s/.saving-%ld", dir, (long)getpid());
  if (!write_file(tmp, json, len) || rename(tmp, path) != 0) {
    fprintf(stderr, "%s: cannot keep this session in %s: %s\n", progname,
            dir, strerror(errno));
    unlink(tmp);
  }
  else prune(dir);
  free(json);
}


int history_latest (char *path, size_t len, char *why, size_t whylen) {
  char dir[4096];
  struct dirent **list;
  int n, i;
  if (!state_dir(dir, sizeof dir, 0)) {
    snprintf(why, whylen, "no saved session: %s", dir);
    return 0;
  }
  n = scandir(dir, &list, is_session, alphasort);
  if (n > 0) snprintf(path, len, "%s/%s", dir, list[n - 1]->d_name);
  else if (n == 0 || errno == ENOENT)
    snprintf(why, whylen, "no saved session in %s (runs of a script "
             "save theirs)", dir);
  else
    snprintf(why, whylen, "cannot read %s: %s", dir, strerror(errno));
  for (i = 0; i < n; i++) free(list[i]);
  if (n >= 0) free(list);
  return n > 0;
}
