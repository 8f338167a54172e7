/*
** html_session.c — the HTML report at scale (bench/html runs it): builds a
** session of 1,000,000 samples over 50,000 distinct stacks through the
** session API, renders it to HTML and says how long that took and how big
** the page is.
**
**   bench_html [--prefix N] OUT.html [SESSION.json]
**
** Stacks grow from prefixes of earlier ones (9 frames deep on average);
** --prefix N starts every one with the same N frames, as a framework's
** request path would (the page's size grows with the depth).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../report/report.h"

#define NSAMPLES 1000000
#define NSTACKS 50000
#define NFUNCS 6000     /* Lua functions */
#define NCFUNCS 60      /* C functions */
#define MAXDEPTH 64
#define RUNS 5

static unsigned long long rng = 88172645463325252ULL;

static unsigned random_below (unsigned n) {  /* xorshift64 */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

static double uniform (void) {
  return random_below(1u << 30) / (double)(1u << 30);
}


static double now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* Program code in 300 files, a tenth of it library code, and C functions. */
static int add_frames (Session *S, int *frames) {
  char name[64], file[96];
  int i;
  for (i = 0; i < NFUNCS; i++) {
    int lib = i % 10 == 9;
    snprintf(name, sizeof name, lib ? "lib%d.call_%d" : "handle_%d_%d",
             i % 300, i);
    snprintf(file, sizeof file, lib ? "/usr/share/lua/5.4/lib%d.lua"
                                    : "app/module%03d.lua", i % 300);
    frames[i] = session_frame(S, FRAME_LUA, name, file, 1 + i / 300 * 10, NULL);
    if (frames[i] < 0) return 0;
  }
  for (i = 0; i < NCFUNCS; i++) {
    snprintf(name, sizeof name, "cmod%d.op%d", i % 6, i);
    frames[NFUNCS + i] = session_frame(S, FRAME_C, name, "[C]", 0,
                                       (const void *)(size_t)(0x1000 + i));
    if (frames[NFUNCS + i] < 0) return 0;
  }
  return 1;
}


static int random_frame (const int *frames) {
  return random_below(8) == 0 ? frames[NFUNCS + random_below(NCFUNCS)]
                              : frames[random_below(NFUNCS)];
}


/*
** Distinct stacks, each grown from a prefix of an earlier one (so they
** share paths, as real programs' stacks do); node[k] is stack k's leaf.
*/
static int add_stacks (Session *S, const int *frames, int *node, int prefix) {
  static int path[NSTACKS][MAXDEPTH];
  static int depth[NSTACKS];
  char *used = calloc((size_t)NSTACKS * MAXDEPTH + 1, 1);
  int k = 0, n;
  if (used == NULL) return 0;
  for (n = 0; n <= prefix; n++) path[0][n] = frames[n * 37 % NFUNCS];
  depth[0] = prefix + 1;
  node[0] = session_add_stack(S, path[0], depth[0], 0, 0);
  used[node[0]] = 1;
  for (k = 1; k < NSTACKS; ) {
    int from = (int)random_below((unsigned)k);
    int least = (depth[from] + 1) / 2 > prefix ? (depth[from] + 1) / 2 : prefix + 1;
    int keep = least + (int)random_below((unsigned)(depth[from] - least + 1));
    int grow = 1 + (int)random_below(4);
    memcpy(path[k], path[from], (size_t)keep * sizeof(int));
    for (n = keep; n < keep + grow && n < MAXDEPTH; n++)
      path[k][n] = random_frame(frames);
    node[k] = session_add_stack(S, path[k], n, 0, 0);
    if (node[k] < 0 || node[k] > NSTACKS * MAXDEPTH) { free(used); return 0; }
    if (used[node[k]]) continue;  /* not new: try another */
    used[node[k]] = 1;
    depth[k++] = n;
  }
  free(used);
  return 1;
}


/* One sample on stack k, taken at time *t after a weight of about 1 ms. */
static void sample (Session *S, int node, uint64_t *t) {
  uint64_t weight = 900000 + random_below(200000);
  *t += weight;
  S->nodes[node].self_ns += weight;
  S->nodes[node].samples++;
  S->samples++;
  S->weight_ns += weight;
  session_add_moment(S, *t, node, 0);
}


static int build (Session *S, int prefix) {
  static int frames[NFUNCS + NCFUNCS];
  static int node[NSTACKS];
  uint64_t t = 0;
  int i, k = 0;
  if (!session_init(S) || !add_frames(S, frames)
      || !add_stacks(S, frames, node, prefix))
    return 0;
  for (i = 0; i < NSTACKS; i++) sample(S, node[i], &t);  /* each at least once */
  for (; i < NSAMPLES; i++) {
    /* phases: mostly near the last stack, at times anywhere (skewed) */
    if (random_below(50) == 0) k = (int)(NSTACKS * pow(uniform(), 3));
    else if (random_below(3) == 0) k = (k + (int)random_below(5)) % NSTACKS;
    sample(S, node[k], &t);
  }
  session_set_program(S, "bench/html (synthetic: 1,000,000 samples, 50,000 stacks)");
  S->start_time = (double)time(NULL);
  S->duration_ns = t;
  S->cpu_ns = t / 10 * 9;
  S->overhead_ns = t / 400;
  S->sampler_ns = t / 150;
  S->interval = 0.001;
  return 1;
}


static int by_value (const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}


static int save (const char *path, const Buf *b) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len) {
    perror(path);
    if (f) fclose(f);
    return 0;
  }
  return fclose(f) == 0;
}


int main (int argc, char **argv) {
  Session S;
  RenderOptions o = report_default_options();
  double times[RUNS], t0;
  int i, stacks = 0, prefix = 0;
  double depth = 0;
  Buf out;
  if (argc > 2 && strcmp(argv[1], "--prefix") == 0) {
    prefix = atoi(argv[2]);
    argv += 2;
    argc -= 2;
  }
  if (argc < 2 || prefix < 0 || prefix > MAXDEPTH / 2) {
    fprintf(stderr, "usage: %s [--prefix N] OUT.html [SESSION.json]\n", argv[0]);
    return 2;
  }
  t0 = now();
  if (!build(&S, prefix)) {
    fprintf(stderr, "%s: cannot build the session (out of memory?)\n", argv[0]);
    return 1;
  }
  for (i = 1; i < S.nnodes; i++) {
    int d = 0, k;
    if (S.nodes[i].samples == 0) continue;
    for (k = i; k > 0; k = S.nodes[k].parent) d++;
    stacks++;
    depth += d;
  }
  printf("session:   %llu samples, %d distinct stacks (%.1f frames deep on "
         "average), %d frames, %d nodes, %d timeline samples (built in %.2f s)\n",
         (unsigned long long)S.samples, stacks, depth / stacks, S.nframes,
         S.nnodes - 1, S.nmoments, now() - t0);
  for (i = 0; i < RUNS; i++) {
    buf_init(&out);
    t0 = now();
    report_render(&S, "html", &o, &out);
    times[i] = now() - t0;
    if (out.failed) {
      fprintf(stderr, "%s: out of memory while rendering\n", argv[0]);
      return 1;
    }
    if (i < RUNS - 1) buf_free(&out);
  }
  qsort(times, RUNS, sizeof times[0], by_value);
  printf("render:    %.0f ms (median of %d; best %.0f ms)\n",
         times[RUNS / 2] * 1e3, RUNS, times[0] * 1e3);
  printf("size:      %.2f MB (%zu bytes)\n", out.len / 1e6, out.len);
  if (!save(argv[1], &out)) return 1;
  buf_free(&out);
  if (argc > 2) {
    buf_init(&out);
    report_render(&S, "json", &o, &out);
    if (out.failed || !save(argv[2], &out)) return 1;
    buf_free(&out);
  }
  session_free(&S);
  return 0;
}
