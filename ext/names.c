/*
** names.c — names for Lua functions the call sites could not name.
** A function called from C (a callback, a function handed to pcall or
** sprof.profile) or through a tail call has no name at run time, but its
** source usually has one: "local function work (n)", "M.handler =
** function (req)". After sampling, read the line where it is defined.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

#define MAX_NAME 128


/* Copies an identifier chain (a.b:c) at s into name; returns its end. */
static const char *ident_chain (const char *s, char *name) {
  size_t n = 0;
  if (!(isalpha((unsigned char)*s) || *s == '_')) return NULL;
  while ((isalnum((unsigned char)*s) || *s == '_' || *s == '.' || *s == ':')
         && n < MAX_NAME - 1)
    name[n++] = *s++;
  name[n] = '\0';
  return s;
}


static const char *skip_space (const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return s;
}


static int keyword (const char **s, const char *word) {
  size_t n = strlen(word);
  if (strncmp(*s, word, n) != 0 || isalnum((unsigned char)(*s)[n])
      || (*s)[n] == '_')
    return 0;
  *s = skip_space(*s + n);
  return 1;
}


/* "function NAME", "local function NAME", "[local] NAME = function",
** or "NAME = function" somewhere in the line (a table field). */
static int name_in_line (const char *line, char *name) {
  const char *s = skip_space(line), *p;
  keyword(&s, "local");
  if (keyword(&s, "function")) return ident_chain(s, name) != NULL;
  p = ident_chain(s, name);
  if (p && *(p = skip_space(p)) == '=' && p[1] != '=') {
    p = skip_space(p + 1);
    if (keyword(&p, "function")) return 1;
  }
  for (p = strstr(line, "function"); p; p = strstr(p + 1, "function")) {
    const char *q = p, *start;
    while (q > line && (q[-1] == ' ' || q[-1] == '\t')) q--;
    if (q == line || q[-1] != '=' || (q - 1 > line && strchr("=~<>", q[-2])))
      continue;
    q--;
    while (q > line && (q[-1] == ' ' || q[-1] == '\t')) q--;
    start = q;
    while (start > line && (isalnum((unsigned char)start[-1])
                            || start[-1] == '_'))
      start--;
    if (start < q && !isdigit((unsigned char)*start)
        && (size_t)(q - start) < MAX_NAME) {
      memcpy(name, start, (size_t)(q - start));
      name[q - start] = '\0';
      return 1;
    }
  }
  return 0;
}


/* Reads line 'wanted' (1-based) of a file. */
static int read_line (const char *path, int wanted, char *line, size_t size) {
  FILE *f = fopen(path, "r");
  int n = 0;
  if (f == NULL) return 0;
  while (fgets(line, (int)size, f)) {
    if (strchr(line, '\n') == NULL && !feof(f)) {  /* a long line */
      int c;
      while ((c = fgetc(f)) != EOF && c != '\n') {}
    }
    if (++n == wanted) {
      fclose(f);
      return 1;
    }
  }
  fclose(f);
  return 0;
}


void session_name_from_source (Session *S) {
  int i;
  for (i = 0; i < S->nframes; i++) {
    Frame *f = &S->frames[i];
    char line[1024], name[MAX_NAME];
    if (f->kind != FRAME_LUA || f->line <= 0
        || strcmp(f->name, "(anonymous)") != 0 || f->file[0] == '[')
      continue;
    if (read_line(f->file, f->line, line, sizeof line)
        && name_in_line(line, name)) {
      char *copy = malloc(strlen(name) + 1);
      if (copy == NULL) continue;
      strcpy(copy, name);
      free(f->name);
      f->name = copy;
    }
  }
}
