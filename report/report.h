/*
** report.h — from a session to what people read: processors that shape
** the call tree for display (view.c) and the renderers.
*/
#ifndef sprof_report_h
#define sprof_report_h

#include "../ext/buf.h"
#include "../ext/session.h"

typedef struct RenderOptions {
  int show_all;       /* no library grouping, no threshold */
  int color;          /* ANSI colours (text) */
  double threshold;   /* hide frames under this share of the total */
  double self_threshold; /* a library frame whose own time is at least this
                            share of the total shows inside its group */
  int show_internals; /* the interpreter's own native frames */
  int show_host;      /* the host's native frames above the Lua root */
  int view;           /* a ReportView: what the weights are */
} RenderOptions;

/* What a report weighs its stacks by. VIEW_DEFAULT: bytes allocated for
** a memory profile, else time. */
typedef enum ReportView {
  VIEW_DEFAULT, VIEW_TIME, VIEW_ALLOC, VIEW_LIVE
} ReportView;

/* A node of the display tree: the session's tree after processing. */
typedef struct ViewNode {
  int frame;                  /* index in the session's frames; -1: root */
  uint64_t total_ns;          /* this frame and everything below it */
  uint64_t self_ns;           /* this frame's own time */
  uint64_t hidden_ns;         /* the own time of the frames hidden into it */
  uint64_t samples;           /* samples in self_ns and hidden_ns */
  struct ViewNode **children; /* sorted by total_ns, largest first */
  int nchildren, cap;
  int hidden;                 /* library frames folded into this one */
  const char *hidden_file;    /* the file of the one with most own time */
  uint64_t hidden_file_ns;    /* that frame's own time */
  int hidden_files;           /* 2: they came from more than that file */
} ViewNode;

RenderOptions report_default_options (void);
int report_render (const Session *S, const char *format,
                   const RenderOptions *o, Buf *out);
const char *report_formats (void);
const char *report_format_of (const char *path);
int report_view_of (const char *name);
int report_known_format (const char *format);

ViewNode *view_build (const Session *S, const RenderOptions *o);
void view_free (ViewNode *v);

void render_text (const Session *S, const RenderOptions *o, Buf *out);
void render_collapsed (const Session *S, Buf *out);
void render_collapsed_shown (const Session *S, const RenderOptions *o,
                             Buf *out);
void render_json (const Session *S, Buf *out);
void render_html (const Session *S, const RenderOptions *o, Buf *out);
void render_speedscope (const Session *S, const RenderOptions *o, Buf *out);
void render_pprof (const Session *S, const RenderOptions *o, Buf *out);

/* stacks.c: the stacks exported to other tools. For session node i,
** node[i] is the node that stands for it (itself, or the nearest node
** above it that is shown; 0: the root); for a shown node, parent[i] is
** the next shown node up and depth[i] its shown frames from the root.
** id[f] numbers the frames shown from 0 (nids of them), else -1. */
typedef struct ShownTree {
  int *node, *parent, *depth, *id;
  int max_depth, nids;
} ShownTree;

int shown_build (ShownTree *t, const Session *S, const RenderOptions *o);
void shown_free (ShownTree *t);

int report_load_json_file (Session *S, const char *path,
                           char *why, size_t whylen);
int report_load_json_text (Session *S, const char *text, size_t len,
                           char *why, size_t whylen);

#endif
