/*
** ansi.h — the terminal colours of the text renderers (text.c, diff_text.c),
** written only when RenderOptions.color is on.
*/
#ifndef sprof_ansi_h
#define sprof_ansi_h

#define RESET  "\033[0m"
#define BOLD   "\033[1m"
#define DIM    "\033[2m"
#define RED    "\033[31m"
#define GREEN  "\033[32m"
#define YELLOW "\033[33m"
#define CYAN   "\033[36m"
#define BRIGHT_GREEN "\033[92m"

#endif
