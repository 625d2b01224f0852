/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo-server: HTTP Digest (RFC 7616 / RFC 8760 for SIP) with MD5 and
 * SHA-256: the users file, nonces and the check of one response (digest.c).
 * Private to the example; auth.c is the glue to the request path. */
#ifndef MSILO_SERVER_DIGEST_H
#define MSILO_SERVER_DIGEST_H

#include <stdbool.h>

#include <glib.h>

#include <sofia-sip/sip.h>

/* s: how long a nonce is valid (then stale) */
#define DIGEST_NONCE_LIFETIME 300

typedef struct digest digest_t;

typedef enum {
    DIGEST_NONE,        /* no Digest credentials for our realm */
    DIGEST_OK,          /* valid: ret->user, ->nonce, ->nc are set */
    DIGEST_STALE,       /* right response, but the nonce has expired */
    DIGEST_WRONG,       /* wrong response, unknown user, a nonce not ours */
    DIGEST_UNSUPPORTED, /* an algorithm or qop we do not offer, or no hash
                         * of the user for that algorithm: challenged again */
} digest_result_t;

typedef struct digest_check {
    const char *user;      /* credentials' username (in the caller's home) */
    const char *nonce;     /* its nonce */
    const char *nc;        /* its nonce-count, NULL without qop */
    const char *algorithm; /* "MD5" or "SHA-256" */
} digest_check_t;

/* Reads the users file @users (see digest.c for its lines) for @realm,
 * offering @algorithms (SERVER_DIGEST_*, 0-terminated, in challenge order)
 * with nonces valid @lifetime seconds. NULL and @error when the file cannot
 * be read. */
digest_t *digest_new(const char *users, const char *realm, const int *algorithms,
                     unsigned lifetime, GError **error);
void digest_free(digest_t *d);
/* The WWW-Authenticate header lines of a 401, one per algorithm in order,
 * each with a fresh nonce, "stale=true" when @stale (SIPTAG_HEADER_STR; g_free it). */
char *digest_challenge(digest_t *d, bool stale);
/* Checks the Authorization headers of @sip; the strings of @ret live in @home. */
digest_result_t digest_verify(digest_t *d, su_home_t *home, sip_t const *sip,
                              digest_check_t *ret);

#endif
