/*
 * buf: a growable byte buffer, always NUL-terminated.
 *
 * Contract: a zero-initialised struct buf (BUF_INIT) is an empty buffer.
 * The buffer owns its memory; buf_free() releases it, buf_steal() hands the
 * bytes to the caller (who frees them with free()) and leaves the buffer empty.
 * Allocation failure aborts the process through xmalloc-style helpers: the
 * service treats out-of-memory as fatal, never bad input.
 * Not thread-safe; one buffer belongs to one thread at a time.
 */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;  /* NUL-terminated when len > 0 or after any append */
	size_t len;  /* bytes used, not counting the NUL */
	size_t cap;  /* bytes allocated */
};

#define BUF_INIT { NULL, 0, 0 }

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Empty the buffer but keep its allocation. */
void buf_reset(struct buf *b);
/* The contents as a C string ("" for an empty buffer); owned by the buffer. */
const char *buf_cstr(const struct buf *b);
/* Hand the contents to the caller (never NULL) and empty the buffer. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

/* The whole contents of a file (NUL-terminated; its length in *len_out if
 * non-NULL), or NULL with errno set. Caller frees. */
char *read_file_all(const char *path, size_t *len_out);
/* Same, refusing files larger than max bytes. NULL with errno set: fopen's
 * errno when the file cannot be opened, EFBIG when it is larger than max
 * (reading stops there), EIO on a read error. Caller frees. */
char *read_file_limit(const char *path, size_t max, size_t *len_out);

/* Allocation helpers that abort on out-of-memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
