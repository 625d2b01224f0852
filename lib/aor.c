/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine's own small URI handling: enough to pick the owner (address of
 * record) of a message and to fill template variables. It is not a SIP
 * parser - the SIP stack has parsed the request already; this only takes a
 * URI (or a name-addr header value) apart:
 *
 *   [display-name] "<" addr-spec ">" *(;param)   or   addr-spec [;tag=...]
 *   display-name: tokens, or a quoted-string (RFC 3261 25.1) in which '<',
 *                 '>' and '\"' are text: the addr-spec is in the first '<'
 *                 outside quotes. An unterminated quote is an error.
 *   addr-spec: sip:|sips: [user[:password]@] host [:port] [;params] [?headers]
 *              tel: number [;params]  (phone-context becomes the host)
 *
 * The user part is unescaped (%41 == A, RFC 3261 19.1.4) and compared
 * case-sensitively; the host is lower-cased. tel: numbers lose their visual
 * separators (RFC 3966: - . ( )). Control characters are refused anywhere, so
 * nothing that comes out of here can inject a header line. Fuzzed by
 * tests/fuzz/fuzz-uri.c.
 */
#include "internal.h"

#include <string.h>
#include <time.h>

/* Limits that keep one URI from bloating a row: the msilo modules' columns are
 * VARCHAR(64) for user/domain and VARCHAR(255) for src/dst. */
#define MAX_URI_LEN 1024
#define MAX_PART_LEN 255

void msilo_uri_clear(msilo_uri_t *u)
{
    if (!u)
        return;
    g_free(u->heap_);
    msilo_uri_init(u);
}

gboolean msilo_uri_is_aor(const msilo_uri_t *u)
{
    return u->user && *u->user && u->host && *u->host;
}

/* Character classes for the scans below: one table lookup per byte. */
enum {
    C_CTL = 1,  /* control character other than HTAB: refused anywhere */
    C_BAD = 2,  /* not allowed inside an addr-spec: SP HTAB < > " DEL, non-ASCII */
    C_HOST = 4, /* hostname character: alnum - . _ */
    C_NA = 8,   /* '<' or '"': where a name-addr's addr-spec or display name starts */
};
static const unsigned char char_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    2, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 10, 0, 2, 0,
    0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 4,
    0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static inline char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = g_ascii_tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copies s[0..n) to @out as a string; returns what follows its NUL. */
static char *put_str(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    out[n] = '\0';
    return out + n + 1;
}

/* Unescapes %XX of s[0..n) into @out (room for n + 1); FALSE on a bad escape
 * or an escaped control character. *ret_end: what follows the NUL. */
static gboolean unescape(const char *s, size_t n, char *out, char **ret_end)
{
    if (!memchr(s, '%', n)) { /* the common case: nothing escaped */
        *ret_end = put_str(out, s, n);
        return TRUE;
    }
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return FALSE;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return FALSE;
            c = (char)(hi * 16 + lo);
            if ((unsigned char)c < 0x20 || c == 0x7f)
                return FALSE;
            i += 2;
        }
        *o++ = c;
    }
    *o = '\0';
    *ret_end = o + 1;
    return TRUE;
}

/* Validates a hostname / IPv4 / [IPv6] of length n and writes it lower-cased
 * to @out (room for n + 1); NULL if invalid, else what follows the NUL. */
static char *parse_host(const char *s, size_t n, char *out)
{
    if (n == 0 || n > MAX_PART_LEN)
        return NULL;
    if (s[0] == '[') {
        if (s[n - 1] != ']' || n < 3)
            return NULL;
        for (size_t i = 1; i < n - 1; i++)
            if (!g_ascii_isxdigit(s[i]) && s[i] != ':' && s[i] != '.')
                return NULL;
        for (size_t i = 0; i < n; i++)
            out[i] = ascii_lower(s[i]);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!(char_class[(unsigned char)s[i]] & C_HOST))
                return NULL;
            out[i] = ascii_lower(s[i]);
        }
    }
    out[n] = '\0';
    return out + n + 1;
}

/* Finds the addr-spec inside a name-addr, or returns the bare text.
 * @len: strlen(text); @lt: the first '<' in text or NULL. */
static int extract_addr_spec(const char *text, size_t len, const char *lt, const char *what,
                             const char **ret_s, size_t *ret_n)
{
    if (lt) {
        const char *gt = memchr(lt + 1, '>', len - (size_t)(lt + 1 - text));
        if (!gt)
            return msilo_fail(MSILO_EURI, "%s: '<' without '>'", what);
        *ret_s = lt + 1;
        *ret_n = (size_t)(gt - lt - 1);
    } else {
        const char *s = text;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = len - (size_t)(s - text);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        /* A bare header value's ";tag=" is a header parameter, not the URI's. */
        for (const char *p = s, *end = s + n; (p = memchr(p, ';', (size_t)(end - p))); p++) {
            if ((size_t)(end - p) >= 5 && memcmp(p, ";tag=", 5) == 0) {
                n = (size_t)(p - s);
                break;
            }
        }
        *ret_s = s;
        *ret_n = n;
    }
    return 0;
}

int msilo_uri_parse(const char *text, const char *what, msilo_uri_t *ret)
{
    if (!what)
        what = "URI";
    if (!text || !ret)
        return msilo_fail(MSILO_EINVAL, "%s: NULL", what);
    msilo_uri_init(ret);
    const char *p = text, *lt = NULL;
    unsigned seen = 0; /* the classes of all bytes */
    for (;; p++) {
        /* the common bytes in a tight loop: NUL is C_CTL, so it ends it too */
        unsigned cl;
        while (!((cl = char_class[(unsigned char)*p]) & (C_CTL | C_NA))) {
            seen |= cl;
            p++;
        }
        seen |= cl;
        if (!*p)
            break;
        if (cl & C_CTL)
            return msilo_fail(MSILO_EURI, "%s: control character in URI", what);
        if (*p == '<') {
            if (!lt)
                lt = p;
            continue;
        }
        /* '"': before the '<' it opens a quoted display name, whose '<' are
         * text ("\"<sip:bob@h>\" <sip:mallory@h>" is mallory's); after it, a
         * quoted parameter value, which cannot move the '<' any more. A
         * quoted-pair ('\' and one character) never ends the string. */
        if (lt)
            continue;
        for (p++; *p != '"'; p++) {
            if (!*p)
                return msilo_fail(MSILO_EURI, "%s: unterminated quoted display name", what);
            if (*p == '\\' && p[1])
                p++;
            if (char_class[(unsigned char)*p] & C_CTL)
                return msilo_fail(MSILO_EURI, "%s: control character in URI", what);
        }
    }
    const char *s = NULL;
    size_t n = 0;
    int rc = extract_addr_spec(text, (size_t)(p - text), lt, what, &s, &n);
    if (rc)
        return rc;
    if (n == 0)
        return msilo_fail(MSILO_EURI, "%s: empty URI", what);
    if (n > MAX_URI_LEN)
        return msilo_fail(MSILO_EURI, "%s: URI longer than %d bytes", what, MAX_URI_LEN);
    /* A bare addr-spec is part of text: if text has no such byte, it has none.
     * ('<' is C_BAD itself, so a name-addr always takes the loop.) */
    if (seen & C_BAD)
        for (size_t i = 0; i < n; i++)
            if (char_class[(unsigned char)s[i]] & C_BAD)
                return msilo_fail(MSILO_EURI, "%s: invalid character in URI", what);

    const char *colon = memchr(s, ':', n);
    if (!colon)
        return msilo_fail(MSILO_EURI, "%s: no scheme in '%.*s'", what, (int)MIN(n, 64), s);
    size_t slen = (size_t)(colon - s);
    char sc[4] = { 0 };
    for (size_t i = 0; i < slen && i < sizeof sc; i++)
        sc[i] = ascii_lower(s[i]);
    if (slen == 3 && memcmp(sc, "sip", 3) == 0)
        ret->scheme = MSILO_SCHEME_SIP;
    else if (slen == 4 && memcmp(sc, "sips", 4) == 0)
        ret->scheme = MSILO_SCHEME_SIPS;
    else if (slen == 3 && memcmp(sc, "tel", 3) == 0)
        ret->scheme = MSILO_SCHEME_TEL;
    else
        return msilo_fail(MSILO_EURI, "%s: unsupported scheme '%.*s'", what, (int)MIN(slen, 16), s);
    const char *rest = colon + 1;
    size_t rlen = n - slen - 1;

    /* uri, user_raw, user and host are each at most n bytes + NUL */
    char *buf = ret->inline_;
    if (4 * (n + 1) > sizeof ret->inline_)
        buf = ret->heap_ = g_malloc(4 * (n + 1));
    char *out = put_str(buf, s, n);
    ret->uri = buf;

    if (ret->scheme == MSILO_SCHEME_TEL) {
        /* tel:number[;params] - the number is the user; phone-context the host */
        const char *semi = memchr(rest, ';', rlen);
        size_t numlen = semi ? (size_t)(semi - rest) : rlen;
        if (numlen == 0 || numlen > MAX_PART_LEN)
            goto bad_user;
        char *num = out;
        size_t len = 0;
        for (size_t i = 0; i < numlen; i++) {
            char c = rest[i];
            if (c == '-' || c == '.' || c == '(' || c == ')')
                continue;
            if (!g_ascii_isxdigit(c) && c != '+' && c != '*' && c != '#')
                goto bad_user;
            num[len++] = c;
        }
        num[len] = '\0';
        if (len == 0 || (len == 1 && num[0] == '+'))
            goto bad_user;
        ret->user = num;
        out = num + len + 1;
        ret->user_raw = out;
        out = put_str(out, rest, numlen);
        if (semi) {
            const char *pc = g_strstr_len(semi, (gssize)(rlen - numlen), ";phone-context=");
            if (pc) {
                pc += strlen(";phone-context=");
                const char *end = rest + rlen;
                const char *e = memchr(pc, ';', (size_t)(end - pc));
                size_t hl = (size_t)((e ? e : end) - pc);
                if (hl && pc[0] != '+' && parse_host(pc, hl, out)) /* domain-name context only */
                    ret->host = out;
            }
        }
        return 0;
    }

    /* sip/sips: userinfo up to the first '@' (no '@' may appear unescaped elsewhere) */
    const char *at = memchr(rest, '@', rlen);
    const char *hp = rest;
    if (at) {
        size_t ulen = (size_t)(at - rest);
        const char *pw = memchr(rest, ':', ulen);
        if (pw)
            ulen = (size_t)(pw - rest);
        if (ulen == 0 || ulen > MAX_PART_LEN * 3)
            goto bad_user;
        ret->user_raw = out;
        out = put_str(out, rest, ulen);
        char *user = out;
        if (!unescape(rest, ulen, user, &out))
            goto bad_user;
        ret->user = user;
        size_t user_len = (size_t)(out - user) - 1;
        /* the addr-spec is ASCII (checked above): only escapes can make it invalid UTF-8 */
        if (!*user || user_len > MAX_PART_LEN ||
            (user_len != ulen && !g_utf8_validate(user, (gssize)user_len, NULL)))
            goto bad_user; /* text columns hold UTF-8 only */
        hp = at + 1;
    }
    size_t hplen = (size_t)(s + n - hp);
    size_t hend = 0;
    if (hplen && hp[0] == '[') {
        const char *rb = memchr(hp, ']', hplen);
        if (!rb)
            goto bad_host;
        hend = (size_t)(rb - hp) + 1;
        if (!parse_host(hp, hend, out))
            goto bad_host;
    } else {
        /* the host runs to the first ':' ';' '?'; every byte before it must
         * be a host character: scan, check and lower-case in one pass */
        while (hend < hplen && (char_class[(unsigned char)hp[hend]] & C_HOST)) {
            out[hend] = ascii_lower(hp[hend]);
            hend++;
        }
        if (hend == 0 || hend > MAX_PART_LEN ||
            (hend < hplen && hp[hend] != ':' && hp[hend] != ';' && hp[hend] != '?'))
            goto bad_host;
        out[hend] = '\0';
    }
    ret->host = out;
    if (hend < hplen && hp[hend] == ':') {
        size_t i = hend + 1;
        int port = 0;
        while (i < hplen && g_ascii_isdigit(hp[i])) {
            port = port * 10 + (hp[i] - '0');
            if (port > 65535)
                goto bad_host;
            i++;
        }
        if (i == hend + 1 || (i < hplen && hp[i] != ';' && hp[i] != '?'))
            goto bad_host;
        ret->port = port;
    } else if (hend < hplen && hp[hend] != ';' && hp[hend] != '?') {
        goto bad_host;
    }
    return 0;

bad_user:
    msilo_uri_clear(ret);
    return msilo_fail(MSILO_EURI, "%s: invalid user part", what);
bad_host:
    msilo_uri_clear(ret);
    return msilo_fail(MSILO_EURI, "%s: invalid or missing host", what);
}

/* RFC 3261 user = 1*( unreserved / escaped / user-unreserved ) */
char *msilo_aor_to_uri(const char *user, const char *domain)
{
    GString *s = g_string_new("sip:");
    /* ';' and '?' are legal in a user part but escaped here: a bare addr-spec
     * "sip:a;tag=x@h" would otherwise read as a URI with a ;tag parameter
     * (found by fuzz-uri: the AoR did not parse back to the same user) */
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        if (g_ascii_isalnum(*p) || strchr("-_.!~*'()&=+$,/", *p))
            g_string_append_c(s, (char)*p);
        else
            g_string_append_printf(s, "%%%02X", *p);
    }
    g_string_append_c(s, '@');
    g_string_append(s, domain);
    return g_string_free(s, FALSE);
}

int msilo_aor_parse(const char *text, const char *default_domain, char **ret_user,
                    char **ret_domain)
{
    if (!text || !ret_user || !ret_domain)
        return msilo_fail(MSILO_EINVAL, "msilo_aor_parse: bad arguments");
    msilo_uri_t u;
    int rc = msilo_uri_parse(text, "AoR", &u);
    if (rc)
        return rc;
    char *domain = u.host ? g_strdup(u.host)
                   : (u.scheme == MSILO_SCHEME_TEL && default_domain)
                       ? g_ascii_strdown(default_domain, -1)
                       : NULL;
    if (!u.user || !*u.user || !domain || !*domain) {
        g_free(domain);
        msilo_uri_clear(&u);
        return msilo_fail(MSILO_EURI, "'%.64s' is not an address of record (user@host)", text);
    }
    *ret_user = g_strdup(u.user);
    *ret_domain = domain;
    msilo_uri_clear(&u);
    return 0;
}

int msilo_time_parse(const char *text, int64_t *ret_time)
{
    if (!text || !ret_time)
        return msilo_fail(MSILO_EINVAL, "msilo_time_parse: bad arguments");
    if (strlen(text) != 14)
        return msilo_fail(MSILO_ETIME, "reminder time '%.32s' is not YYYYMMDDHHMMSS", text);
    int v[6];
    static const int widths[6] = { 4, 2, 2, 2, 2, 2 };
    const char *p = text;
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < widths[i]; k++, p++) {
            if (!g_ascii_isdigit(*p))
                return msilo_fail(MSILO_ETIME, "reminder time '%.32s' is not YYYYMMDDHHMMSS", text);
            v[i] = v[i] * 10 + (*p - '0');
        }
    }
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
        v[2] > g_date_get_days_in_month((GDateMonth)v[1], (GDateYear)v[0]) || v[3] > 23 ||
        v[4] > 59 || v[5] > 60)
        return msilo_fail(MSILO_ETIME, "reminder time '%.32s' is not a valid date", text);
    struct tm tm = { 0 };
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return msilo_fail(MSILO_ETIME, "reminder time '%.32s' is out of range", text);
    *ret_time = (int64_t)t;
    return 0;
}

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

char *msilo_format_ctime(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm))
        return g_strdup("?");
    /* the zone as an offset (issue 16: a date without one is ambiguous to a
     * reader elsewhere); from GLib, as struct tm's tm_gmtoff is not ISO C */
    GDateTime *d = g_date_time_new_from_unix_local(t);
    char *zone = d ? g_date_time_format(d, "%z") : NULL;
    if (d)
        g_date_time_unref(d);
    char *s = g_strdup_printf("%s %s %2d %02d:%02d:%02d %d %s", wdays[tm.tm_wday],
                              months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                              tm.tm_year + 1900, zone ? zone : "+0000");
    g_free(zone);
    return s;
}

char *msilo_format_http_date(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return g_strdup("Thu, 01 Jan 1970 00:00:00 GMT");
    return g_strdup_printf("%s, %02d %s %d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday,
                           months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
