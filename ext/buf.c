/*
** buf.c — growable byte buffer.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"


void buf_init (Buf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}


void buf_free (Buf *b) {
  free(b->data);
  buf_init(b);
}


static int reserve (Buf *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (b->failed) return 0;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *data;
    while (cap < need) cap *= 2;
    data = realloc(b->data, cap);
    if (data == NULL) { b->failed = 1; return 0; }
    b->data = data;
    b->cap = cap;
  }
  return 1;
}


void buf_add (Buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}


void buf_puts (Buf *b, const char *s) {
  buf_add(b, s, strlen(s));
}


void buf_putc (Buf *b, char c) {
  buf_add(b, &c, 1);
}


void buf_printf (Buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}


/*
** A JSON string literal. Besides what JSON requires, '<', '>', '&' and
** U+2028/U+2029 are escaped so the text is also safe inside an HTML
** <script> element, and bytes that are not valid UTF-8 become U+FFFD
** (names from the profiled program are arbitrary bytes).
*/
static size_t utf8_len (const unsigned char *s) {
  unsigned c = s[0];
  size_t n, i;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
      || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}


void buf_json_string (Buf *b, const char *str) {
  const unsigned char *s = (const unsigned char *)(str ? str : "");
  buf_putc(b, '"');
  while (*s) {
    size_t n;
    switch (*s) {
      case '"': buf_puts(b, "\\\""); s++; continue;
      case '\\': buf_puts(b, "\\\\"); s++; continue;
      case '\n': buf_puts(b, "\\n"); s++; continue;
      case '\r': buf_puts(b, "\\r"); s++; continue;
      case '\t': buf_puts(b, "\\t"); s++; continue;
      case '<': case '>': case '&':
        buf_printf(b, "\\u%04x", *s); s++; continue;
      default: break;
    }
    if (*s < 0x20) { buf_printf(b, "\\u%04x", *s); s++; continue; }
    n = utf8_len(s);
    if (n == 0) { buf_puts(b, "\\ufffd"); s++; continue; }
    if (n == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9)) {
      buf_printf(b, "\\u%04x", s[2] == 0xA8 ? 0x2028 : 0x2029);
      s += 3;
      continue;
    }
    buf_add(b, (const char *)s, n);
    s += n;
  }
  buf_putc(b, '"');
}
