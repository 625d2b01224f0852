/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's Digest scheme with MD5 and SHA-256 (RFC 8760, RFC 7616):
 * the users file, the nonces and the check of one response. It replaces
 * Sofia-SIP 1.12's auth module, which only does MD5 and keeps only an MD5
 * HA1 per user. Hashes and HMACs are GLib's (GChecksum, GHmac); the
 * Authorization header is parsed by Sofia (auth_digest_response_get()).
 * auth.c puts it on the request path (replays, failure limit, identity).
 *
 * The users file (auth_users), one entry a line, '#' starts a comment:
 *   user:password[:realm]    plain password: every algorithm (no realm: ours)
 *   user:realm:HA1           32 hex digits: MD5(user:realm:password)
 *   user:realm:HA1           64 hex digits: SHA-256(user:realm:password)
 * The first two are Sofia's formats (htdigest); a user may have an MD5 and a
 * SHA-256 HA1 line, and is then offered both. Lines for another realm are
 * ignored. The file is read again when it changes (size, mtime, inode), as
 * Sofia's module did.
 *
 * Nonces are stateless: "<seconds>.<salt>.<HMAC-SHA256>" under a key drawn
 * at start (getrandom), the seconds monotonic: valid for `lifetime` seconds,
 * then stale (the client answers the next challenge without asking its user).
 * Any of our nonces is valid with either algorithm; the nonce-count of each
 * (user, nonce) is auth.c's.
 */
#include <errno.h>
#include <string.h>

#include <sys/random.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "digest.h"
#include "config.h"

#include <sofia-sip/auth_digest.h>
#include <sofia-sip/sip_header.h>

#define KEY_SIZE 32
#define MAC_HEX 32 /* hex digits of the HMAC kept in a nonce */

typedef struct digest_user {
    char *password;                    /* NULL: HA1 lines only */
    char *ha1[SERVER_DIGEST_MAX + 1];  /* by algorithm; NULL: none */
} digest_user;

struct digest {
    char *path;
    char *realm;
    int algorithms[SERVER_DIGEST_MAX + 1];
    unsigned lifetime;
    guint8 key[KEY_SIZE];
    GHashTable *users; /* user -> digest_user */
    GStatBuf st;       /* of the file as last read */
};

static GChecksumType checksum_of(int alg)
{
    return alg == SERVER_DIGEST_SHA256 ? G_CHECKSUM_SHA256 : G_CHECKSUM_MD5;
}

static const char *alg_name(int alg)
{
    return alg == SERVER_DIGEST_SHA256 ? "SHA-256" : "MD5";
}

/* The algorithm named @name in credentials (absent: MD5, RFC 7616 3.4), or 0. */
static int alg_of(const char *name)
{
    if (!name || g_ascii_strcasecmp(name, "MD5") == 0)
        return SERVER_DIGEST_MD5;
    if (g_ascii_strcasecmp(name, "SHA-256") == 0)
        return SERVER_DIGEST_SHA256;
    return 0;
}

static bool offered(digest_t *d, int alg)
{
    for (size_t i = 0; alg && d->algorithms[i]; i++)
        if (d->algorithms[i] == alg)
            return true;
    return false;
}

static void user_free(gpointer p)
{
    digest_user *u = p;
    g_free(u->password);
    for (size_t i = 0; i < G_N_ELEMENTS(u->ha1); i++)
        g_free(u->ha1[i]);
    g_free(u);
}

static bool all_hex(const char *s, size_t n)
{
    size_t i = 0;
    while (s[i] && g_ascii_isxdigit(s[i]))
        i++;
    return i == n && s[i] == '\0';
}

/* Reads the users file into a new table; NULL and @error when unreadable. */
static GHashTable *read_users(const char *path, const char *realm, GStatBuf *ret_st,
                              GError **error)
{
    g_autofree char *text = NULL;
    if (g_stat(path, ret_st) != 0 || !g_file_get_contents(path, &text, NULL, error)) {
        if (error && !*error)
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "cannot read %s", path);
        return NULL;
    }
    GHashTable *users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, user_free);
    g_auto(GStrv) lines = g_strsplit_set(text, "\r\n", -1);
    for (size_t i = 0; lines[i]; i++) {
        if (!lines[i][0] || lines[i][0] == '#')
            continue;
        /* user : second [: third [: ident]] */
        g_auto(GStrv) f = g_strsplit(lines[i], ":", 4);
        if (!f[0] || !f[0][0] || !f[1] || !f[1][0])
            continue;
        const char *third = f[2] ? f[2] : "";
        int alg = all_hex(third, 32) ? SERVER_DIGEST_MD5
                  : all_hex(third, 64) ? SERVER_DIGEST_SHA256
                                       : 0;
        bool hash_line = alg != 0;
        if (hash_line ? strcmp(f[1], realm) != 0 : third[0] && strcmp(third, realm) != 0)
            continue; /* another realm */
        digest_user *u = g_hash_table_lookup(users, f[0]);
        if (!u) {
            u = g_new0(digest_user, 1);
            g_hash_table_insert(users, g_strdup(f[0]), u);
        }
        if (hash_line) {
            g_free(u->ha1[alg]);
            u->ha1[alg] = g_ascii_strdown(third, -1);
        } else {
            g_free(u->password);
            u->password = g_strdup(f[1]);
        }
    }
    return users;
}

digest_t *digest_new(const char *users, const char *realm, const int *algorithms,
                     unsigned lifetime, GError **error)
{
    digest_t *d = g_new0(digest_t, 1);
    d->path = g_strdup(users);
    d->realm = g_strdup(realm);
    d->lifetime = lifetime;
    for (size_t i = 0; i < SERVER_DIGEST_MAX && algorithms[i]; i++)
        d->algorithms[i] = algorithms[i];
    if (!d->algorithms[0])
        d->algorithms[0] = SERVER_DIGEST_MD5;
    if (getrandom(d->key, sizeof(d->key), 0) != (ssize_t)sizeof(d->key)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "getrandom: %s", g_strerror(errno));
        digest_free(d);
        return NULL;
    }
    d->users = read_users(users, realm, &d->st, error);
    if (!d->users) {
        digest_free(d);
        return NULL;
    }
    return d;
}

void digest_free(digest_t *d)
{
    if (!d)
        return;
    if (d->users)
        g_hash_table_unref(d->users);
    memset(d->key, 0, sizeof(d->key));
    g_free(d->path);
    g_free(d->realm);
    g_free(d);
}

/* Reads the file again when it changed since; keeps the old table when the
 * new one cannot be read. */
static void reread_if_changed(digest_t *d)
{
    GStatBuf st;
    if (g_stat(d->path, &st) != 0 ||
        (st.st_ino == d->st.st_ino && st.st_size == d->st.st_size &&
         st.st_mtime == d->st.st_mtime && st.st_dev == d->st.st_dev))
        return;
    g_autoptr(GError) error = NULL;
    GHashTable *users = read_users(d->path, d->realm, &st, &error);
    if (!users) {
        g_warning("users file %s: %s: keeping the previous one", d->path, error->message);
        return;
    }
    g_hash_table_unref(d->users);
    d->users = users;
    d->st = st;
    g_message("users file %s read again: %u users", d->path, g_hash_table_size(users));
}

static char *nonce_mac(digest_t *d, const char *body, size_t len)
{
    char *mac = g_compute_hmac_for_data(G_CHECKSUM_SHA256, d->key, sizeof(d->key),
                                        (const guchar *)body, len);
    mac[MAC_HEX] = '\0';
    return mac;
}

static int64_t now_s(void)
{
    return g_get_monotonic_time() / G_USEC_PER_SEC;
}

static char *nonce_new(digest_t *d)
{
    g_autofree char *body = g_strdup_printf("%" G_GINT64_MODIFIER "x.%08x%08x", now_s(),
                                            g_random_int(), g_random_int());
    g_autofree char *mac = nonce_mac(d, body, strlen(body));
    return g_strconcat(body, ".", mac, NULL);
}

/* Whether the hex strings @a and @b are equal, in time independent of
 * where they differ (case-insensitive). */
static bool same_hex(const char *a, const char *b)
{
    size_t n = strlen(a);
    unsigned diff = n != strlen(b);
    for (size_t i = 0; i < n && b[i]; i++)
        diff |= (unsigned)(g_ascii_tolower(a[i]) ^ g_ascii_tolower(b[i]));
    return diff == 0;
}

/* Whether @nonce is one of ours; *ret_stale when it has expired. */
static bool nonce_valid(digest_t *d, const char *nonce, bool *ret_stale)
{
    const char *dot = strrchr(nonce, '.');
    guint64 issued;
    char *end;
    if (!dot || dot == nonce || strlen(dot + 1) != MAC_HEX)
        return false;
    g_autofree char *mac = nonce_mac(d, nonce, (size_t)(dot - nonce));
    if (!same_hex(mac, dot + 1))
        return false;
    issued = g_ascii_strtoull(nonce, &end, 16);
    if (*end != '.' || (int64_t)issued > now_s())
        return false;
    *ret_stale = (int64_t)issued + (int64_t)d->lifetime < now_s();
    return true;
}

char *digest_challenge(digest_t *d, bool stale)
{
    GString *out = g_string_new(NULL);
    for (size_t i = 0; d->algorithms[i]; i++) {
        g_autofree char *nonce = nonce_new(d);
        g_string_append_printf(out,
                               "WWW-Authenticate: Digest realm=\"%s\", nonce=\"%s\", "
                               "algorithm=%s, qop=\"auth\"%s\r\n",
                               d->realm, nonce, alg_name(d->algorithms[i]),
                               stale ? ", stale=true" : "");
    }
    return g_string_free(out, FALSE);
}

/* H(a:b:c...) in hex, of the algorithm @alg (g_free it). */
static char *hash_join(int alg, const char *const *parts)
{
    GChecksum *ck = g_checksum_new(checksum_of(alg));
    for (size_t i = 0; parts[i]; i++) {
        if (i)
            g_checksum_update(ck, (const guchar *)":", 1);
        g_checksum_update(ck, (const guchar *)parts[i], (gssize)strlen(parts[i]));
    }
    char *hex = g_strdup(g_checksum_get_string(ck));
    g_checksum_free(ck);
    return hex;
}

/* The Digest credentials of @sip for our realm, parsed into @ar: the first
 * with an algorithm we offer, else the first. */
static bool find_credentials(digest_t *d, su_home_t *home, sip_t const *sip,
                             auth_response_t *ar)
{
    bool found = false;
    for (sip_authorization_t const *au = sip->sip_authorization; au; au = au->au_next) {
        auth_response_t r;
        if (!au->au_scheme || g_ascii_strcasecmp(au->au_scheme, "Digest") != 0)
            continue;
        memset(&r, 0, sizeof(r));
        r.ar_size = (int)sizeof(r);
        if (auth_digest_response_get(home, &r, au->au_params) < 0)
            continue;
        if (!r.ar_realm || strcmp(r.ar_realm, d->realm) != 0)
            continue;
        if (!found || offered(d, alg_of(r.ar_algorithm)))
            *ar = r;
        found = true;
        if (offered(d, alg_of(r.ar_algorithm)))
            break;
    }
    return found;
}

digest_result_t digest_verify(digest_t *d, su_home_t *home, sip_t const *sip,
                              digest_check_t *ret)
{
    auth_response_t ar = { 0 };
    bool stale = false;
    memset(ret, 0, sizeof(*ret));
    reread_if_changed(d);
    if (!find_credentials(d, home, sip, &ar))
        return DIGEST_NONE;
    int alg = alg_of(ar.ar_algorithm);
    ret->user = ar.ar_username;
    ret->nonce = ar.ar_nonce;
    ret->nc = ar.ar_nc;
    ret->algorithm = ar.ar_algorithm ? ar.ar_algorithm : "MD5";
    if (!offered(d, alg))
        return DIGEST_UNSUPPORTED;
    if (!ar.ar_username || !ar.ar_nonce || !ar.ar_uri || !ar.ar_response)
        return DIGEST_WRONG;
    /* qop=auth only (auth-int is not offered); without qop (RFC 2069) for MD5 only */
    if (ar.ar_qop && g_ascii_strcasecmp(ar.ar_qop, "auth") != 0)
        return DIGEST_UNSUPPORTED;
    if (!ar.ar_qop && alg != SERVER_DIGEST_MD5)
        return DIGEST_UNSUPPORTED;
    if (ar.ar_qop && (!ar.ar_cnonce || !ar.ar_nc))
        return DIGEST_WRONG;
    if (!nonce_valid(d, ar.ar_nonce, &stale))
        return DIGEST_WRONG;
    digest_user *u = g_hash_table_lookup(d->users, ar.ar_username);
    if (!u)
        return DIGEST_WRONG;
    g_autofree char *ha1 = NULL;
    if (u->ha1[alg])
        ha1 = g_strdup(u->ha1[alg]);
    else if (u->password)
        ha1 = hash_join(alg, (const char *const[]){ ar.ar_username, d->realm, u->password, NULL });
    else
        return DIGEST_UNSUPPORTED; /* e.g. only an MD5 HA1 line, SHA-256 asked */
    g_autofree char *ha2 =
        hash_join(alg, (const char *const[]){ sip->sip_request->rq_method_name, ar.ar_uri, NULL });
    g_autofree char *want =
        ar.ar_qop ? hash_join(alg, (const char *const[]){ ha1, ar.ar_nonce, ar.ar_nc, ar.ar_cnonce,
                                                          "auth", ha2, NULL })
                  : hash_join(alg, (const char *const[]){ ha1, ar.ar_nonce, ha2, NULL });
    if (!same_hex(want, ar.ar_response))
        return DIGEST_WRONG;
    return stale ? DIGEST_STALE : DIGEST_OK;
}
