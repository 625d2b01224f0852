/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's m_store(): a MESSAGE goes to the engine and is answered from
 * the store callback, i.e. only after the store committed it (202, or the
 * status of the error). Requests that may arrive here twice (they came back,
 * or this server forwarded them) go through the store-once table (loop.c).
 */
#include <string.h>

#include "server.h"
#include "request.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/url.h>

/* Answers a MESSAGE with the status for a store result (202 on success). */
static void reply_store_result(server_t *s, nta_incoming_t *irq, int result)
{
    int status = msilo_error_sip_status(result);
    (void)s;
    if (result == 0) {
        server_reply(irq, 202, TAG_END());
    } else if (result == MSILO_EFULL) {
        /* 486: the user's mailbox is full; say so in Warning and Reason. */
        server_reply(irq, status,
                          SIPTAG_WARNING_STR("399 msilo \"Mailbox full\""),
                          SIPTAG_REASON_STR("SIP ;cause=486 ;text=\"Mailbox full\""),
                          TAG_END());
    } else {
        char warning[160];
        g_snprintf(warning, sizeof(warning), "399 msilo \"%s\"", msilo_strerror(result));
        server_reply(irq, status, SIPTAG_WARNING_STR(warning), TAG_END());
    }
}

/* ---- m_store -------------------------------------------------------------- */

/* A store that goes through the store-once table (loop.c). */
typedef struct once_store {
    nta_incoming_t *irq;
    char *key;
} once_store;

/* A failed store is logged by the engine already (a warning with the
 * store's cause, at most one a second): this line is per request, at the
 * level of the other per-request lines. */
static void store_log(int result, int64_t id)
{
    if (result == 0)
        REQ_LOG("stored message %" G_GINT64_FORMAT, id);
    else
        REQ_LOG("store failed: %s (%s)", msilo_strerror(result), msilo_error_detail());
}

static void store_done(msilo_engine_t *e, int result, int64_t id, void *data)
{
    nta_incoming_t *irq = data;
    server_t *s = nta_incoming_magic(irq, NULL);
    (void)e;
    g_hash_table_remove(s->stores, irq);
    store_log(result, id);
    reply_store_result(s, irq, result);
}

/* Answers the requests that waited for the store of @key with its result. */
static void once_finish(server_t *s, const char *key, int result)
{
    GPtrArray *waiters = server_once_end(s, key, result, server_now());
    for (guint i = 0; waiters && i < waiters->len; i++) {
        s->n_stored_once++;
        g_hash_table_remove(s->stores, waiters->pdata[i]);
        reply_store_result(s, waiters->pdata[i], result);
    }
    if (waiters)
        g_ptr_array_unref(waiters);
}

static void once_store_done(msilo_engine_t *e, int result, int64_t id, void *data)
{
    once_store *os = data;
    server_t *s = nta_incoming_magic(os->irq, NULL);
    (void)e;
    g_hash_table_remove(s->stores, os->irq);
    store_log(result, id);
    reply_store_result(s, os->irq, result);
    once_finish(s, os->key, result);
    g_free(os->key);
    g_free(os);
}

/* m_store() of the request of @irq; the reply goes out when the store
 * completes. @forwarded: we forwarded it before (its forward failed). */
void server_store_request(server_t *s, nta_incoming_t *irq, bool forwarded)
{
    msg_t *msg = nta_incoming_getrequest(irq);
    sip_t const *sip = sip_object(msg);
    su_home_t home[1] = { SU_HOME_INIT(home) };
    url_t const *owner_url = server_message_owner(sip);
    char const *owner = owner_url ? url_as_string(home, owner_url) : NULL;
    msilo_sofia_request_t *req = NULL;
    once_store *os = NULL;
    int r;

    nta_incoming_bind(irq, NULL, s);
    if (forwarded || server_came_back(s, sip)) {
        char *key = server_once_key(sip);
        switch (server_once_begin(s, key, irq, server_now())) {
        case SERVER_ONCE_WAIT:
            REQ_LOG("MESSAGE is being stored already: waiting for that store");
            g_hash_table_add(s->stores, irq);
            g_free(key);
            goto out;
        case SERVER_ONCE_STORED:
            REQ_LOG("MESSAGE stored already: 202 without storing it again");
            s->n_stored_once++;
            reply_store_result(s, irq, 0);
            g_free(key);
            goto out;
        case SERVER_ONCE_FIRST:
            os = g_new0(once_store, 1);
            os->irq = irq;
            os->key = key;
            break;
        }
    }
    r = msilo_sofia_request_new_with(&req, sip, s->snd_time_header, s->stored_headers);
    if (r == 0)
        r = msilo_engine_store(s->engine, msilo_sofia_request_view(req), owner,
                               os ? once_store_done : store_done, os ? (void *)os : (void *)irq);
    msilo_sofia_request_free(req);
    if (r < 0) {
        g_message("MESSAGE not stored: %s (%s)", msilo_strerror(r), msilo_error_detail());
        reply_store_result(s, irq, r);
        if (os) {
            once_finish(s, os->key, r);
            g_free(os->key);
            g_free(os);
        }
        goto out;
    }
    g_hash_table_add(s->stores, irq);
out:
    su_home_deinit(home);
    msg_destroy(msg);
}


/* A fork's device that did not take the message (forward.c): it is stored
 * for that device alone; the sender has its 2xx already, so the result is
 * only logged. */
static void device_store_done(msilo_engine_t *e, int result, int64_t id, void *data)
{
    char *device = data;
    (void)e;
    if (result == 0)
        REQ_LOG("stored message %" G_GINT64_FORMAT " for device %s", id, device);
    else
        g_warning("message for device %s not stored: %s (%s)", device, msilo_strerror(result),
                  msilo_error_detail());
    g_free(device);
}

void server_store_for_device(server_t *s, nta_incoming_t *irq, const char *device)
{
    msg_t *msg = nta_incoming_getrequest(irq);
    sip_t const *sip = sip_object(msg);
    su_home_t home[1] = { SU_HOME_INIT(home) };
    url_t const *owner_url = server_message_owner(sip);
    char const *owner = owner_url ? url_as_string(home, owner_url) : NULL;
    msilo_sofia_request_t *req = NULL;
    char *dev = g_strdup(device);
    int r = msilo_sofia_request_new_with(&req, sip, s->snd_time_header, s->stored_headers);

    if (r == 0) {
        msilo_request_t *view = msilo_sofia_request_view(req);
        view->device = dev;
        r = msilo_engine_store(s->engine, view, owner, device_store_done, dev);
    }
    msilo_sofia_request_free(req);
    if (r < 0) {
        g_warning("message for device %s not stored: %s (%s)", device, msilo_strerror(r),
                  msilo_error_detail());
        g_free(dev);
    }
    su_home_deinit(home);
    msg_destroy(msg);
}
