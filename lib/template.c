/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Templates for from_address, contact_hdr, content_type_hdr and
 * offline_message: text with $name variables, compiled once at start-up so
 * that an unknown variable is a configuration error, not a surprise at the
 * first notification. The set is small and fixed (see msilo_template_variables):
 * "$" followed by a known name expands; "$$" is a literal "$"; a "$" not
 * followed by a letter is literal; "$" + letters that name no variable is an error.
 */
#include "internal.h"

#include <string.h>

typedef enum {
    V_RU, V_RUSER, V_RD, V_FU, V_FUSER, V_FD, V_TU, V_TUSER, V_TD, V_OU, V_CI, V_LITERAL
} var_id;

static const char *const var_names[] = { "ru", "rU", "rd", "fu", "fU", "fd",
                                         "tu", "tU", "td", "ou", "ci", NULL };

typedef struct {
    var_id id;
    char *text; /* for V_LITERAL */
} piece;

struct msilo_template {
    GArray *pieces; /* of piece */
};

const char *const *msilo_template_variables(void)
{
    return var_names;
}

static void piece_clear(gpointer p)
{
    g_free(((piece *)p)->text);
}

int msilo_template_compile(const char *key, const char *text, msilo_template_t **ret)
{
    if (!text || !ret)
        return msilo_fail(MSILO_EINVAL, "template: bad arguments");
    msilo_template_t *t = g_new0(msilo_template_t, 1);
    t->pieces = g_array_new(FALSE, FALSE, sizeof(piece));
    g_array_set_clear_func(t->pieces, piece_clear);
    GString *lit = g_string_new(NULL);
    const char *p = text;
    while (*p) {
        if (p[0] != '$') {
            g_string_append_c(lit, *p++);
            continue;
        }
        if (p[1] == '$') {
            g_string_append_c(lit, '$');
            p += 2;
            continue;
        }
        size_t n = 0;
        while (g_ascii_isalpha(p[1 + n]))
            n++;
        if (n == 0) {
            g_string_append_c(lit, *p++);
            continue;
        }
        int id = -1;
        for (int i = 0; var_names[i]; i++)
            if (strlen(var_names[i]) == n && memcmp(var_names[i], p + 1, n) == 0)
                id = i;
        if (id < 0) {
            int rc = msilo_fail(MSILO_ECONFIG, "%s: unknown variable '$%.*s' (known: $ru $rU $rd $fu "
                                "$fU $fd $tu $tU $td $ou $ci, and $$ for '$')",
                                key ? key : "template", (int)n, p + 1);
            g_string_free(lit, TRUE);
            msilo_template_free(t);
            return rc;
        }
        if (lit->len) {
            piece l = { V_LITERAL, g_string_free(lit, FALSE) };
            g_array_append_val(t->pieces, l);
            lit = g_string_new(NULL);
        }
        piece v = { (var_id)id, NULL };
        g_array_append_val(t->pieces, v);
        p += 1 + n;
    }
    if (lit->len) {
        piece l = { V_LITERAL, g_string_free(lit, FALSE) };
        g_array_append_val(t->pieces, l);
    } else {
        g_string_free(lit, TRUE);
    }
    *ret = t;
    return 0;
}

char *msilo_template_expand(const msilo_template_t *t, const msilo_template_vars_t *v)
{
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < t->pieces->len; i++) {
        const piece *pc = &g_array_index(t->pieces, piece, i);
        const char *s = NULL;
        switch (pc->id) {
        case V_LITERAL: s = pc->text; break;
        case V_RU: s = v->ru; break;
        case V_RUSER: s = v->rU; break;
        case V_RD: s = v->rd; break;
        case V_FU: s = v->fu; break;
        case V_FUSER: s = v->fU; break;
        case V_FD: s = v->fd; break;
        case V_TU: s = v->tu; break;
        case V_TUSER: s = v->tU; break;
        case V_TD: s = v->td; break;
        case V_OU: s = v->ou; break;
        case V_CI: s = v->ci; break;
        }
        if (s)
            g_string_append(out, s);
    }
    return g_string_free(out, FALSE);
}

void msilo_template_free(msilo_template_t *t)
{
    if (!t)
        return;
    g_array_unref(t->pieces);
    g_free(t);
}
