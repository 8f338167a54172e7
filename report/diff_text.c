/*
** diff_text.c — the console report of a diff: both runs, the functions
** sorted by the change, then the merged call tree with the after run's
** weight and the change on each line. Lines under the threshold in both
** runs are hidden, as in the text report.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ansi.h"
#include "diff.h"


typedef struct DiffText {
  const Diff *d;
  const RenderOptions *o;
  Buf *out;
  char prefix[1024];  /* the tree's indentation for the current depth */
} DiffText;


static void color (DiffText *t, const char *code) {
  if (t->o->color) buf_puts(t->out, code);
}


/* A size in a compact unit, as the text report writes it, right-aligned
** in 'width' columns; with its sign if 'sign' is. */
static void put_bytes (Buf *out, double bytes, int width, int sign) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  const char *plus = !sign ? "" : bytes < 0 ? "-" : "+";
  char text[48];
  int u = -1;
  bytes = fabs(bytes);
  while (bytes >= 1024 && u < 3) {
    bytes /= 1024;
    u++;
  }
  if (u < 0) snprintf(text, sizeof text, "%s%.0f B", plus, bytes);
  else snprintf(text, sizeof text, "%s%.1f %s", plus, bytes, units[u]);
  buf_printf(out, "%*s", width, text);
}


/* A weight of a run: seconds, or bytes. */
static void put_weight (DiffText *t, double w) {
  if (t->d->bytes) put_bytes(t->out, w, 0, 0);
  else buf_printf(t->out, "%.3f", w / 1e9);
}


/* A value in the diff's unit (diff_value): a share, or a weight. */
static void put_value (DiffText *t, double v) {
  if (!t->d->runs->absolute) buf_printf(t->out, "%6.1f%%", v * 100);
  else if (t->d->bytes) put_bytes(t->out, v, 9, 0);
  else buf_printf(t->out, "%7.3f", v / 1e9);
}


/* Whether a change is worth a colour: half a point of the run (of the
** larger run), as the HTML report colours it. */
static int notable (const Diff *d, double change) {
  double scale = !d->runs->absolute ? 1
                 : d->before_total > d->after_total ? d->before_total
                 : d->after_total;
  return fabs(change) >= 0.005 * scale;
}


/* A change: points of the run, seconds or bytes, with its sign; red when
** it grew, green when it shrank. */
static void put_change (DiffText *t, double change) {
  const Diff *d = t->d;
  double least = !d->runs->absolute ? 0.0005 : d->bytes ? 0.5 : 0.5e6;
  if (notable(d, change)) color(t, change > 0 ? RED : GREEN);
  if (fabs(change) < least)  /* no "-0.0" */
    buf_puts(t->out, !d->runs->absolute ? "   0.0 pt"
                     : d->bytes ? "      0 B" : "  0.000 s");
  else if (!d->runs->absolute) buf_printf(t->out, "%+6.1f pt", change * 100);
  else if (d->bytes) put_bytes(t->out, change, 11, 1);
  else buf_printf(t->out, "%+7.3f s", change / 1e9);
  if (notable(d, change)) color(t, RESET);
}


/* The relative change, right-aligned in 'width' columns. */
static void put_relative (DiffText *t, double before, double after,
                          int width) {
  double r = diff_relative(t->d, before, after);
  if (r == HUGE_VAL) buf_printf(t->out, "%*s", width, "new");
  else if (fabs(r) < 0.005) buf_printf(t->out, "%*s", width, "0%");
  else buf_printf(t->out, "%+*.0f%%", width - 1, r * 100);
}


static void put_frame (DiffText *t, int frame) {
  const Frame *f = frame >= 0 ? t->d->frames[frame] : NULL;
  if (f == NULL) {
    color(t, DIM);
    buf_puts(t->out, "(outside Lua)");
    color(t, RESET);
    return;
  }
  color(t, f->library ? DIM : f->kind == FRAME_LUA ? BOLD : CYAN);
  buf_puts(t->out, f->name);
  color(t, RESET);
  color(t, DIM);
  if (f->kind == FRAME_LUA) buf_printf(t->out, "  %s:%d", f->file, f->line);
  else if (f->kind == FRAME_C) buf_puts(t->out, "  [C]");
  color(t, RESET);
}


/* ---------------------------------------------------------- the header */

static void run_line (DiffText *t, const char *label, const char *file,
                      const Session *S) {
  char when[64] = "-";
  time_t start = (time_t)S->start_time;
  struct tm tm;
  if (S->start_time > 0 && localtime_r(&start, &tm))
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  buf_printf(t->out, "\n  %s %s", label, file);
  if (S->program) buf_printf(t->out, " (%s)", S->program);
  buf_printf(t->out, "\n    Recorded: %s   Duration: %.3f s   Samples: %llu",
             when, S->duration_ns / 1e9, (unsigned long long)S->samples);
  if (t->d->bytes) {
    buf_puts(t->out, "   ");
    put_bytes(t->out, S == t->d->runs->before ? t->d->before_total
                                              : t->d->after_total, 0, 0);
    buf_puts(t->out, t->d->view == VIEW_LIVE ? " live" : " allocated");
  }
}


/* Says what the numbers are, so that the report reads on its own. */
static void explain (DiffText *t) {
  const Diff *d = t->d;
  const char *what = d->view == VIEW_ALLOC ? "bytes allocated"
                     : d->view == VIEW_LIVE ? "live bytes" : "time";
  if (!d->runs->absolute)
    buf_printf(t->out, "\n  Compared: shares of each run's %s. Change: in "
               "points (pt) of the run;\n  relative: after share / before "
               "share - 1. (--diff-absolute compares %s.)", what,
               d->bytes ? "bytes" : "seconds");
  else
    buf_printf(t->out, "\n  Compared: %s, in %s. Relative: after / before "
               "- 1.\n  (Without --diff-absolute: shares of each run.)",
               what, d->bytes ? "bytes" : "seconds");
}


static void header (DiffText *t) {
  buf_puts(t->out, "\n  ");
  color(t, BOLD);
  buf_puts(t->out, "sprof --diff");
  color(t, RESET);
  run_line(t, "Before:", t->d->runs->before_name, t->d->runs->before);
  run_line(t, "After: ", t->d->runs->after_name, t->d->runs->after);
  explain(t);
  buf_puts(t->out, "\n\n");
}


/* ------------------------------------------------------- the functions */

/* Shown unless it is under the threshold in both runs. */
static int shown (const DiffText *t, double before, double after) {
  const Diff *d = t->d;
  double min = t->o->show_all ? 0 : t->o->threshold;
  if (before <= 0 && after <= 0) return 0;
  return (d->before_total > 0 && before / d->before_total >= min)
      || (d->after_total > 0 && after / d->after_total >= min);
}


static void functions (DiffText *t) {
  const Diff *d = t->d;
  int i, n = 0;
  int bytes = d->runs->absolute && d->bytes;  /* wider columns */
  buf_puts(t->out, "  Functions by the change of their total (the function "
                   "and what it calls),\n  largest increase first, largest "
                   "decrease last:\n");
  color(t, DIM);
  buf_printf(t->out, "  %*s   %*s   %*s   %8s   %11s  function\n",
             bytes ? 9 : 7, "before", bytes ? 9 : 7, "after",
             bytes ? 11 : 9, "change", "relative", "self change");
  color(t, RESET);
  for (i = 0; i < d->nfunctions; i++) {
    const DiffFunction *f = &d->functions[i];
    if (!shown(t, f->before, f->after)) continue;
    buf_puts(t->out, "  ");
    put_value(t, diff_value(d, f->before, 0));
    buf_puts(t->out, "   ");
    put_value(t, diff_value(d, f->after, 1));
    buf_puts(t->out, "   ");
    put_change(t, f->change);
    buf_puts(t->out, "   ");
    put_relative(t, f->before, f->after, 8);
    buf_puts(t->out, "     ");
    put_change(t, f->self_change);
    buf_puts(t->out, "  ");
    put_frame(t, f->frame);
    buf_putc(t->out, '\n');
    n++;
  }
  if (n == 0) buf_puts(t->out, "  (none above the threshold)\n");
  buf_putc(t->out, '\n');
}


/* ------------------------------------------------------------ the tree */

static void line (DiffText *t, const DiffNode *n) {
  const Diff *d = t->d;
  put_weight(t, n->after);
  buf_printf(t->out, " %5.1f%%  ", d->after_total > 0
                                    ? 100 * n->after / d->after_total : 0);
  put_change(t, n->change);
  buf_puts(t->out, " ");
  put_relative(t, n->before, n->after, 6);
  buf_puts(t->out, "  ");
  put_frame(t, n->frame);
  if (n->hidden > 0) {
    color(t, DIM);
    buf_printf(t->out, "  [%d frame%s hidden]", n->hidden,
               n->hidden > 1 ? "s" : "");
    color(t, RESET);
  }
  buf_putc(t->out, '\n');
}


static void subtree (DiffText *t, const DiffNode *n) {
  size_t depth = strlen(t->prefix);
  int i, last = -1;
  line(t, n);
  for (i = 0; i < n->nchildren; i++)
    if (shown(t, n->children[i]->before, n->children[i]->after)) last = i;
  for (i = 0; i <= last; i++) {
    const DiffNode *c = n->children[i];
    if (!shown(t, c->before, c->after)) continue;
    buf_puts(t->out, t->prefix);
    buf_puts(t->out, i == last ? "└─ " : "├─ ");
    if (depth + 8 < sizeof t->prefix) {
      strcat(t->prefix, i == last ? "   " : "│  ");
      subtree(t, c);
      t->prefix[depth] = '\0';
    }
    else buf_puts(t->out, "...\n");
  }
}


static void tree (DiffText *t) {
  const DiffNode *root = t->d->root;
  DiffNode outside;
  int i;
  buf_puts(t->out, "  Call tree of both runs (the after run's total and "
                   "share, the change):\n");
  for (i = 0; i < root->nchildren; i++)
    if (shown(t, root->children[i]->before, root->children[i]->after))
      subtree(t, root->children[i]);
  /* the root's own time: outside Lua, as the text report shows it */
  memset(&outside, 0, sizeof outside);
  outside.frame = -1;
  outside.before = root->before_self;
  outside.after = root->after_self;
  outside.change = diff_value(t->d, outside.after, 1)
                   - diff_value(t->d, outside.before, 0);
  if (shown(t, outside.before, outside.after)) line(t, &outside);
}


void diff_render_text (const Diff *d, const RenderOptions *o, Buf *out) {
  DiffText t;
  t.d = d;
  t.o = o;
  t.out = out;
  t.prefix[0] = '\0';
  header(&t);
  if (d->before_total <= 0 || d->after_total <= 0)
    buf_printf(out, "  %s has no samples in this view: there is nothing to "
               "compare.\n\n", d->before_total <= 0 ? "Before" : "After");
  functions(&t);
  tree(&t);
  buf_putc(out, '\n');
}
