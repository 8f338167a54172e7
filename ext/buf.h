/*
** buf.h — a growable byte buffer that renderers write into.
** A failed allocation sets 'failed' and later writes are dropped, so a
** renderer never has to check each call; the caller checks once at the end.
*/
#ifndef sprof_buf_h
#define sprof_buf_h

#include <stdarg.h>
#include <stddef.h>

typedef struct Buf {
  char *data;     /* NUL-terminated contents (NULL until the first write) */
  size_t len;     /* bytes used, not counting the terminator */
  size_t cap;     /* bytes allocated */
  int failed;     /* an allocation failed; contents are incomplete */
} Buf;

void buf_init (Buf *b);
void buf_free (Buf *b);
void buf_add (Buf *b, const char *s, size_t n);
void buf_puts (Buf *b, const char *s);
void buf_putc (Buf *b, char c);
void buf_printf (Buf *b, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
void buf_json_string (Buf *b, const char *s);

#endif
