/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo_lib.c: the Kamailio module msilo_lib, a drop-in for msilo built on
 * libmsilo: its exports, mod_init/child_init, and m_store()/m_dump() as
 * they run in a SIP worker. A worker only turns the request into a
 * msilo_request_t and hands it to the engine process (kmsilo-engine.c) over
 * a socket; m_store waits for the commit (at most store_timeout ms), so the
 * script answers 202 only for a committed message. doc/kamailio.md.
 */
#include "kmsilo-wire.h"
#include "kmsilo.h"

#include "core/cfg/cfg_struct.h"
#include "core/dprint.h"
#include "core/flags.h"
#include "core/mod_fix.h"
#include "core/parser/contact/parse_contact.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_content.h"
#include "core/parser/parse_expires.h"
#include "core/pt.h"
#include "core/pvar.h"
#include "core/rpc.h"
#include "core/sr_module.h"
#include "modules/tm/tm_load.h"

#include <errno.h>
#include <glib.h>
#include <msilo/errors.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

MODULE_VERSION

extern param_export_t kmsilo_params[];
extern rpc_export_t kmsilo_rpc[];

static int mod_init(void);
static int child_init(int rank);
static int w_m_store(struct sip_msg *msg, char *owner, char *p2);
static int w_m_dump(struct sip_msg *msg, char *owner, char *maxmsg);

static cmd_export_t cmds[] = {
    { "m_store", (cmd_function)w_m_store, 0, 0, 0, REQUEST_ROUTE | FAILURE_ROUTE },
    { "m_store", (cmd_function)w_m_store, 1, fixup_spve_null, 0, REQUEST_ROUTE | FAILURE_ROUTE },
    { "m_dump", (cmd_function)w_m_dump, 0, 0, 0, REQUEST_ROUTE },
    { "m_dump", (cmd_function)w_m_dump, 1, fixup_spve_null, 0, REQUEST_ROUTE },
    { "m_dump", (cmd_function)w_m_dump, 2, fixup_spve_igp, 0, REQUEST_ROUTE },
    { 0, 0, 0, 0, 0, 0 },
};

struct module_exports exports = {
    "msilo_lib", DEFAULT_DLFLAGS, cmds, kmsilo_params, kmsilo_rpc, 0, 0, mod_init, child_init, 0,
};

static pv_spec_t snd_time_spec, extra_hdrs_spec;
static int have_snd_time_spec, have_extra_hdrs_spec;
static uint32_t next_seq;

static int parse_pv(const char *name, pv_spec_t *spec)
{
    str s = { (char *)name, (int)strlen(name) };
    if (!pv_parse_spec(&s, spec) || spec->getf == NULL) {
        LM_ERR("msilo_lib: bad pseudo-variable \"%s\"\n", name);
        return -1;
    }
    return 0;
}

static int mod_init(void)
{
    if (kmsilo_params_finish() < 0)
        return -1;
    int rc = msilo_config_validate(kmsilo.cfg);
    if (rc < 0) {
        LM_ERR("msilo_lib: %s: %s\n", msilo_strerror(rc), msilo_error_detail());
        return -1;
    }
    if (kmsilo.snd_time_avp && parse_pv(kmsilo.snd_time_avp, &snd_time_spec) == 0)
        have_snd_time_spec = 1;
    else if (kmsilo.snd_time_avp)
        return -1;
    if (kmsilo.extra_hdrs_avp && parse_pv(kmsilo.extra_hdrs_avp, &extra_hdrs_spec) == 0)
        have_extra_hdrs_spec = 1;
    else if (kmsilo.extra_hdrs_avp)
        return -1;
    if (kmsilo_stats_register(exports.name) < 0 || kmsilo_tm_load() < 0)
        return -1;

    /* bound here, in the main process, before any fork: every child can
     * connect at once, whether the engine process runs yet or not */
    snprintf(kmsilo.sock_name, sizeof kmsilo.sock_name, "msilo_lib/%d", (int)getpid());
    kmsilo.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    size_t n = strlen(kmsilo.sock_name);
    memcpy(a.sun_path + 1, kmsilo.sock_name, n);
    if (kmsilo.listen_fd < 0 ||
        bind(kmsilo.listen_fd, (struct sockaddr *)&a,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0 ||
        listen(kmsilo.listen_fd, 1024) < 0) {
        LM_ERR("msilo_lib: engine socket @%s: %s\n", kmsilo.sock_name, strerror(errno));
        return -1;
    }
    register_procs(1);
    cfg_register_child(1);
    return 0;
}

static int child_init(int rank)
{
    if (rank != PROC_MAIN)
        return 0;
    int pid = fork_process(PROC_NOCHLDINIT, "msilo_lib engine", 1);
    if (pid < 0)
        return -1;
    if (pid == 0) {
        kmsilo.engine_pid = getpid();
        if (init_child(PROC_RPC) < 0 || cfg_child_init())
            return -1;
        kmsilo_engine_main(); /* never returns */
    }
    kmsilo.engine_pid = pid;
    return 0;
}

/* ---------------------------------------------------------- the request view */

typedef struct {
    char *s[16];
    int n;
} strs_t;

static const char *dup_str(strs_t *k, const char *p, int len)
{
    if (!p || len < 0 || k->n == (int)G_N_ELEMENTS(k->s))
        return NULL;
    return k->s[k->n++] = g_strndup(p, (gsize)len);
}

static void strs_free(strs_t *k)
{
    for (int i = 0; i < k->n; i++)
        g_free(k->s[i]);
}

static long header_expires(struct sip_msg *msg)
{
    if (!msg->expires || parse_expires(msg->expires) < 0 || !msg->expires->parsed)
        return -1;
    exp_body_t *e = (exp_body_t *)msg->expires->parsed;
    return e->valid ? (long)e->val : -1;
}

static const char *pv_text(struct sip_msg *msg, pv_spec_t *spec, strs_t *k)
{
    pv_value_t v;
    if (pv_get_spec_value(msg, spec, &v) != 0 || !(v.flags & PV_VAL_STR))
        return NULL;
    return dup_str(k, v.rs.s, v.rs.len);
}

/* Fills @p r from @p msg (strings copied into @p k). @return 0 or -1. */
static int fill_view(struct sip_msg *msg, msilo_request_t *r, strs_t *k)
{
    if (parse_headers(msg, HDR_EOH_F, 0) < 0 || !msg->to || !msg->from) {
        LM_ERR("msilo_lib: cannot parse the request headers\n");
        return -1;
    }
    r->method = dup_str(k, msg->first_line.u.request.method.s,
                        msg->first_line.u.request.method.len);
    str *ruri = GET_RURI(msg);
    r->ruri = dup_str(k, ruri->s, ruri->len);
    r->orig_ruri = dup_str(k, msg->first_line.u.request.uri.s, msg->first_line.u.request.uri.len);
    r->to = dup_str(k, msg->to->body.s, msg->to->body.len);
    r->from = dup_str(k, msg->from->body.s, msg->from->body.len);
    if (msg->callid)
        r->call_id = dup_str(k, msg->callid->body.s, msg->callid->body.len);
    if (msg->content_type)
        r->content_type = dup_str(k, msg->content_type->body.s, msg->content_type->body.len);
    r->expires = header_expires(msg);
    return 0;
}

/* ------------------------------------------------------------------ m_store */

static int w_m_store(struct sip_msg *msg, char *owner_p, char *p2)
{
    (void)p2;
    str owner = { 0, 0 };
    if (owner_p && fixup_get_svalue(msg, (gparam_t *)owner_p, &owner) < 0) {
        LM_ERR("msilo_lib: m_store: invalid owner parameter\n");
        return -1;
    }
    strs_t k = { .n = 0 };
    msilo_request_t r = MSILO_REQUEST_INIT;
    int ret = -1;
    if (fill_view(msg, &r, &k) < 0)
        goto out;
    if (msg->contact)
        r.contact = dup_str(&k, msg->contact->body.s, msg->contact->body.len);
    char *body = get_body(msg);
    if (body) {
        long len = msg->len - (long)(body - msg->buf);
        if (msg->content_length && get_content_length(msg) < len)
            len = get_content_length(msg);
        r.body = body;
        r.body_len = len > 0 ? (size_t)len : 0;
    }
    if (have_snd_time_spec)
        r.snd_time = pv_text(msg, &snd_time_spec, &k);
    msilo_header_t extra[1];
    if (have_extra_hdrs_spec) {
        /* msilo's extra_hdrs_avp holds header lines: store them as one "header" */
        const char *h = pv_text(msg, &extra_hdrs_spec, &k);
        if (h && *h) {
            const char *colon = strchr(h, ':');
            if (colon) {
                extra[0].name = dup_str(&k, h, (int)(colon - h));
                extra[0].value = g_strstrip((char *)dup_str(&k, colon + 1, (int)strlen(colon + 1)));
                if (extra[0].name && extra[0].value) {
                    r.headers = extra;
                    r.n_headers = 1;
                }
            }
        }
    }
    if (kmsilo.skip_notification_flag >= 0 && isflagset(msg, (flag_t)kmsilo.skip_notification_flag) == 1)
        r.flags |= MSILO_REQUEST_SKIP_NOTIFICATION;

    const char *o = owner.s ? dup_str(&k, owner.s, owner.len) : NULL;
    char *buf;
    struct cell *t;
    unsigned th, tl;
    if (kmsilo.async_reply && is_route_type(REQUEST_ROUTE) && (t = kmsilo_tmb.t_gett()) &&
        t != T_UNDEFINED && kmsilo_tmb.t_suspend(msg, &th, &tl) == 0) {
        /* suspended (tm keeps it, and answers 408 after fr_timer if nobody
         * does): the engine process answers 202/503 after the commit; the
         * script stops here (0), as after exit, and the worker takes the
         * next request */
        int64_t ident = (int64_t)(((uint64_t)th << 32) | tl);
        size_t n = kmsilo_wire_encode_request(KMSILO_OP_STORE_ASYNC, 0, &r, o, ident, &buf);
        ret = kmsilo_client_send(buf, n) == 0 ? 0 : -1;
        g_free(buf);
        goto out;
    }
    uint32_t seq = ++next_seq;
    size_t len = kmsilo_wire_encode_request(KMSILO_OP_STORE, seq, &r, o, 0, &buf);
    int32_t result;
    int64_t id;
    if (kmsilo_client_call(buf, len, seq, kmsilo.store_timeout_ms, &result, &id) < 0) {
        LM_ERR("msilo_lib: m_store: no answer from the engine process within %d ms\n",
               kmsilo.store_timeout_ms);
    } else if (result < 0) {
        LM_ERR("msilo_lib: m_store: %s\n", msilo_strerror(result));
    } else {
        LM_DBG("msilo_lib: stored message %lld\n", (long long)id);
        ret = 1;
    }
    g_free(buf);
out:
    strs_free(&k);
    return ret;
}

/* ------------------------------------------------------------------- m_dump */

static int w_m_dump(struct sip_msg *msg, char *owner_p, char *max_p)
{
    str owner = { 0, 0 };
    int max = 0;
    if (owner_p && fixup_get_svalue(msg, (gparam_t *)owner_p, &owner) < 0)
        return -1;
    if (max_p && (fixup_get_ivalue(msg, (gparam_t *)max_p, &max) < 0 || max < 0))
        return -1;
    strs_t k = { .n = 0 };
    msilo_request_t r = MSILO_REQUEST_INIT;
    int ret = -1;
    if (fill_view(msg, &r, &k) < 0)
        goto out;
    if (msg->allow)
        r.allow = dup_str(&k, msg->allow->body.s, msg->allow->body.len);
    if (!msg->contact || parse_contact(msg->contact) < 0 || !msg->contact->parsed) {
        LM_DBG("msilo_lib: m_dump: no contact\n");
        goto out;
    }
    contact_body_t *cb = (contact_body_t *)msg->contact->parsed;
    if (cb->star) {
        r.contact = "*";
    } else if (cb->contacts) {
        contact_t *c = cb->contacts;
        GString *g = g_string_new("<");
        g_string_append_len(g, c->uri.s, c->uri.len);
        g_string_append_c(g, '>');
        if (c->methods && c->methods->body.len) {
            g_string_append(g, ";methods=\"");
            g_string_append_len(g, c->methods->body.s, c->methods->body.len);
            g_string_append_c(g, '"');
        }
        r.contact = dup_str(&k, g->str, (int)g->len);
        g_string_free(g, TRUE);
        if (c->expires && c->expires->body.len) {
            char tmp[24];
            int n = c->expires->body.len < 23 ? c->expires->body.len : 23;
            memcpy(tmp, c->expires->body.s, (size_t)n);
            tmp[n] = '\0';
            r.expires = strtol(tmp, NULL, 10);
        }
    } else {
        goto out;
    }
    const char *o = owner.s ? dup_str(&k, owner.s, owner.len) : NULL;
    char *buf;
    size_t len = kmsilo_wire_encode_request(KMSILO_OP_DUMP, 0, &r, o, max, &buf);
    ret = kmsilo_client_send(buf, len) == 0 ? 1 : -1;
    g_free(buf);
out:
    strs_free(&k);
    return ret;
}
