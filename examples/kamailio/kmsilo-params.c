/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmsilo-params.c: the modparams of msilo_lib: every parameter of Kamailio's
 * msilo with its Kamailio default, plus a few of the module's own.
 *
 * Each parameter is set through a function (PARAM_USE_FUNC) that hands the
 * value to msilo_config_set() at once, so that a bad value stops Kamailio
 * while it parses its config (also under `kamailio -c`) with the
 * parameter's name, instead of at mod_init or never.
 */
#include "kmsilo.h"

#include "core/dprint.h"
#include "core/sr_module.h"

#include <msilo/errors.h>
#include <stdio.h>
#include <string.h>

kmsilo_settings_t kmsilo = {
    .migrate = 1,
    .store_timeout_ms = 5000,
    .skip_notification_flag = -1,
    .listen_fd = -1,
};

static int ensure_cfg(void)
{
    if (kmsilo.cfg)
        return 0;
    if (msilo_config_new(&kmsilo.cfg) < 0)
        return -1;
    /* Kamailio msilo's defaults where they differ from libmsilo's */
    static const char *const kam_defaults[][2] = {
        { "db_url", "mysql://kamailio:kamailiorw@localhost/kamailio" },
        { "check_time", "60" },
        { "clean_period", "10" },
    };
    for (size_t i = 0; i < sizeof kam_defaults / sizeof kam_defaults[0]; i++)
        if (msilo_config_set(kmsilo.cfg, kam_defaults[i][0], kam_defaults[i][1]) < 0)
            return -1;
    return 0;
}

static int set_key(const char *name, const char *value)
{
    if (ensure_cfg() < 0) {
        LM_ERR("msilo_lib: no memory for the configuration\n");
        return -1;
    }
    int rc = msilo_config_set(kmsilo.cfg, name, value);
    if (rc == 0 && strcmp(name, "offline_message") != 0) {
        /* what msilo_config_validate() checks of this key alone (a URI that
         * parses, a header line ending in CRLF): now, under `kamailio -c`
         * too; the checks across keys follow in mod_init */
        msilo_config_t *one = NULL;
        if (msilo_config_new(&one) == 0 && msilo_config_set(one, name, value) == 0)
            rc = msilo_config_validate(one);
        msilo_config_free(one);
    }
    if (rc < 0) {
        LM_ERR("msilo_lib: bad value for modparam \"%s\": \"%s\": %s (%s)\n", name,
               value ? value : "", msilo_strerror(rc), msilo_error_detail());
        return -1;
    }
    return 0;
}

static int set_int_key(const char *name, void *val)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", (long)val);
    return set_key(name, buf);
}

#define KSTR(n)                                                                                \
    static int set_##n(modparam_t t, void *v)                                                  \
    {                                                                                          \
        (void)t;                                                                               \
        return set_key(#n, (const char *)v);                                                   \
    }
#define KINT(n)                                                                                \
    static int set_##n(modparam_t t, void *v)                                                  \
    {                                                                                          \
        (void)t;                                                                               \
        return set_int_key(#n, v);                                                             \
    }

KSTR(db_url) KSTR(db_table) KSTR(from_address) KSTR(contact_hdr) KSTR(extra_hdrs)
KSTR(content_type_hdr) KSTR(offline_message) KSTR(reminder) KSTR(outbound_proxy)
KINT(expire_time) KINT(check_time) KINT(send_time) KINT(clean_period) KINT(use_contact)
KSTR(sc_mid) KSTR(sc_from) KSTR(sc_to) KSTR(sc_uri_user) KSTR(sc_uri_host) KSTR(sc_body)
KSTR(sc_ctype) KSTR(sc_exp_time) KSTR(sc_inc_time) KSTR(sc_snd_time) KSTR(sc_stored_hdrs)
KSTR(sc_callid) KINT(add_date) KINT(max_messages) KINT(use_callid)

static int set_snd_time_avp(modparam_t t, void *v)
{
    (void)t;
    kmsilo.snd_time_avp = strdup((const char *)v);
    return kmsilo.snd_time_avp ? 0 : -1;
}

static int set_extra_hdrs_avp(modparam_t t, void *v)
{
    (void)t;
    kmsilo.extra_hdrs_avp = strdup((const char *)v);
    return kmsilo.extra_hdrs_avp ? 0 : -1;
}

static int set_add_contact(modparam_t t, void *v)
{
    (void)t;
    /* msilo adds a Contact to dumped messages; libmsilo's contact_hdr is the way */
    if ((long)v != 0)
        LM_WARN("msilo_lib: modparam \"add_contact\" is ignored (use contact_hdr)\n");
    return 0;
}

static int set_skip_notification_flag(modparam_t t, void *v)
{
    (void)t;
    long f = (long)v;
    if (f < -1 || f > 31) {
        LM_ERR("msilo_lib: bad value for modparam \"skip_notification_flag\": %ld (-1..31)\n", f);
        return -1;
    }
    kmsilo.skip_notification_flag = (int)f;
    return 0;
}

static int set_migrate(modparam_t t, void *v)
{
    (void)t;
    kmsilo.migrate = (long)v != 0;
    return 0;
}

static int set_store_timeout(modparam_t t, void *v)
{
    (void)t;
    long ms = (long)v;
    if (ms < 10 || ms > 600000) {
        LM_ERR("msilo_lib: bad value for modparam \"store_timeout\": %ld (10..600000 ms)\n", ms);
        return -1;
    }
    kmsilo.store_timeout_ms = (int)ms;
    return 0;
}

static int set_async_reply(modparam_t t, void *v)
{
    (void)t;
    kmsilo.async_reply = (long)v != 0;
    return 0;
}

/* "engine_param": any other libmsilo key, as "key=value" (repeatable) */
static int set_engine_param(modparam_t t, void *v)
{
    (void)t;
    const char *s = v, *eq = strchr(s, '=');
    if (!eq || eq == s) {
        LM_ERR("msilo_lib: bad value for modparam \"engine_param\": \"%s\" (key=value)\n", s);
        return -1;
    }
    char key[64];
    size_t n = (size_t)(eq - s);
    if (n >= sizeof key) {
        LM_ERR("msilo_lib: bad value for modparam \"engine_param\": key too long\n");
        return -1;
    }
    memcpy(key, s, n);
    key[n] = '\0';
    if (strcmp(key, "store_threads") == 0)
        kmsilo.store_threads_set = 1;
    return set_key(key, eq + 1);
}

#define PS(n) { #n, PARAM_STRING | PARAM_USE_FUNC, (void *)set_##n }
#define PI(n) { #n, PARAM_INT | PARAM_USE_FUNC, (void *)set_##n }

param_export_t kmsilo_params[] = {
    PS(db_url), PS(db_table), PS(from_address), PS(contact_hdr), PS(extra_hdrs),
    PS(content_type_hdr), PS(offline_message), PS(reminder), PS(outbound_proxy),
    PI(expire_time), PI(check_time), PI(send_time), PI(clean_period), PI(use_contact),
    PS(sc_mid), PS(sc_from), PS(sc_to), PS(sc_uri_user), PS(sc_uri_host), PS(sc_body),
    PS(sc_ctype), PS(sc_exp_time), PS(sc_inc_time), PS(sc_snd_time), PS(sc_stored_hdrs),
    PS(sc_callid), PS(snd_time_avp), PS(extra_hdrs_avp), PI(add_date), PI(max_messages),
    PI(add_contact), PI(skip_notification_flag), PI(use_callid),
    /* the module's own */
    PI(migrate), PI(store_timeout), PS(engine_param), PI(async_reply),
    { 0, 0, 0 },
};

int kmsilo_params_finish(void) { return ensure_cfg(); }
