/*
** replay.c — runs the fuzzer's regression inputs (spec/fuzz/regressions)
** through the same checks as fuzz_load.c, built with the normal compiler
** (ctest: fuzz_regressions). Each input once crashed the loader or a
** renderer: now it must be refused with a one-line reason and leave the
** session untouched, or load, render and read back to the same JSON.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../report/report.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);


static char *slurp (const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  Buf b;
  char chunk[4096];
  size_t n;
  if (f == NULL) return NULL;
  buf_init(&b);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, n);
  fclose(f);
  *len = b.len;
  return b.data ? b.data : calloc(1, 1);
}


static int replay (const char *path) {
  Session S;
  char why[256];
  size_t len;
  char *text = slurp(path, &len);
  if (text == NULL || !session_init(&S)) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(text);
    return 0;
  }
  if (report_load_json_text(&S, text, len, why, sizeof why))
    printf("%s: loaded\n", path);
  else
    printf("%s: refused: %s\n", path, why);
  session_free(&S);
  LLVMFuzzerTestOneInput((const uint8_t *)text, len);  /* aborts if wrong */
  free(text);
  return 1;
}


int main (int argc, char **argv) {
  DIR *dir;
  struct dirent *e;
  char path[4096];
  int n = 0, ok = 1;
  if (argc != 2 || (dir = opendir(argv[1])) == NULL) {
    fprintf(stderr, "usage: %s regressions-dir\n", argv[0]);
    return 2;
  }
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
    ok = replay(path) && ok;
    n++;
  }
  closedir(dir);
  printf("%d inputs replayed\n", n);
  return ok && n > 0 ? 0 : 1;
}
