/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sofia-embed: the smallest SIP server that embeds libmsilo on Sofia-SIP NTA,
 * the recipe of doc/embedding-sofia.md as a program (msilo-server is the full
 * one: registrar, forwarding, Digest, metrics).
 *
 * It stores every MESSAGE (m_store: its owner is the Request-URI) and answers
 * 202 once the store has committed it; it answers a REGISTER with 200 and
 * then delivers what is stored to the REGISTER's Contact (m_dump). It keeps
 * no registrations of its own. Everything runs on one thread: Sofia's root is
 * a GSource on the engine's GMainContext (su_glib_root_create()), so NTA's
 * callbacks, the engine's callbacks and its timers all run from one
 * g_main_loop_run(). SIGTERM or SIGINT shuts it down.
 *
 *   sofia-embed sip:127.0.0.1:5060 [store-url]     (default store: memory:)
 *
 * Builds against an installed libmsilo with
 *   cc sofia-embed.c $(pkg-config --cflags --libs msilo msilo-sofia msilo-stores sofia-sip-ua-glib)
 */
#include <msilo/msilo.h>
#include <msilo/sofia.h>
#include <msilo/stores.h>

#include <glib-unix.h>
#include <glib.h>
#include <stdio.h>

/* NTA's magic types: defined before the Sofia headers, so that the callbacks
 * get our types without casts. */
typedef struct app app_t;
#define NTA_AGENT_MAGIC_T app_t
#define NTA_LEG_MAGIC_T app_t
#define NTA_INCOMING_MAGIC_T app_t
#define SU_ROOT_MAGIC_T app_t
#include <sofia-sip/nta.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_glib.h>

struct app {
    su_root_t *root;
    nta_agent_t *agent;
    nta_leg_t *leg;
    msilo_engine_t *engine;
    GMainLoop *loop;
};

/* ---- m_store: reply when the store has committed ---------------------------- */

/* The engine's answer to a store arrives here, later, on the same thread. The
 * request was kept by returning 0 from the leg callback: reply now, then
 * destroy it (NTA answers retransmissions of the MESSAGE meanwhile). */
static void stored(msilo_engine_t *e, int result, int64_t id, void *data)
{
    nta_incoming_t *irq = data;
    int status = msilo_error_sip_status(result); /* 202, 486, 413, 400, 503 */
    (void)e;
    if (result)
        g_message("MESSAGE not stored: %s (%s)", msilo_strerror(result), msilo_error_detail());
    else
        g_message("stored message %" G_GINT64_FORMAT, id);
    nta_incoming_treply(irq, status, sip_status_phrase(status), TAG_END());
    nta_incoming_destroy(irq);
}

static int handle_message(app_t *app, nta_incoming_t *irq, sip_t const *sip)
{
    msilo_sofia_request_t *req = NULL;
    /* the view of @sip: URIs as Sofia parsed them, body, unknown headers */
    int rc = msilo_sofia_request_new(&req, sip, NULL);
    if (rc == 0)
        rc = msilo_engine_store(app->engine, msilo_sofia_request_view(req), NULL, stored, irq);
    /* the engine copied what it keeps: the view may go now */
    msilo_sofia_request_free(req);
    if (rc) {
        /* refused at once (bad URI, body too big...): no callback will come */
        g_message("MESSAGE refused: %s (%s)", msilo_strerror(rc), msilo_error_detail());
        return msilo_error_sip_status(rc); /* NTA replies and destroys irq */
    }
    return 0; /* we keep irq: stored() replies */
}

/* ---- m_dump: deliver to the Contact of a REGISTER ------------------------------ */

static void dumped(msilo_engine_t *e, int result, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    (void)data;
    g_message("dump: %s, %zu claimed, %zu delivered, %zu failed", msilo_strerror(result),
              res->claimed, res->delivered, res->failed);
}

static int handle_register(app_t *app, nta_incoming_t *irq, sip_t const *sip)
{
    msilo_sofia_request_t *req = NULL;
    if (msilo_sofia_request_new(&req, sip, NULL))
        return 400;
    msilo_request_t *view = msilo_sofia_request_view(req);
    /* a real registrar saves the binding here; this one only echoes it */
    if (sip->sip_contact) {
        view->expires = (long)sip_contact_expires(sip->sip_contact, sip->sip_expires,
                                                  sip->sip_date, 3600, sip_now());
        nta_incoming_treply(irq, SIP_200_OK, SIPTAG_CONTACT(sip->sip_contact), TAG_END());
    } else {
        nta_incoming_treply(irq, SIP_200_OK, TAG_END());
    }
    nta_incoming_destroy(irq);
    /* after the 200: the stored messages go to view->contact (the first
     * Contact; nothing is sent for Expires 0, "*", or an Allow without
     * MESSAGE) */
    int rc = view->contact ? msilo_engine_dump(app->engine, view, NULL, 0, dumped, app) : 0;
    if (rc)
        g_message("dump not started: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    msilo_sofia_request_free(req);
    return 0; /* replied above */
}

/* The default leg: every request that is not part of a dialog. */
static int request_cb(app_t *app, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
    (void)leg;
    switch (sip->sip_request->rq_method) {
    case sip_method_message:
        return handle_message(app, irq, sip);
    case sip_method_register:
        return handle_register(app, irq, sip);
    case sip_method_options:
        return 200;
    default:
        return 501;
    }
}

/* ---- start and stop ------------------------------------------------------------ */

static void stopped(msilo_engine_t *e, int result, void *data)
{
    (void)e;
    if (result)
        g_message("shutdown: %s: unfinished deliveries keep their lease", msilo_strerror(result));
    *(gboolean *)data = TRUE;
}

static gboolean on_signal(gpointer data)
{
    app_t *app = data;
    g_main_loop_quit(app->loop);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: sofia-embed SIP-URL [STORE-URL]\n");
        return 2;
    }
    app_t app = { 0 };
    msilo_config_t *cfg = NULL;
    msilo_store_t *store = NULL;
    msilo_transport_t *transport = NULL;
    int status = 1;

    msilo_config_new(&cfg);
    if (msilo_store_open(argc > 2 ? argv[2] : "memory:", cfg, MSILO_STORE_OPEN_MIGRATE, &store)) {
        fprintf(stderr, "sofia-embed: store: %s\n", msilo_error_detail());
        goto out;
    }

    su_init();
    /* Sofia's root as a GSource of the default context: the one the engine
     * below uses, and the one g_main_loop_run() iterates */
    app.root = su_glib_root_create(&app);
    g_source_attach(su_glib_root_gsource(app.root), NULL);
    app.agent = nta_agent_create(app.root, URL_STRING_MAKE(argv[1]), NULL, NULL,
                                 NTATAG_UA(0), NTATAG_SERVER_RPORT(1), NTATAG_USE_SRV(0),
                                 NTATAG_USE_NAPTR(0), TAG_END());
    if (!app.agent) {
        fprintf(stderr, "sofia-embed: cannot listen on %s\n", argv[1]);
        goto out_root;
    }
    app.leg = nta_leg_tcreate(app.agent, request_cb, &app, NTATAG_NO_DIALOG(1), TAG_END());

    /* the engine's deliveries are client transactions of the same agent */
    if (msilo_sofia_transport_new(&transport, app.agent, app.root) ||
        msilo_engine_new(&app.engine, cfg, store, transport, NULL)) {
        fprintf(stderr, "sofia-embed: %s\n", msilo_error_detail());
        goto out_agent;
    }

    app.loop = g_main_loop_new(NULL, FALSE);
    guint sigterm = g_unix_signal_add(SIGTERM, on_signal, &app);
    guint sigint = g_unix_signal_add(SIGINT, on_signal, &app);
    printf("sofia-embed: listening on %s\n", argv[1]);
    fflush(stdout);
    g_main_loop_run(app.loop);
    g_source_remove(sigterm);
    g_source_remove(sigint);
    g_main_loop_unref(app.loop);
    status = 0;

    /* order: the engine, within 3 s (new MESSAGEs get 503 meanwhile, stores
     * already accepted commit, deliveries in flight finish, claimed messages
     * go back), then the transport (cancels sends still in flight), Sofia,
     * the store */
    gboolean done = FALSE;
    if (msilo_engine_shutdown(app.engine, 3000, stopped, &done) == 0)
        while (!done)
            g_main_context_iteration(NULL, TRUE);
    msilo_engine_free(app.engine);
out_agent:
    msilo_transport_free(transport);
    if (app.leg)
        nta_leg_destroy(app.leg);
    nta_agent_destroy(app.agent);
out_root:
    g_source_destroy(su_glib_root_gsource(app.root));
    su_root_destroy(app.root);
    su_deinit();
out:
    msilo_store_free(store);
    msilo_config_free(cfg);
    return status;
}
