/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Row helpers shared by the SQL stores (see sql-rows.h). */
#include "sql-rows.h"

#include <string.h>

#include <stdlib.h>

static int cmp_msg_id(const void *a, const void *b)
{
    const msilo_message_t *x = *(msilo_message_t *const *)a;
    const msilo_message_t *y = *(msilo_message_t *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

void sql_sort_by_id(msilo_message_t **msgs, size_t n)
{
    /* qsort's base must not be NULL, even for no elements */
    if (n > 1)
        qsort(msgs, n, sizeof(*msgs), cmp_msg_id);
}

int64_t sql_limit(size_t n)
{
    return n > (size_t)G_MAXINT64 ? G_MAXINT64 : (int64_t)n;
}

const char *sql_not_null(const char *v, gboolean notnull, const char *subst)
{
    return v || !notnull ? v : subst;
}

char *sql_media_type(const char *ctype)
{
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    return g_ascii_strdown(ctype, (gssize)strcspn(ctype, "; \t"));
}
