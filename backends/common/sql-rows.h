/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the SQL stores (libmsilo-postgres, libmsilo-sqlite): the few
 * things both do the same way when they turn messages into rows and rows
 * into messages. See meson.build here for why this is an internal static
 * library and not part of <msilo/sys/store.h>.
 */
#ifndef MSILO_SQL_ROWS_H
#define MSILO_SQL_ROWS_H

#include <glib.h>
#include <msilo/message.h>

/* Sorts @p n messages by id, oldest first: what claim and list return,
 * whatever order the database produced the rows in (UPDATE ... RETURNING
 * has none). @p msgs may be NULL when @p n is 0. */
void sql_sort_by_id(msilo_message_t **msgs, size_t n);

/* @p n as an SQL LIMIT: an int64, where a count beyond INT64_MAX (from a
 * size_t the caller meant as "all") becomes INT64_MAX. */
int64_t sql_limit(size_t n);

/* The text to write for @p v into a column that @p notnull says refuses
 * NULL: there (Kamailio's NOT NULL DEFAULT '' columns) a NULL becomes
 * @p subst, the value Kamailio itself would have written; elsewhere @p v
 * goes in as it is. Reading back, "" in such a column means NULL. */
const char *sql_not_null(const char *v, gboolean notnull, const char *subst);

/* The media type of the Content-Type @p ctype: leading blanks and the
 * parameters dropped, lower-cased (g_free); what take_expired compares. */
char *sql_media_type(const char *ctype);

#endif
