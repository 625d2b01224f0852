/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmsilo-rpc.c: the module's RPC commands, what msilo-admin shows:
 *   msilo_lib.count [owner]      messages stored for owner (none: all)
 *   msilo_lib.list owner [max]   an owner's messages, oldest first
 *   msilo_lib.stats              the statistics (as stats.get_statistics)
 * They run in Kamailio's RPC process (ctl, jsonrpcs), which opens its own
 * connection to the store on first use: an admin query never waits behind
 * the engine's commits, and the engine never waits for an admin.
 */
#include "kmsilo.h"

#include "core/dprint.h"
#include "core/rpc.h"
#include "core/rpc_lookup.h"

#include <glib.h>
#include <msilo/engine.h>
#include <msilo/errors.h>
#include <msilo/message.h>
#include <msilo/stores.h>
#include <stdlib.h>
#include <string.h>

static msilo_store_t *rpc_store;

static int store_ready(rpc_t *rpc, void *c)
{
    if (rpc_store)
        return 0;
    int rc = msilo_store_open(NULL, kmsilo.cfg, 0, &rpc_store);
    if (rc < 0) {
        rpc->fault(c, 500, "cannot open the store: %s: %s", msilo_strerror(rc),
                   msilo_error_detail());
        return -1;
    }
    return 0;
}

/* "user@domain" or a SIP URI. @return 0, or -1 with the fault sent. */
static int owner_arg(rpc_t *rpc, void *c, const char *text, char **user, char **domain)
{
    /* msilo-admin's form "user@domain" as well as a URI */
    char *uri = strchr(text, ':') ? g_strdup(text) : g_strconcat("sip:", text, NULL);
    int rc = msilo_aor_parse(uri, NULL, user, domain);
    g_free(uri);
    if (rc < 0) {
        rpc->fault(c, 400, "bad owner %s: %s", text, msilo_strerror(rc));
        return -1;
    }
    return 0;
}

static void rpc_count(rpc_t *rpc, void *c)
{
    char *owner = NULL, *user = NULL, *domain = NULL;
    int64_t n = 0;
    if (rpc->scan(c, "*s", &owner) == 1 && owner_arg(rpc, c, owner, &user, &domain) < 0)
        return;
    if (store_ready(rpc, c) == 0) {
        int rc = msilo_store_count(rpc_store, user, domain, &n);
        if (rc < 0) {
            rpc->fault(c, 500, "count: %s: %s", msilo_strerror(rc), msilo_error_detail());
            msilo_store_free(rpc_store); /* reconnect next time */
            rpc_store = NULL;
        } else {
            rpc->add(c, "l", (long)n);
        }
    }
    g_free(user);
    g_free(domain);
}

static void rpc_list(rpc_t *rpc, void *c)
{
    char *owner = NULL, *user = NULL, *domain = NULL;
    int max = 100;
    if (rpc->scan(c, "s", &owner) < 1) {
        rpc->fault(c, 400, "owner expected");
        return;
    }
    rpc->scan(c, "*d", &max);
    if (owner_arg(rpc, c, owner, &user, &domain) < 0)
        return;
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    if (store_ready(rpc, c) == 0) {
        int rc = msilo_store_list(rpc_store, user, domain, 0, max > 0 ? (size_t)max : 100, &msgs, &n);
        if (rc < 0) {
            rpc->fault(c, 500, "list: %s: %s", msilo_strerror(rc), msilo_error_detail());
        } else {
            for (size_t i = 0; i < n; i++) {
                void *h;
                msilo_message_t *m = msgs[i];
                char *body = g_strndup(m->body ? m->body : "", m->body_len);
                if (rpc->add(c, "{", &h) < 0)
                    break;
                rpc->struct_add(h, "lsssllds", "id", (long)m->id, "src", m->src ? m->src : "",
                                "dst", m->dst ? m->dst : "", "ctype",
                                m->ctype ? m->ctype : "text/plain", "inc_time",
                                (long)m->inc_time, "exp_time", (long)m->exp_time, "attempts",
                                (int)m->attempts, "body", body);
                g_free(body);
            }
            msilo_message_array_free(msgs, n);
        }
    }
    g_free(user);
    g_free(domain);
}

static void rpc_stats(rpc_t *rpc, void *c)
{
    static const char *const names[] = { "stored_messages", "dumped_messages", "failed_messages",
                                         "dumped_reminders", "failed_reminders" };
    unsigned long v[5];
    void *h;
    kmsilo_stats_read(v);
    if (rpc->add(c, "{", &h) < 0)
        return;
    for (int i = 0; i < 5; i++)
        rpc->struct_add(h, "l", names[i], (long)v[i]);
}

static const char *count_doc[] = { "Messages stored for an owner (none: all).", 0 };
static const char *list_doc[] = { "An owner's stored messages, oldest first: owner [max].", 0 };
static const char *stats_doc[] = { "The module's statistics.", 0 };

rpc_export_t kmsilo_rpc[] = {
    { "msilo_lib.count", rpc_count, count_doc, 0 },
    { "msilo_lib.list", rpc_list, list_doc, RET_ARRAY },
    { "msilo_lib.stats", rpc_stats, stats_doc, 0 },
    { 0, 0, 0, 0 },
};
