/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Configuration: one table of keys (name, type, default, range, help) drives
 * parsing, defaults, validation and the documentation, so a parameter cannot
 * exist in one place and be missing in another.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define S MSILO_CONFIG_STRING
#define I MSILO_CONFIG_INT
#define B MSILO_CONFIG_BOOL
#define BIG INT64_C(4611686018427387904) /* 2^62: "no practical limit" */

/* Order: the OpenSIPS admin guide's parameters in its order, then Kamailio's, then ours. */
static const msilo_config_key_t keys[] = {
    { "db_url", S, "postgres://opensips:opensipsrw@localhost/opensips", 0, 0,
      "database URL (postgres://user:pass@host:port/db, libpq URI or key=value)" },
    { "db_table", S, "silo", 0, 0, "table holding the messages" },
    { "from_address", S, NULL, 0, 0,
      "From of the offline notification to the sender; unset = no notification (template)" },
    { "contact_hdr", S, NULL, 0, 0, "Contact header line added to notifications (template)" },
    { "offline_message", S, NULL, 0, 0, "body of the offline notification (template)" },
    { "content_type_hdr", S, NULL, 0, 0,
      "Content-Type header line of the notification; required with offline_message (template)" },
    { "reminder", S, NULL, 0, 0, "From URI of reminders; unset = reminders disabled" },
    { "outbound_proxy", S, NULL, 0, 0, "next hop for every MESSAGE the engine sends" },
    { "expire_time", I, "259200", 1, BIG, "seconds a message is kept (3 days)" },
    { "check_time", I, "30", 1, 86400, "seconds between retry/lease checks" },
    { "send_time", I, "0", 0, 86400, "seconds between reminder checks; 0 = reminders disabled" },
    { "clean_period", I, "5", 1, 1000000, "expiry runs every clean_period x check_time seconds" },
    { "use_contact", B, "1", 0, 1, "notify the sender's Contact (else its From URI)" },
    { "sc_mid", S, "id", 0, 0, "column: message id (the guide says mid; both schemas use id)" },
    { "sc_from", S, "src_addr", 0, 0, "column: source address" },
    { "sc_to", S, "dst_addr", 0, 0, "column: destination address" },
    { "sc_uri_user", S, "username", 0, 0, "column: owner user" },
    { "sc_uri_host", S, "domain", 0, 0, "column: owner domain" },
    { "sc_body", S, "body", 0, 0, "column: body" },
    { "sc_ctype", S, "ctype", 0, 0, "column: content type" },
    { "sc_exp_time", S, "exp_time", 0, 0, "column: expiry time" },
    { "sc_inc_time", S, "inc_time", 0, 0, "column: incoming time" },
    { "sc_snd_time", S, "snd_time", 0, 0, "column: reminder send time" },
    { "snd_time_avp", S, NULL, 0, 0,
      "where the embedder finds a reminder time (msilo-server: a request header name)" },
    { "add_date", B, "1", 0, 1,
      "prefix text/plain bodies with the date they were stored (local time and its UTC offset)" },
    { "max_messages", I, "0", 0, BIG, "messages kept per AoR; 0 = no limit" },
    /* Kamailio's */
    { "extra_hdrs", S, NULL, 0, 0, "header lines added to every delivered message" },
    { "sc_stored_hdrs", S, "extra_hdrs", 0, 0, "column: stored headers of the original request (Kamailio name)" },
    { "sc_callid", S, "callid", 0, 0, "column: Call-ID of the original request" },
    { "use_callid", B, "0", 0, 1,
      "deliver with the stored Call-ID (Kamailio use_mode=1) instead of a new one" },
    /* libmsilo's */
    { "max_body_size", I, "65536", 1, BIG, "largest body stored, bytes" },
    { "max_attempts", I, "5", 1, 1000,
      "failed deliveries before a message waits for the next registration" },
    { "lease_time", I, "60", 5, 86400,
      "seconds a message being delivered stays claimed (longer than a transaction)" },
    { "dump_batch", I, "100", 1, 100000, "messages claimed from the store at a time" },
    { "dump_window", I, "8", 1, 10000, "deliveries in flight per owner (1 = strict order)" },
    { "max_in_flight", I, "64", 1, 1000000,
      "deliveries in flight in all (a burst of registrations must not flood the network)" },
    { "store_threads", I, "1", 1, 64,
      "batches of stores committed at once, each on its own store connection (stores that "
      "can: PostgreSQL); an owner's messages are never in two at once" },
    { "store_wait_us", I, "500", 0, 1000000,
      "microseconds at most a store that finds no batch running waits for the loop to read "
      "what else arrived, so that they commit together (0 = none, and a submitted batch "
      "takes no more stores)" },
    { "instance_id", S, NULL, 0, 0,
      "stable name of this engine for leases; set it to take back in-flight messages after a crash" },
    { "id_header", S, "X-Msilo-Id", 0, 0,
      "header carrying the stored message id on delivery (duplicate detection); empty = none" },
    { "default_domain", S, NULL, 0, 0, "domain for tel: owners without phone-context" },
    { "transient_types", S, "application/im-iscomposing+xml", 0, 0,
      "content types never stored (RFC 3994 states): refused with 480 when the user is "
      "offline; a comma- or space-separated list, empty = none" },
    { "failure_message", S, "Your message to $tu could not be delivered.", 0, 0,
      "body (text/plain) of the notice sent to the sender, through the offline notification's "
      "from_address and contact_hdr, when a delivery fails for good (template)" },
    { "stored_headers", S, "Subject, Priority, In-Reply-To, Reply-To", 0, 0,
      "standard headers of a MESSAGE stored with it and re-sent on delivery (the request "
      "adapter keeps them: msilo_sofia_request_new_with()); headers the SIP parser does not "
      "know are kept anyway" },
    { "imdn", B, "1", 0, 1,
      "send RFC 5438 notifications for a stored message/cpim that asks for them: <stored/> "
      "once committed, <failed/> when its delivery fails for good" },
    { "permanent_failures", S, "403 404 410 415 488 603 604 606", 0, 0,
      "delivery statuses that end a message at once (deleted, sender told; no retry); a "
      "comma- or space-separated list of 300..699, empty = none" },
    { "deliver_to", S, "first", 0, 0,
      "who gets a stored message: 'first' = the first device of the user that registers "
      "(deleted on its 2xx, as the msilo modules do); 'every_device' = each device "
      "(+sip.instance, else Contact) that registers within its lifetime, deleted once every "
      "known device has it (needs a store with per-device delivery)" },
    { "device_ttl", I, "2592000", 60, BIG,
      "with deliver_to = every_device: seconds after its last registration a device is "
      "forgotten, so that messages no longer wait for it (30 days)" },
};
#undef S
#undef I
#undef B

typedef union {
    char *s;
    int64_t i;
} value;

struct msilo_config {
    value v[G_N_ELEMENTS(keys)];
    gboolean set[G_N_ELEMENTS(keys)];
};

/* One key at a time, by pointer: a caller's array stride would be its own
 * sizeof(msilo_config_key_t), wrong as soon as the struct grows. */
const msilo_config_key_t *msilo_config_key_at(size_t i)
{
    return i < G_N_ELEMENTS(keys) ? &keys[i] : NULL;
}

static int find_key(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

const msilo_config_key_t *msilo_config_key_find(const char *name)
{
    int i = name ? find_key(name) : -1;
    return i < 0 ? NULL : &keys[i];
}

static int parse_int(const msilo_config_key_t *k, const char *text, int64_t *out)
{
    if (k->type == MSILO_CONFIG_BOOL) {
        static const char *const yes[] = { "1", "yes", "on", "true" };
        static const char *const no[] = { "0", "no", "off", "false" };
        for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
            if (g_ascii_strcasecmp(text, yes[i]) == 0) {
                *out = 1;
                return 0;
            }
            if (g_ascii_strcasecmp(text, no[i]) == 0) {
                *out = 0;
                return 0;
            }
        }
        return msilo_fail(MSILO_ECONFIG, "%s: '%.64s' is not a boolean (0/1, yes/no)", k->name, text);
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || !*text)
        return msilo_fail(MSILO_ECONFIG, "%s: '%.64s' is not an integer", k->name, text);
    if (v < k->min || v > k->max)
        return msilo_fail(MSILO_ECONFIG, "%s: %lld is out of range (%lld..%lld)", k->name, v,
                          (long long)k->min, (long long)k->max);
    *out = v;
    return 0;
}

static void set_default(msilo_config_t *cfg, size_t i)
{
    const msilo_config_key_t *k = &keys[i];
    if (k->type == MSILO_CONFIG_STRING) {
        g_free(cfg->v[i].s);
        cfg->v[i].s = g_strdup(k->default_str);
    } else {
        int rc = parse_int(k, k->default_str, &cfg->v[i].i);
        g_assert(rc == 0);
    }
    cfg->set[i] = FALSE;
}

int msilo_config_new(msilo_config_t **ret)
{
    if (!ret)
        return msilo_fail(MSILO_EINVAL, "msilo_config_new: ret is NULL");
    msilo_config_t *cfg = g_new0(msilo_config_t, 1);
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        set_default(cfg, i);
    *ret = cfg;
    return 0;
}

int msilo_config_copy(const msilo_config_t *cfg, msilo_config_t **ret)
{
    if (!cfg || !ret)
        return msilo_fail(MSILO_EINVAL, "msilo_config_copy: bad arguments");
    msilo_config_t *c = g_new0(msilo_config_t, 1);
    *c = *cfg;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (keys[i].type == MSILO_CONFIG_STRING)
            c->v[i].s = g_strdup(cfg->v[i].s);
    *ret = c;
    return 0;
}

void msilo_config_free(msilo_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (keys[i].type == MSILO_CONFIG_STRING)
            g_free(cfg->v[i].s);
    g_free(cfg);
}

int msilo_config_set(msilo_config_t *cfg, const char *key, const char *value_text)
{
    if (!cfg || !key)
        return msilo_fail(MSILO_EINVAL, "msilo_config_set: bad arguments");
    int i = find_key(key);
    if (i < 0)
        return msilo_fail(MSILO_ECONFIG, "unknown configuration key '%.64s'", key);
    if (!value_text) {
        if (keys[i].type == MSILO_CONFIG_STRING) {
            g_clear_pointer(&cfg->v[i].s, g_free);
            cfg->set[i] = TRUE;
        } else {
            set_default(cfg, (size_t)i);
        }
        return 0;
    }
    if (keys[i].type == MSILO_CONFIG_STRING) {
        g_free(cfg->v[i].s);
        cfg->v[i].s = g_strdup(value_text);
    } else {
        int64_t v;
        int rc = parse_int(&keys[i], value_text, &v);
        if (rc)
            return rc;
        cfg->v[i].i = v;
    }
    cfg->set[i] = TRUE;
    return 0;
}

int msilo_config_set_int(msilo_config_t *cfg, const char *key, int64_t v)
{
    if (!cfg || !key)
        return msilo_fail(MSILO_EINVAL, "msilo_config_set_int: bad arguments");
    int i = find_key(key);
    if (i < 0)
        return msilo_fail(MSILO_ECONFIG, "unknown configuration key '%.64s'", key);
    if (keys[i].type == MSILO_CONFIG_STRING)
        return msilo_fail(MSILO_ECONFIG, "%s is a string, not a number", key);
    if (v < keys[i].min || v > keys[i].max)
        return msilo_fail(MSILO_ECONFIG, "%s: %lld is out of range (%lld..%lld)", key,
                          (long long)v, (long long)keys[i].min, (long long)keys[i].max);
    cfg->v[i].i = v;
    cfg->set[i] = TRUE;
    return 0;
}

const char *msilo_config_get_string(const msilo_config_t *cfg, const char *key)
{
    if (!cfg || !key)
        return NULL;
    int i = find_key(key);
    if (i < 0 || keys[i].type != MSILO_CONFIG_STRING)
        return NULL;
    return cfg->v[i].s;
}

int msilo_config_get_int(const msilo_config_t *cfg, const char *key, int64_t *ret)
{
    if (!cfg || !key || !ret)
        return msilo_fail(MSILO_EINVAL, "msilo_config_get_int: bad arguments");
    int i = find_key(key);
    if (i < 0)
        return msilo_fail(MSILO_ECONFIG, "unknown configuration key '%.64s'", key);
    if (keys[i].type == MSILO_CONFIG_STRING)
        return msilo_fail(MSILO_ECONFIG, "%s is a string, not a number", key);
    *ret = cfg->v[i].i;
    return 0;
}

/* Header lines: "Name: value" lines, CRLF-terminated, no bare CR or LF. */
static int check_header_lines(const char *key, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            eol = p + strlen(p); /* last line without CRLF: the engine adds it */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return msilo_fail(MSILO_ECONFIG, "%s: '%.*s' is not a 'Name: value' header line", key,
                              (int)MIN(eol - p, 64), p);
        for (const char *q = p; q < eol; q++)
            if (*q == '\r' || *q == '\n')
                return msilo_fail(MSILO_ECONFIG, "%s: bare CR or LF in a header line", key);
        for (const char *q = p; q < colon; q++)
            if (!g_ascii_isalnum(*q) && !strchr("-.!%*_+`'~", *q))
                return msilo_fail(MSILO_ECONFIG, "%s: invalid header name '%.*s'", key,
                                  (int)MIN(colon - p, 64), p);
        p = *eol ? eol + 2 : eol;
    }
    return 0;
}

/* A list of SIP final failure statuses (300..699), separated by commas or spaces. */
static int check_status_list(const char *key, const char *list)
{
    gchar **items = g_strsplit_set(list, ", \t", -1);
    int rc = 0;
    for (gchar **it = items; !rc && *it; it++) {
        if (!**it)
            continue;
        char *end = NULL;
        long v = strtol(*it, &end, 10);
        if (*end || v < 300 || v > 699)
            rc = msilo_fail(MSILO_ECONFIG, "%s: '%.16s' is not a failure status (300..699)", key,
                            *it);
    }
    g_strfreev(items);
    return rc;
}

int msilo_config_validate(const msilo_config_t *cfg)
{
    if (!cfg)
        return msilo_fail(MSILO_EINVAL, "msilo_config_validate: cfg is NULL");
    static const char *const templates[] = { "from_address", "contact_hdr", "content_type_hdr",
                                             "offline_message", "failure_message" };
    for (size_t i = 0; i < G_N_ELEMENTS(templates); i++) {
        const char *t = msilo_config_get_string(cfg, templates[i]);
        if (!t)
            continue;
        msilo_template_t *tp = NULL;
        int rc = msilo_template_compile(templates[i], t, &tp);
        if (rc)
            return rc;
        msilo_template_free(tp);
    }
    const char *offline = msilo_config_get_string(cfg, "offline_message");
    const char *cth = msilo_config_get_string(cfg, "content_type_hdr");
    if (offline && !cth)
        return msilo_fail(MSILO_ECONFIG, "offline_message is set but content_type_hdr is not "
                          "(it must say what the notification body is)");
    static const char *const headers[] = { "contact_hdr", "content_type_hdr", "extra_hdrs" };
    for (size_t i = 0; i < G_N_ELEMENTS(headers); i++) {
        const char *h = msilo_config_get_string(cfg, headers[i]);
        /* template variables expand to URI parts, which cannot hold CR/LF */
        if (h) {
            int rc = check_header_lines(headers[i], h);
            if (rc)
                return rc;
        }
    }
    if (cth && g_ascii_strncasecmp(cth, "Content-Type:", 13) != 0 &&
        g_ascii_strncasecmp(cth, "c:", 2) != 0)
        return msilo_fail(MSILO_ECONFIG, "content_type_hdr must be a Content-Type header line");
    const char *dt = msilo_config_get_string(cfg, "deliver_to");
    if (dt && strcmp(dt, "first") != 0 && strcmp(dt, "every_device") != 0)
        return msilo_fail(MSILO_ECONFIG, "deliver_to must be 'first' or 'every_device', not '%s'",
                          dt);
    const char *pf = msilo_config_get_string(cfg, "permanent_failures");
    if (pf) {
        int rc = check_status_list("permanent_failures", pf);
        if (rc)
            return rc;
    }
    static const char *const uris[] = { "reminder", "outbound_proxy" };
    for (size_t i = 0; i < G_N_ELEMENTS(uris); i++) {
        const char *u = msilo_config_get_string(cfg, uris[i]);
        if (!u)
            continue;
        msilo_uri_t uri;
        int rc = msilo_uri_parse(u, uris[i], &uri);
        if (rc)
            return msilo_fail(MSILO_ECONFIG, "%s", msilo_error_detail());
        msilo_uri_clear(&uri);
    }
    const char *from = msilo_config_get_string(cfg, "from_address");
    if (from && !strchr(from, '$')) {
        msilo_uri_t uri;
        if (msilo_uri_parse(from, "from_address", &uri))
            return msilo_fail(MSILO_ECONFIG, "%s", msilo_error_detail());
        msilo_uri_clear(&uri);
    }
    const char *idh = msilo_config_get_string(cfg, "id_header");
    if (idh && *idh) {
        for (const char *q = idh; *q; q++)
            if (!g_ascii_isalnum(*q) && *q != '-')
                return msilo_fail(MSILO_ECONFIG, "id_header: invalid header name '%.64s'", idh);
    }
    const char *dd = msilo_config_get_string(cfg, "default_domain");
    if (dd) {
        msilo_uri_t uri;
        char *probe = g_strconcat("sip:x@", dd, NULL);
        int rc = msilo_uri_parse(probe, "default_domain", &uri);
        g_free(probe);
        if (rc)
            return msilo_fail(MSILO_ECONFIG, "default_domain: '%.64s' is not a host", dd);
        msilo_uri_clear(&uri);
    }
    return 0;
}
