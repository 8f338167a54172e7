/*
** diff.h — comparing two profiles (sprof-lua --diff before.json after.json):
** the two call trees merged into one, and each function's before and
** after, with the change between them.
*/
#ifndef sprof_diff_h
#define sprof_diff_h

#include "report.h"

/* The two runs compared, and the names the messages give them. */
typedef struct DiffRuns {
  const Session *before, *after;
  const char *before_name, *after_name;   /* their files */
  int absolute;         /* compare seconds (bytes), not shares of the run */
} DiffRuns;

/* A node of the merged tree: one frame reached by one path, in either run.
** Weights are totals (this frame and below) in ns, or bytes. */
typedef struct DiffNode {
  int frame;                  /* index in Diff.frames; -1: the root */
  double before, after;       /* total weight in each run */
  double before_self, after_self;
  int hidden;                 /* library frames folded into it (after's,
                                 else before's) */
  double change;              /* after - before, in the diff's unit */
  struct DiffNode **children; /* sorted by change, largest increase first */
  int nchildren, cap;
} DiffNode;

/* A function: every node of its frame, across all stacks (a recursive
** call counted once in the totals). */
typedef struct DiffFunction {
  int frame;
  double before, after;       /* total weight */
  double before_self, after_self;
  double change, self_change; /* in the diff's unit */
} DiffFunction;

typedef struct Diff {
  const DiffRuns *runs;
  Session before, after;      /* the runs weighed as the view asks: the
                                 runs' own, or for a memory view copies
                                 of their nodes, with bytes as weights */
  const Frame **frames;       /* the frames of both, each function once */
  int nframes;
  DiffNode *root;
  DiffFunction *functions;    /* sorted by change, largest increase first */
  int nfunctions;
  double before_total, after_total;
  int bytes;                  /* the weights are bytes, not ns */
  int view;                   /* the ReportView compared */
} Diff;

int diff_build (Diff *d, const DiffRuns *runs, const RenderOptions *o,
                char *why, size_t whylen);
void diff_free (Diff *d);
double diff_value (const Diff *d, double weight, int after);
double diff_relative (const Diff *d, double before, double after);

int diff_render (const DiffRuns *runs, const char *format,
                 const RenderOptions *o, Buf *out, char *why, size_t whylen);
void diff_render_text (const Diff *d, const RenderOptions *o, Buf *out);

#endif
