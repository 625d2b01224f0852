/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin: everything it prints about messages, as text for a terminal or
 * as JSON. Text never carries control characters from the database (an
 * escape sequence in a From would drive the operator's terminal): strings go
 * through safe(), bodies that are not printable UTF-8 become a hex dump.
 * JSON output must parse whatever the database holds. Times are UTC.
 */
#include <inttypes.h>
#include <string.h>

#include "admin.h"

/* UTC, ISO 8601: the same output on every machine and in every test. */
char *fmt_time(int64_t t)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(t);
    if (!dt)
        return g_strdup_printf("%" PRId64, t);
    char *s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return s;
}

/* Appends @p s as a JSON string. Invalid UTF-8 becomes U+FFFD: the output
 * must parse whatever the database holds. */
void json_str(GString *out, const char *s)
{
    if (!s) {
        g_string_append(out, "null");
        return;
    }
    char *valid = g_utf8_make_valid(s, -1);
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)valid; *p; p++) {
        switch (*p) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                g_string_append_printf(out, "\\u%04x", *p);
            else
                g_string_append_c(out, (char)*p);
        }
    }
    g_string_append_c(out, '"');
    g_free(valid);
}

/* Printable text: valid UTF-8 without NULs or control characters other
 * than tab, CR and LF (nothing that could drive the terminal). */
static gboolean body_is_text(const msilo_message_t *m)
{
    if (!m->body_len)
        return TRUE;
    const char *b = m->body;
    if (!g_utf8_validate(b, (gssize)m->body_len, NULL))
        return FALSE;
    for (size_t i = 0; i < m->body_len; i++) {
        unsigned char c = (unsigned char)b[i];
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
            return FALSE;
    }
    const char *p = b;
    for (const char *end = b + m->body_len; p < end; p = g_utf8_next_char(p)) {
        gunichar u = g_utf8_get_char(p);
        if (u >= 0x80 && u < 0xa0) /* C1 controls (CSI ...) */
            return FALSE;
    }
    return TRUE;
}

static void hexdump(FILE *f, const unsigned char *b, size_t n)
{
    for (size_t off = 0; off < n; off += 16) {
        fprintf(f, "%08zx ", off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n)
                fprintf(f, " %02x", b[off + i]);
            else
                fputs("   ", f);
            if (i == 7)
                fputc(' ', f);
        }
        fputs("  |", f);
        for (size_t i = 0; i < 16 && off + i < n; i++)
            fputc(g_ascii_isprint(b[off + i]) ? b[off + i] : '.', f);
        fputs("|\n", f);
    }
}

/* A one-line, terminal-safe rendering of a string field. */
char *safe(const char *s)
{
    if (!s)
        return g_strdup("-");
    char *valid = g_utf8_make_valid(s, -1);
    for (char *p = valid; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return valid;
}

const char *ctype_of(const msilo_message_t *m)
{
    return m->ctype ? m->ctype : "text/plain";
}

void json_message(GString *out, const msilo_message_t *m, gboolean with_body)
{
    g_string_append_printf(out, "{\"id\": %" PRId64 ", \"user\": ", m->id);
    json_str(out, m->user);
    g_string_append(out, ", \"domain\": ");
    json_str(out, m->domain);
    g_string_append(out, ", \"from\": ");
    json_str(out, m->src);
    g_string_append(out, ", \"to\": ");
    json_str(out, m->dst);
    g_string_append(out, ", \"content_type\": ");
    json_str(out, ctype_of(m));
    g_string_append_printf(out, ", \"size\": %zu", m->body_len);
    char *t = fmt_time(m->inc_time);
    g_string_append_printf(out, ", \"time\": %" PRId64 ", \"time_utc\": \"%s\"", m->inc_time, t);
    g_free(t);
    g_string_append_printf(out, ", \"expires\": %" PRId64 ", \"reminder\": %" PRId64
                                ", \"attempts\": %" PRIu32,
                           m->exp_time, m->snd_time, m->attempts);
    if (with_body) {
        g_string_append(out, ", \"next_try\": ");
        g_string_append_printf(out, "%" PRId64, m->next_try);
        g_string_append(out, ", \"call_id\": ");
        json_str(out, m->callid);
        g_string_append(out, ", \"extra_headers\": ");
        json_str(out, m->extra_hdrs);
        if (body_is_text(m)) {
            char *b = g_strndup(m->body ? m->body : "", m->body_len);
            g_string_append(out, ", \"body\": ");
            json_str(out, b);
            g_free(b);
        } else {
            char *b64 = g_base64_encode(m->body, m->body_len);
            g_string_append_printf(out, ", \"body_base64\": \"%s\"", b64);
            g_free(b64);
        }
    }
    g_string_append_c(out, '}');
}

void show_text(const msilo_message_t *m)
{
    char *f;
    printf("id:            %" PRId64 "\n", m->id);
    f = g_strdup_printf("%s@%s", m->user, m->domain);
    char *owner = safe(f);
    printf("owner:         %s\n", owner);
    g_free(owner);
    g_free(f);
#define FIELD(label, value)                                                                \
    do {                                                                                   \
        char *v_ = safe(value);                                                            \
        printf("%-15s%s\n", label, v_);                                                    \
        g_free(v_);                                                                        \
    } while (0)
    FIELD("from:", m->src);
    FIELD("to:", m->dst);
    FIELD("content-type:", ctype_of(m));
    FIELD("call-id:", m->callid);
#undef FIELD
    char *t = fmt_time(m->inc_time);
    printf("stored:        %s (%" PRId64 ")\n", t, m->inc_time);
    g_free(t);
    t = fmt_time(m->exp_time);
    printf("expires:       %s (%" PRId64 ")\n", t, m->exp_time);
    g_free(t);
    if (m->snd_time) {
        t = fmt_time(m->snd_time);
        printf("reminder:      %s (%" PRId64 ")\n", t, m->snd_time);
        g_free(t);
    }
    printf("attempts:      %" PRIu32 "\n", m->attempts);
    if (m->next_try == INT64_MAX)
        printf("next try:      on the next registration\n");
    else if (m->next_try > 0) {
        t = fmt_time(m->next_try);
        printf("next try:      %s\n", t);
        g_free(t);
    }
    if (m->extra_hdrs && *m->extra_hdrs) {
        printf("extra headers:\n");
        char **lines = g_strsplit(m->extra_hdrs, "\r\n", -1);
        for (char **l = lines; *l; l++) {
            if (!**l)
                continue;
            char *v = safe(*l);
            printf("  %s\n", v);
            g_free(v);
        }
        g_strfreev(lines);
    }
    gboolean text = body_is_text(m);
    printf("size:          %zu byte%s%s\n\n", m->body_len, m->body_len == 1 ? "" : "s",
           text ? "" : " (binary, shown in hex)");
    if (text) {
        fwrite(m->body ? m->body : "", 1, m->body_len, stdout);
        if (m->body_len && ((const char *)m->body)[m->body_len - 1] != '\n')
            putchar('\n');
    } else {
        hexdump(stdout, m->body, m->body_len);
    }
}

/* ---- list */

void list_print_header(void)
{
    printf("%-10s  %-20s  %-32s  %-24s  %8s\n", "ID", "TIME (UTC)", "FROM", "TYPE", "SIZE");
}

void list_print_row(const msilo_message_t *m)
{
    char *t = fmt_time(m->inc_time);
    char *from = safe(m->src);
    char *type = safe(ctype_of(m));
    printf("%-10" PRId64 "  %-20s  %-32s  %-24s  %8zu%s\n", m->id, t, from, type, m->body_len,
           m->snd_time ? "  R" : "");
    g_free(t);
    g_free(from);
    g_free(type);
}

/* ---- stats */

void stats_print(const stats_t *st, const char *store_name, const char *table, gboolean json)
{
    if (json) {
        GString *out = g_string_new(NULL);
        g_string_append_printf(out, "{\"backend\": \"%s\", \"table\": ", store_name);
        json_str(out, table);
        g_string_append_printf(out,
                               ", \"messages\": %" PRId64 ", \"owners\": %zu, \"expired\": %" PRId64
                               ", \"reminders\": %" PRId64 ", \"retrying\": %" PRId64
                               ", \"body_bytes\": %" G_GUINT64_FORMAT,
                               st->messages, st->owners, st->expired, st->reminders,
                               st->leased_retry, (guint64)st->bytes);
        if (st->messages) {
            g_string_append_printf(out, ", \"oldest\": {\"id\": %" PRId64 ", \"time\": %" PRId64
                                        ", \"owner\": ",
                                   st->oldest_id, st->oldest_time);
            json_str(out, st->oldest_owner);
            g_string_append_printf(out, "}, \"newest\": {\"id\": %" PRId64 ", \"time\": %" PRId64
                                        "}, \"fullest\": {\"owner\": ",
                                   st->newest_id, st->newest_time);
            json_str(out, st->top_owner);
            g_string_append_printf(out, ", \"messages\": %" PRId64 "}", st->top_count);
        } else {
            g_string_append(out, ", \"oldest\": null, \"newest\": null, \"fullest\": null");
        }
        g_string_append(out, "}\n");
        fputs(out->str, stdout);
        g_string_free(out, TRUE);
    } else {
        printf("store:      %s, table %s\n", store_name, table);
        printf("messages:   %" PRId64 "\n", st->messages);
        printf("owners:     %zu\n", st->owners);
        if (st->messages) {
            char *t = fmt_time(st->oldest_time), *o = safe(st->oldest_owner);
            printf("oldest:     %s (id %" PRId64 ", %s)\n", t, st->oldest_id, o);
            g_free(t);
            g_free(o);
            t = fmt_time(st->newest_time);
            printf("newest:     %s (id %" PRId64 ")\n", t, st->newest_id);
            g_free(t);
            o = safe(st->top_owner);
            printf("fullest:    %s (%" PRId64 ")\n", o, st->top_count);
            g_free(o);
        } else {
            printf("oldest:     -\n");
        }
        printf("expired:    %" PRId64 " (not yet cleaned)\n", st->expired);
        printf("reminders:  %" PRId64 "\n", st->reminders);
        printf("retrying:   %" PRId64 " (failed delivery attempts)\n", st->leased_retry);
        printf("body bytes: %" G_GUINT64_FORMAT "\n", (guint64)st->bytes);
    }
}
