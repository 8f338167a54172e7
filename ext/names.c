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


/* One source file in memory, with where each line starts. */
typedef struct Source {
  char *path;
  char *text;
  long *starts;   /* starts[i]: offset of line i + 1 */
  int nlines;
} Source;


static void source_free (Source *src) {
  free(src->path);
  free(src->text);
  free(src->starts);
  memset(src, 0, sizeof *src);
}


static int source_load (Source *src, const char *path) {
  FILE *f;
  long size, i;
  source_free(src);
  f = fopen(path, "rb");
  if (f == NULL) return 0;
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
      || fseek(f, 0, SEEK_SET) != 0
      || (src->text = malloc((size_t)size + 1)) == NULL
      || fread(src->text, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    source_free(src);
    return 0;
  }
  fclose(f);
  src->text[size] = '\0';
  src->starts = malloc(sizeof *src->starts * (size_t)(size + 2));
  src->path = malloc(strlen(path) + 1);
  if (src->starts == NULL || src->path == NULL) {
    source_free(src);
    return 0;
  }
  strcpy(src->path, path);
  src->starts[src->nlines++] = 0;
  for (i = 0; i < size; i++)
    if (src->text[i] == '\n') {
      src->text[i] = '\0';
      src->starts[src->nlines++] = i + 1;
    }
  return 1;
}


/*
** Names Lua functions after their definition, as people read them
** ("M.handler", "Queue:push", "work"): a call site's name is often just
** the parameter that held the function ("cb", "f"). Each frame is looked
** at once; a file is read once per call.
*/
void session_name_from_source (Session *S) {
  Source src;
  int i;
  memset(&src, 0, sizeof src);
  for (i = 0; i < S->nframes; i++) {
    Frame *f = &S->frames[i];
    char name[MAX_NAME];
    if (f->kind != FRAME_LUA || f->source_checked) continue;
    f->source_checked = 1;
    if (f->line <= 0 || f->file[0] == '[') continue;
    if ((src.path == NULL || strcmp(src.path, f->file) != 0)
        && !source_load(&src, f->file))
      continue;
    if (f->line <= src.nlines
        && name_in_line(src.text + src.starts[f->line - 1], name)
        && strcmp(name, f->name) != 0) {
      char *copy = malloc(strlen(name) + 1);
      if (copy == NULL) continue;
      strcpy(copy, name);
      free(f->name);
      f->name = copy;
    }
  }
  source_free(&src);
}
