/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private helpers shared by the files of libmsilo. Not installed. */
#ifndef MSILO_INTERNAL_H
#define MSILO_INTERNAL_H

#include <glib.h>
#include <msilo/msilo.h>

/* Records a detail for msilo_error_detail() and returns @code, so that
 * `return msilo_fail(MSILO_EURI, "To URI '%s' has no host", s);` reads well. */
int msilo_fail(int code, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Clears the detail (successful calls leave the previous detail alone). */
void msilo_error_clear(void);


/* ---- messages (message.c) --------------------------------------------- */

/* A zeroed message with @size bytes after it in the same allocation, for its
 * strings and body (*ret_buf); msilo_message_free() frees it in one go. A
 * g_free() of one of those strings would corrupt the heap, so such messages
 * go only to the engine, never out of the library (message.c). */
msilo_message_t *msilo_message_new_packed(size_t size, char **ret_buf);

/* ---- request views (request.c) ---------------------------------------- */

/* The step between two items of a view's headers: header_size from revision
 * 2 on, two pointers (the first msilo_header_t) before. A view's members
 * past its revision do not exist: nothing reads header_size of a version 1
 * view. */
#define MSILO_HEADER_V1_SIZE (2 * sizeof(const char *))
static inline size_t msilo_request_header_step(const msilo_request_t *req)
{
    return req->version >= 2 ? req->header_size : MSILO_HEADER_V1_SIZE;
}
static inline const msilo_header_t *msilo_request_header(const msilo_request_t *req, size_t i)
{
    return (const msilo_header_t *)(const void *)((const char *)req->headers +
                                                  i * msilo_request_header_step(req));
}

/* ---- stores (store.c, backends/memory/memory.c) ------------------------- */

/* msilo_store_claim() for the engine: from the memory store, packed messages
 * (msilo_memory_claim_packed()); from any other store, the same as the
 * public wrapper. */
int msilo_store_claim_engine(msilo_store_t *s, const msilo_store_claim_t *c,
                             msilo_message_t ***ret_msgs, size_t *ret_n);
/* Is @s a memory store (msilo_memory_store_new())? */
gboolean msilo_memory_store_is(const msilo_store_t *s);
/* The memory store's claim with each message packed (message.c). */
int msilo_memory_claim_packed(msilo_store_t *s, const msilo_store_claim_t *c,
                              msilo_message_t ***ret_msgs, size_t *ret_n);

/* ---- URIs (aor.c) ------------------------------------------------------ */

typedef enum { MSILO_SCHEME_SIP = 1, MSILO_SCHEME_SIPS, MSILO_SCHEME_TEL } msilo_scheme_t;

/* A parsed URI. The strings live in the struct itself (inline_) or, for a
 * long URI, in one g_malloc'd block (heap_): parsing allocates nothing in the
 * common case, and msilo_uri_clear() frees at most one block. A parsed
 * msilo_uri_t points into itself, so it is never copied by value. */
#define MSILO_URI_INLINE 512
typedef struct msilo_uri {
    msilo_scheme_t scheme;
    const char *uri;      /* the addr-spec, without a ;tag= header parameter */
    const char *user_raw; /* user as written (escaped), NULL when absent */
    const char *user;     /* user unescaped (tel: number without visual separators) */
    const char *host;     /* lower case; NULL for tel: without phone-context */
    int port;             /* 0 when absent */
    char *heap_;          /* the strings, when they do not fit in inline_ */
    char inline_[MSILO_URI_INLINE];
} msilo_uri_t;

/* Makes @u safe to msilo_uri_clear() without parsing it (cheaper than = {0}). */
static inline void msilo_uri_init(msilo_uri_t *u)
{
    u->scheme = 0;
    u->uri = u->user_raw = u->user = u->host = NULL;
    u->port = 0;
    u->heap_ = NULL;
}

/* Parses a URI or name-addr. 0, or MSILO_EURI with a detail (what names
 * the field in that detail). Rejects control characters anywhere. */
int msilo_uri_parse(const char *text, const char *what, msilo_uri_t *ret);
void msilo_uri_clear(msilo_uri_t *u);
/* user@host with both present (an address of record). */
gboolean msilo_uri_is_aor(const msilo_uri_t *u);
/* "sip:" + escaped user + "@" + host, g_malloc'd. */
char *msilo_aor_to_uri(const char *user, const char *domain);

/* ---- templates (template.c) ------------------------------------------- */

/* Values the template variables expand to; NULL members expand to "". */
typedef struct msilo_template_vars {
    const char *ru, *rU, *rd; /* Request-URI, its user, its host */
    const char *fu, *fU, *fd; /* From */
    const char *tu, *tU, *td; /* To */
    const char *ou;           /* original Request-URI */
    const char *ci;           /* Call-ID */
} msilo_template_vars_t;

typedef struct msilo_template msilo_template_t;

/* Compiles @text; MSILO_ECONFIG naming @key and the unknown variable. */
int msilo_template_compile(const char *key, const char *text, msilo_template_t **ret);
char *msilo_template_expand(const msilo_template_t *t, const msilo_template_vars_t *v);
void msilo_template_free(msilo_template_t *t);
/* The documented variable names, NULL-terminated (for docs and tests). */
const char *const *msilo_template_variables(void);

/* ---- times (aor.c) ------------------------------------------------------ */

/* ctime()-style "Fri Nov 27 02:01:01 2026 +0100" in local time with its
 * offset from UTC, locale independent. */
char *msilo_format_ctime(int64_t t);
/* RFC 1123 "Fri, 27 Nov 2026 02:01:01 GMT". */
char *msilo_format_http_date(int64_t t);

#endif
