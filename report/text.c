/*
** text.c — the console report: a header, then the call tree from the
** root, each line with its time, share, function name and file:line.
** In a memory view (weights_bytes) the weights are bytes, shown in
** KiB/MiB/GiB, and the header says what was allocated or kept.
*/
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ansi.h"
#include "report.h"


typedef struct TextCtx {
  const Session *S;
  const RenderOptions *o;
  Buf *out;
  double total;      /* the whole tree's weight: 100% */
  char prefix[1024]; /* the tree's indentation for the current depth */
} TextCtx;


static void color (TextCtx *t, const char *code) {
  if (t->o->color) buf_puts(t->out, code);
}


static const char *share_color (double share) {
  if (share >= 0.6) return RED;
  if (share >= 0.3) return YELLOW;
  if (share >= 0.2) return GREEN;
  return BRIGHT_GREEN;
}


/* A size in a compact unit: "812 B", "3.1 KiB", "812.3 MiB". */
static const char *bytes_text (char *buf, size_t len, double bytes) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  int u = -1;
  if (bytes < 1024) {
    snprintf(buf, len, "%.0f B", bytes);
    return buf;
  }
  while (bytes >= 1024 && u < 3) {
    bytes /= 1024;
    u++;
  }
  snprintf(buf, len, bytes == (double)(uint64_t)bytes ? "%.0f %s" : "%.1f %s",
           bytes, units[u]);
  return buf;
}


/* A count in a compact unit: "812", "12 k", "1.9 M". */
static const char *count_text (char *buf, size_t len, double n) {
  const char *unit = "";
  if (n >= 1e9) { n /= 1e9; unit = " G"; }
  else if (n >= 1e6) { n /= 1e6; unit = " M"; }
  else if (n >= 1e3) { n /= 1e3; unit = " k"; }
  snprintf(buf, len, n < 10 && *unit ? "%.1f%s" : "%.0f%s", n, unit);
  return buf;
}


/* A weight as the report shows it: seconds, or bytes with a unit. */
static void put_weight (TextCtx *t, uint64_t w) {
  char buf[32];
  if (t->S->weights_bytes)
    buf_puts(t->out, bytes_text(buf, sizeof buf, (double)w));
  else buf_printf(t->out, "%.3f", w / 1e9);
}


static void memory_header (TextCtx *t) {
  const Session *S = t->S;
  char bytes[32], objects[32], rate[32];
  buf_printf(t->out, "\n  Memory: %s %s in %s objects (sampled every %s)",
             t->o->view == VIEW_LIVE ? "live at the end" : "allocated",
             bytes_text(bytes, sizeof bytes, (double)S->weight_ns),
             count_text(objects, sizeof objects, (double)S->samples),
             bytes_text(rate, sizeof rate, S->memory_rate));
}


static void time_header (TextCtx *t, double duration) {
  const Session *S = t->S;
  Buf *out = t->out;
  buf_printf(out, "   Samples: %llu", (unsigned long long)S->samples);
  if (duration > 0)
    buf_printf(out, " (%.0f/s)", S->samples / duration);
  buf_printf(out, "\n  Interval: %g ms   Clock: %s", S->interval * 1e3,
             S->clock == CLOCK_KIND_CPU ? "cpu" : "wall");
  if (duration > 0)
    buf_printf(out, "   CPU: %.0f%% of wall time",
               100.0 * (S->cpu_ns / 1e9) / duration);
}


static void header (TextCtx *t) {
  const Session *S = t->S;
  Buf *out = t->out;
  double duration = S->duration_ns / 1e9;
  char when[64] = "-";
  time_t start = (time_t)S->start_time;
  struct tm tm;
  if (S->start_time > 0 && localtime_r(&start, &tm))
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  buf_puts(out, "\n  ");
  color(t, BOLD);
  buf_puts(out, "sprof");
  color(t, RESET);
  if (S->program) buf_printf(out, "  %s", S->program);
  buf_printf(out, "\n  Recorded: %s   Duration: %.3f s", when, duration);
  if (S->weights_bytes) memory_header(t);
  else time_header(t, duration);
  if (duration > 0) {
    buf_printf(out, "\n  Profiler overhead: %.2f%% of the run in the program's "
               "thread (%.1f ms)", 100.0 * (S->overhead_ns / 1e9) / duration,
               S->overhead_ns / 1e6);
    if (S->sampler_ns > 0)
      buf_printf(out, ", %.2f%% of a CPU in the sampler thread",
                 100.0 * (S->sampler_ns / 1e9) / duration);
  }
  buf_puts(out, "\n\n");
}


/* The group's label: how many frames were hidden into the line, and the
** time (bytes) spent in them, which is not the function's own. Hidden
** time under half a millisecond only led to what shows below. */
static void hidden_frames (TextCtx *t, const ViewNode *v) {
  color(t, DIM);
  buf_printf(t->out, "  [%d frame%s hidden", v->hidden,
             v->hidden > 1 ? "s" : "");
  if (t->S->weights_bytes ? v->hidden_ns > 0 : v->hidden_ns >= 500000) {
    buf_puts(t->out, ": ");
    put_weight(t, v->hidden_ns);
    if (!t->S->weights_bytes) buf_puts(t->out, " s");
  }
  if (v->hidden_file) {
    const char *base = strrchr(v->hidden_file, '/');
    buf_printf(t->out, " in %s%s", base ? base + 1 : v->hidden_file,
               v->hidden_files > 1 ? " and others" : "");
  }
  buf_putc(t->out, ']');
  color(t, RESET);
}


static void line (TextCtx *t, const ViewNode *v) {
  const Frame *f = v->frame >= 0 ? &t->S->frames[v->frame] : NULL;
  double share = t->total > 0 ? (double)v->total_ns / t->total : 0;
  Buf *out = t->out;
  color(t, share_color(share));
  put_weight(t, v->total_ns);
  buf_printf(out, " %5.1f%%", share * 100);
  color(t, RESET);
  buf_puts(out, "  ");
  if (f == NULL) {
    color(t, DIM);
    buf_puts(out, "(outside Lua)");
    color(t, RESET);
    buf_putc(out, '\n');
    return;
  }
  color(t, f->library ? DIM : f->kind == FRAME_LUA ? BOLD : CYAN);
  buf_puts(out, f->name);
  color(t, RESET);
  if (f->kind == FRAME_LUA) {
    color(t, DIM);
    buf_printf(out, "  %s:%d", f->file, f->line);
    color(t, RESET);
  }
  else if (f->kind == FRAME_C) {
    color(t, DIM);
    buf_puts(out, "  [C]");
    color(t, RESET);
  }
  if (v->hidden > 0) hidden_frames(t, v);
  buf_putc(out, '\n');
}


static void subtree (TextCtx *t, const ViewNode *v) {
  size_t depth = strlen(t->prefix);
  int i;
  line(t, v);
  for (i = 0; i < v->nchildren; i++) {
    int last = i == v->nchildren - 1;
    buf_puts(t->out, t->prefix);
    buf_puts(t->out, last ? "└─ " : "├─ ");
    if (depth + 8 < sizeof t->prefix) {
      strcat(t->prefix, last ? "   " : "│  ");
      subtree(t, v->children[i]);
      t->prefix[depth] = '\0';
    }
    else buf_puts(t->out, "...\n");
  }
}


void render_text (const Session *S, const RenderOptions *o, Buf *out) {
  TextCtx t;
  ViewNode *root = view_build(S, o);
  int i;
  t.S = S;
  t.o = o;
  t.out = out;
  t.prefix[0] = '\0';
  header(&t);
  if (root == NULL) { out->failed = 1; return; }
  t.total = (double)root->total_ns;
  if (root->total_ns == 0)
    buf_puts(out, !S->weights_bytes ? "No samples were recorded.\n"
                  : o->view == VIEW_LIVE ? "Nothing sampled was still allocated "
                                           "when the profile stopped.\n"
                  : "No allocations were sampled.\n");
  for (i = 0; i < root->nchildren; i++) subtree(&t, root->children[i]);
  if (root->self_ns > 0 && root->self_ns >= o->threshold * root->total_ns) {
    ViewNode outside = *root;
    outside.frame = -1;
    outside.total_ns = root->self_ns;
    line(&t, &outside);
  }
  buf_putc(out, '\n');
  view_free(root);
}
