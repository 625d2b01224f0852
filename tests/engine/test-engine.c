/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Engine unit tests: the admin guide's behaviour, one test per parameter, function
 * and statistic where it can be observed, with the in-memory store, a fake
 * transport and a fake clock (no sleeping: time moves when the test says).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake.h"
#include "../../lib/tsan.h"

#define T0 1800000000 /* 2027-01-15T08:00:00Z */

typedef engine_fixture_t fixture;

static int setup(void **state)
{
    fixture *f = engine_fixture_new(T0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    engine_fixture_free(*state);
    return 0;
}

/* Creates the engine from f->cfg (tests set keys first). */
static void start(fixture *f)
{
    engine_fixture_start(f);
}

static void set(fixture *f, const char *k, const char *v)
{
    int rc = msilo_config_set(f->cfg, k, v);
    if (rc)
        fail_msg("set %s=%s: %s", k, v, msilo_error_detail());
}

static msilo_request_t message(const char *ruri, const char *to, const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = ruri;
    r.to = to;
    r.from = "\"Bob\" <sip:bob@example.org>;tag=abc";
    r.contact = "<sip:bob@192.0.2.7:5062>";
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    r.call_id = "cid-1@example.org";
    return r;
}

static msilo_request_t register_req(const char *to, const char *contact, long expires)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "REGISTER";
    r.ruri = "sip:example.org";
    r.to = to;
    r.from = to;
    r.contact = contact;
    r.expires = expires;
    return r;
}

static int64_t store_ok(fixture *f, const msilo_request_t *r, const char *owner)
{
    int64_t id = 0;
    int rc = msilo_engine_store_sync(f->e, r, owner, &id);
    if (rc)
        fail_msg("store: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_true(id > 0);
    return id;
}

static int64_t count(fixture *f, const char *user, const char *domain)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, user, domain, &n), 0);
    return n;
}

static fake_sent_t *sent(fixture *f, guint i)
{
    assert_true(i < f->tr->sent->len);
    return f->tr->sent->pdata[i];
}

static char *body_of(const fake_sent_t *s)
{
    gsize n;
    const char *d = g_bytes_get_data(s->body, &n);
    return g_strndup(d, n);
}

typedef struct {
    int calls, rc;
    msilo_dump_result_t res;
} dump_rec;

static void dump_cb(msilo_engine_t *e, int rc, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    dump_rec *d = data;
    d->calls++;
    d->rc = rc;
    d->res = *res;
}

static void dump(fixture *f, const char *aor, const char *contact, dump_rec *rec)
{
    msilo_request_t reg = register_req(aor, contact, 3600);
    int rc = msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, rec);
    if (rc)
        fail_msg("dump: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_int_equal(rec->calls, 0); /* never from inside the call */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
}

/* ---- configuration ------------------------------------------------------ */

static void test_config_seed_defaults(void **state)
{
    (void)state;
    msilo_config_t *c;
    assert_int_equal(msilo_config_new(&c), 0);
    static const struct { const char *k, *v; } strs[] = {
        { "db_table", "silo" },       { "sc_mid", "id" },           { "sc_from", "src_addr" },
        { "sc_to", "dst_addr" },      { "sc_uri_user", "username" }, { "sc_uri_host", "domain" },
        { "sc_body", "body" },        { "sc_ctype", "ctype" },      { "sc_exp_time", "exp_time" },
        { "sc_inc_time", "inc_time" }, { "sc_snd_time", "snd_time" },
        { "db_url", "postgres://opensips:opensipsrw@localhost/opensips" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++)
        assert_string_equal(msilo_config_get_string(c, strs[i].k), strs[i].v);
    static const char *const unset[] = { "from_address", "contact_hdr", "offline_message",
                                         "content_type_hdr", "reminder", "outbound_proxy",
                                         "snd_time_avp" };
    for (size_t i = 0; i < G_N_ELEMENTS(unset); i++)
        assert_null(msilo_config_get_string(c, unset[i]));
    static const struct { const char *k; int64_t v; } ints[] = {
        { "expire_time", 259200 }, { "check_time", 30 }, { "send_time", 0 },
        { "clean_period", 5 },     { "use_contact", 1 }, { "add_date", 1 },
        { "max_messages", 0 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ints); i++) {
        int64_t v = -1;
        assert_int_equal(msilo_config_get_int(c, ints[i].k, &v), 0);
        assert_int_equal(v, ints[i].v);
    }
    size_t n = 0;
    for (n = 0; msilo_config_key_at(n); n++)
        assert_non_null(msilo_config_key_at(n)->help);
    assert_true(n >= 26);
    msilo_config_free(c);
}

static void test_config_errors(void **state)
{
    (void)state;
    msilo_config_t *c;
    assert_int_equal(msilo_config_new(&c), 0);
    assert_int_equal(msilo_config_set(c, "no_such_key", "1"), MSILO_ECONFIG);
    assert_non_null(strstr(msilo_error_detail(), "no_such_key"));
    assert_int_equal(msilo_config_set(c, "expire_time", "ten"), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "expire_time", "0"), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "expire_time", "-5"), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "check_time", "99999999999999999999"), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "add_date", "maybe"), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "add_date", "off"), 0);
    int64_t v = 1;
    assert_int_equal(msilo_config_get_int(c, "add_date", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(msilo_config_set_int(c, "db_table", 3), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(NULL, "x", "y"), MSILO_EINVAL);
    assert_int_equal(msilo_config_get_int(c, "db_table", &v), MSILO_ECONFIG);
    assert_null(msilo_config_get_string(c, "expire_time"));
    msilo_config_free(c);
    msilo_config_free(NULL);
}

static void test_config_validate(void **state)
{
    (void)state;
    msilo_config_t *c;
    assert_int_equal(msilo_config_new(&c), 0);
    assert_int_equal(msilo_config_validate(c), 0);
    /* unknown template variable: refused at start, naming it */
    assert_int_equal(msilo_config_set(c, "from_address", "sip:$nosuch@example.org"), 0);
    assert_int_equal(msilo_config_validate(c), MSILO_ECONFIG);
    assert_non_null(strstr(msilo_error_detail(), "$nosuch"));
    assert_int_equal(msilo_config_set(c, "from_address", "sip:$rU@example.org"), 0);
    assert_int_equal(msilo_config_validate(c), 0);
    /* offline_message without content_type_hdr */
    assert_int_equal(msilo_config_set(c, "offline_message", "*** User $rU is offline!"), 0);
    assert_int_equal(msilo_config_validate(c), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "content_type_hdr", "Content-Type: text/plain\r\n"), 0);
    assert_int_equal(msilo_config_validate(c), 0);
    /* header lines */
    assert_int_equal(msilo_config_set(c, "contact_hdr", "not a header"), 0);
    assert_int_equal(msilo_config_validate(c), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "contact_hdr", "Contact: <sip:a@b>\nX: y"), 0);
    assert_int_equal(msilo_config_validate(c), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "contact_hdr", "Contact: <sip:null@example.com>\r\n"), 0);
    assert_int_equal(msilo_config_validate(c), 0);
    assert_int_equal(msilo_config_set(c, "content_type_hdr", "X-Type: text/plain\r\n"), 0);
    assert_int_equal(msilo_config_validate(c), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "content_type_hdr", "Content-Type: text/plain\r\n"), 0);
    assert_int_equal(msilo_config_set(c, "outbound_proxy", "http://x"), 0);
    assert_int_equal(msilo_config_validate(c), MSILO_ECONFIG);
    assert_int_equal(msilo_config_set(c, "outbound_proxy", "sip:127.0.0.1;transport=tcp"), 0);
    assert_int_equal(msilo_config_validate(c), 0);
    assert_int_equal(msilo_config_set(c, "reminder", "registrar@example.org"), 0);
    assert_int_equal(msilo_config_validate(c), MSILO_ECONFIG);
    msilo_config_free(c);
}

static void test_engine_new_refuses_bad_config(void **state)
{
    fixture *f = *state;
    set(f, "offline_message", "$fu: offline");
    msilo_engine_t *e = NULL;
    assert_int_equal(msilo_engine_new(&e, f->cfg, f->store, &f->tr->base, f->ctx), MSILO_ECONFIG);
    assert_null(e);
}

/* ---- vtables ------------------------------------------------------------ */

static void test_vtable_checks(void **state)
{
    fixture *f = *state;
    msilo_store_t bad = *f->store;
    bad.version = 99;
    msilo_engine_t *e = NULL;
    assert_int_equal(msilo_engine_new(&e, NULL, &bad, NULL, f->ctx), MSILO_EVERSION);
    bad = *f->store;
    bad.claim = NULL;
    assert_int_equal(msilo_engine_new(&e, NULL, &bad, NULL, f->ctx), MSILO_EINVAL);
    assert_non_null(strstr(msilo_error_detail(), "claim"));
    msilo_transport_t t = MSILO_TRANSPORT_INIT;
    t.name = "broken";
    t.free = f->tr->base.free;
    assert_int_equal(msilo_engine_new(&e, NULL, f->store, &t, f->ctx), MSILO_EINVAL);
    assert_non_null(strstr(msilo_error_detail(), "send"));
    t.version = 0;
    assert_int_equal(msilo_transport_check(&t), MSILO_EVERSION);
    assert_int_equal(msilo_engine_new(NULL, NULL, f->store, NULL, f->ctx), MSILO_EINVAL);
    assert_null(e);
}

/* The key-file loader: [msilo] keys applied, other groups to the callback,
 * errors naming file, line, group and key. */
static int collect_group(const char *group, const char *key, const char *value, char **ret_why,
                         void *data)
{
    GString *seen = data;
    if (strcmp(group, "mine") != 0) {
        *ret_why = g_strdup("not mine");
        return MSILO_ECONFIG;
    }
    g_string_append_printf(seen, "%s=%s;", key ? key : "(group)", value ? value : "");
    return key && strcmp(key, "bad") == 0 ? MSILO_ECONFIG : 0;
}

static void test_config_load_data(void **state)
{
    (void)state;
    msilo_config_t *cfg = NULL;
    GString *seen = g_string_new(NULL);
    int64_t v = 0;

    assert_int_equal(msilo_config_new(&cfg), 0);
    assert_int_equal(msilo_config_load_data(cfg, "# c\n[msilo]\ncheck_time = 7\nreminder =\n"
                                                 "[mine]\nx = a\\tb\n", "t.conf",
                                            collect_group, seen), 0);
    assert_int_equal(msilo_config_get_int(cfg, "check_time", &v), 0);
    assert_int_equal(v, 7);
    assert_string_equal(seen->str, "(group)=;x=a\tb;");
    static const struct { const char *text, *detail; } bad[] = {
        { "[msilo]\n\ncheck_time = soon\n", "t.conf:3: [msilo] check_time: " },
        { "[msilo]\nno_such_key = 1\n", "t.conf:2: [msilo] no_such_key: " },
        { "[mine]\nok = 1\nbad = 2\n", "t.conf:3: [mine] bad: refused" },
        { "\n[other]\nk = 1\n", "t.conf:2: [other] not mine" },
        { "[msilo]\nx = a\\qb\n", "t.conf:2: [msilo] x: " },
        { "[msilo]\noffline_message = hi $zz\ncontent_type_hdr = Content-Type: text/plain\\r\\n\n",
          "t.conf:2: [msilo] offline_message" },
        { "no group\n", "t.conf: " },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        msilo_config_t *c = NULL;
        assert_int_equal(msilo_config_new(&c), 0);
        int rc = msilo_config_load_data(c, bad[i].text, "t.conf", collect_group, seen);
        if (rc != MSILO_ECONFIG || !g_str_has_prefix(msilo_error_detail(), bad[i].detail))
            fail_msg("case %zu: %d '%s'", i, rc, msilo_error_detail());
        msilo_config_free(c);
    }
    /* without a callback, another group is an error */
    assert_int_equal(msilo_config_load_data(cfg, "[x]\n", NULL, NULL, NULL), MSILO_ECONFIG);
    assert_true(g_str_has_prefix(msilo_error_detail(), "configuration:1: [x] unknown group"));
    assert_int_equal(msilo_config_load_file(cfg, "/nonexistent/msilo.conf", NULL, NULL),
                     MSILO_ECONFIG);
    assert_int_equal(msilo_config_load_data(NULL, "", NULL, NULL, NULL), MSILO_EINVAL);
    g_string_free(seen, TRUE);
    msilo_config_free(cfg);
}

/* ---- URIs and times ----------------------------------------------------- */

static void test_aor_parse(void **state)
{
    (void)state;
    static const struct { const char *in, *user, *domain; } ok[] = {
        { "sip:alice@example.org", "alice", "example.org" },
        { "sips:alice@EXAMPLE.Org:5061;transport=tls", "alice", "example.org" },
        { "\"Alice A.\" <sip:alice@example.org>;tag=1", "alice", "example.org" },
        { "<sip:%61lice@example.org>", "alice", "example.org" },
        { "sip:Alice@example.org", "Alice", "example.org" }, /* user is case-sensitive */
        { "sip:alice:secret@example.org", "alice", "example.org" },
        { "sip:alice@[2001:db8::1]:5060", "alice", "[2001:db8::1]" },
        { "sip:+1-555@example.org;user=phone", "+1-555", "example.org" },
        { "sip:alice@example.org;tag=x", "alice", "example.org" },
        { "tel:+1-201-555-0123;phone-context=Example.COM", "+12015550123", "example.com" },
        { "tel:+1(201)5550123", "+12015550123", "fallback.org" },
        /* the addr-spec is in the first '<' outside a quoted display name */
        { "\"<sip:bob@example.org>\" <sip:mallory@example.org>", "mallory", "example.org" },
        { "\"a \\\"<sip:bob@x>\\\" b\" <sip:mallory@example.org>;tag=1", "mallory", "example.org" },
        { "\"x\\\\\" <sip:mallory@example.org>", "mallory", "example.org" },
        { "\"\\<\" <sip:mallory@example.org>", "mallory", "example.org" },
        { "Bob <sip:mallory@example.org>;x=\"<sip:bob@x>\"", "mallory", "example.org" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        char *u = NULL, *d = NULL;
        int rc = msilo_aor_parse(ok[i].in, "fallback.org", &u, &d);
        if (rc)
            fail_msg("%s: %s", ok[i].in, msilo_error_detail());
        assert_string_equal(u, ok[i].user);
        assert_string_equal(d, ok[i].domain);
        g_free(u);
        g_free(d);
    }
    static const char *const bad[] = {
        "", "alice@example.org", "mailto:alice@example.org", "sip:example.org", "sip:@example.org",
        "sip:alice@", "sip:alice@exa mple.org", "<sip:alice@example.org", "sip:al%ZZce@example.org",
        "sip:al%00ce@example.org", "sip:al%0d%0ace@example.org", "sip:alice@example.org:99999",
        "sip:alice@example.org:12x", "sip:alice@example.org\r\nX: y", "tel:", "tel:abc",
        "sip:alice@ex@mple.org", "sip:%ff%fe@example.org",
        "\"<sip:bob@example.org>", "\"<sip:bob@example.org>\\\"", "\"a\x01\" <sip:m@example.org>",
        "\"a\\\x01\" <sip:m@example.org>", "\"Bob\" sip:bob@example.org",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *u = NULL, *d = NULL;
        int rc = msilo_aor_parse(bad[i], NULL, &u, &d);
        if (rc == 0)
            fail_msg("'%s' parsed as %s@%s", bad[i], u, d);
        assert_int_equal(rc, MSILO_EURI);
        assert_null(u);
    }
    char *u, *d;
    assert_int_equal(msilo_aor_parse("tel:+123", NULL, &u, &d), MSILO_EURI);
    char huge[9000];
    memset(huge, 'a', sizeof(huge));
    memcpy(huge, "sip:", 4);
    strcpy(huge + sizeof(huge) - 14, "@example.org");
    assert_int_equal(msilo_aor_parse(huge, NULL, &u, &d), MSILO_EURI);
    assert_int_equal(msilo_aor_parse(NULL, NULL, &u, &d), MSILO_EINVAL);
}

static void test_time_parse(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    int64_t t = 0;
    assert_int_equal(msilo_time_parse("20060101201500", &t), 0);
    assert_int_equal(t, 1136146500);
    static const char *const bad[] = { "", "2006010120150", "200601012015000", "2006010120150x",
                                       "20061301201500", "20060230201500", "20060101241500",
                                       "19690101000000", "2006-01-01 20:1", "abcdefghijklmn" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
        assert_int_equal(msilo_time_parse(bad[i], &t), MSILO_ETIME);
    assert_int_equal(msilo_time_parse("20240229000000", &t), 0); /* leap day */
    assert_int_equal(msilo_time_parse("20230229000000", &t), MSILO_ETIME);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(msilo_error_name(MSILO_EFULL), "MSILO_EFULL");
    assert_string_equal(msilo_strerror(MSILO_EFULL), "mailbox full");
    assert_string_equal(msilo_strerror(-999), "unknown error");
    assert_null(msilo_error_name(-999));
    assert_int_equal(msilo_error_sip_status(0), 202);
    assert_int_equal(msilo_error_sip_status(MSILO_ESTORE), 503);
    assert_int_equal(msilo_error_sip_status(MSILO_EFULL), 486);
    assert_int_equal(msilo_error_sip_status(MSILO_ETOOBIG), 413);
    assert_int_equal(msilo_error_sip_status(MSILO_EURI), 400);
    assert_string_equal(msilo_stat_name(MSILO_STAT_DUMPED_REMINDERS), "dumped_reminders");
    assert_null(msilo_stat_name(MSILO_STAT_COUNT_));
    assert_non_null(msilo_version());
}

/* ---- m_store ------------------------------------------------------------- */

static void test_store_owner_from_ruri(void **state)
{
    fixture *f = *state;
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alias@example.org", "hi");
    store_ok(f, &r, NULL);
    assert_int_equal(count(f, "alice", "example.org"), 1);
    assert_int_equal(count(f, "alias", "example.org"), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_STORED_MESSAGES), 1);
}

static void test_store_owner_from_to_when_ruri_not_aor(void **state)
{
    fixture *f = *state;
    start(f);
    /* R-URI rewritten to a contact without user (the failure_route case) */
    msilo_request_t r = message("sip:192.0.2.9:5070", "<sip:carol@example.org>;tag=9", "x");
    store_ok(f, &r, NULL);
    assert_int_equal(count(f, "carol", "example.org"), 1);
    r.ruri = "tel:+15550100";
    store_ok(f, &r, NULL);
    assert_int_equal(count(f, "carol", "example.org"), 2);
    r.ruri = NULL;
    store_ok(f, &r, NULL);
    assert_int_equal(count(f, "carol", "example.org"), 3);
}

/* msilo_request_copy(): the copy owns everything it points to (the
 * original's buffers can go), and the engine stores it like the original. */
static void test_request_copy(void **state)
{
    fixture *f = *state;
    start(f);
    char *ruri = g_strdup("sip:carol@example.org"), *to = g_strdup("<sip:carol@example.org>");
    char *body = g_memdup2("a\0b", 3);
    msilo_header_t hdrs[2] = { { "X-One", "1" }, { "X-Two", "" } };
    msilo_request_t r = message(ruri, to, NULL);
    r.body = body;
    r.body_len = 3;
    r.headers = hdrs;
    r.n_headers = 2;
    r.snd_time = NULL;
    msilo_request_t *c = NULL;
    assert_int_equal(msilo_request_copy(&r, &c), 0);
    memset(ruri, 'x', strlen(ruri));
    memset(to, 'x', strlen(to));
    memset(body, 'x', 3);
    hdrs[0].name = hdrs[1].name = "X-Gone";
    g_free(ruri);
    g_free(to);
    g_free(body);
    assert_string_equal(c->ruri, "sip:carol@example.org");
    assert_string_equal(c->to, "<sip:carol@example.org>");
    assert_int_equal(c->body_len, 3);
    assert_memory_equal(c->body, "a\0b", 3);
    assert_int_equal(c->n_headers, 2);
    assert_string_equal(c->headers[0].name, "X-One");
    assert_string_equal(c->headers[1].name, "X-Two");
    assert_string_equal(c->headers[1].value, "");
    assert_null(c->orig_ruri);
    store_ok(f, c, NULL);
    assert_int_equal(count(f, "carol", "example.org"), 1);
    msilo_request_free(c);
    msilo_request_free(NULL);
    /* refused: no view, an unknown version, a count without its array */
    assert_int_equal(msilo_request_copy(NULL, &c), MSILO_EINVAL);
    msilo_request_t bad = message("sip:a@b", "sip:a@b", "x");
    bad.version = 99;
    assert_int_equal(msilo_request_copy(&bad, &c), MSILO_EVERSION);
    bad = message("sip:a@b", "sip:a@b", "x");
    bad.n_headers = 1;
    assert_int_equal(msilo_request_copy(&bad, &c), MSILO_EINVAL);
}

static void test_store_owner_argument(void **state)
{
    fixture *f = *state;
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_ok(f, &r, "sip:Dave@EXAMPLE.net");
    assert_int_equal(count(f, "Dave", "example.net"), 1);
    assert_int_equal(count(f, "alice", "example.org"), 0);
    /* tel: owner needs a domain: phone-context, or default_domain */
    int64_t id;
    assert_int_equal(msilo_engine_store_sync(f->e, &r, "tel:+15550100", &id), MSILO_EURI);
    /* the detail names the owner (it once read a freed URI: "(null)") */
    assert_non_null(strstr(msilo_error_detail(), "owner 'tel:+15550100'"));
    store_ok(f, &r, "tel:+1-555-0100;phone-context=example.com");
    assert_int_equal(count(f, "+15550100", "example.com"), 1);
}

static void test_store_user_unescaped_host_caseless(void **state)
{
    fixture *f = *state;
    start(f);
    msilo_request_t r = message("sip:%61lice@EXAMPLE.org", "sip:alice@example.org", "x");
    store_ok(f, &r, NULL);
    assert_int_equal(count(f, "alice", "example.org"), 1);
    /* dump with the plain form finds it */
    f->tr->auto_status = 200;
    dump_rec d = { 0 };
    dump(f, "sip:alice@Example.ORG", "sip:alice@192.0.2.1:5090", &d);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.res.delivered, 1);
    assert_int_equal(count(f, "alice", "example.org"), 0);
}

static void test_store_expiry_time(void **state)
{
    fixture *f = *state;
    set(f, "expire_time", "3600");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    int64_t id1 = store_ok(f, &r, NULL);
    r.expires = 60; /* Expires header shorter than expire_time wins */
    int64_t id2 = store_ok(f, &r, NULL);
    r.expires = 99999; /* longer: expire_time wins */
    int64_t id3 = store_ok(f, &r, NULL);
    msilo_message_t *m;
    assert_int_equal(msilo_store_get(f->store, id1, &m), 0);
    assert_int_equal(m->inc_time, T0);
    assert_int_equal(m->exp_time, T0 + 3600);
    assert_string_equal(m->src, "sip:bob@example.org");
    assert_string_equal(m->dst, "sip:alice@example.org");
    assert_string_equal(m->callid, "cid-1@example.org");
    assert_int_equal(m->snd_time, 0);
    msilo_message_free(m);
    assert_int_equal(msilo_store_get(f->store, id2, &m), 0);
    assert_int_equal(m->exp_time, T0 + 60);
    msilo_message_free(m);
    assert_int_equal(msilo_store_get(f->store, id3, &m), 0);
    assert_int_equal(m->exp_time, T0 + 3600);
    msilo_message_free(m);
}

static void test_expiry_cleaning(void **state)
{
    fixture *f = *state;
    set(f, "expire_time", "100");
    set(f, "check_time", "10");
    set(f, "clean_period", "3"); /* every 30 s */
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_ok(f, &r, NULL);
    msilo_engine_tick(f->e); /* first clean at start */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_QUEUED), 1);
    f->clock.now = T0 + 100; /* expired, but the next clean is at T0+30, T0+60, ... */
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(count(f, "alice", "example.org"), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_EXPIRED_MESSAGES), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_QUEUED), 0);
    /* not cleaned before its period */
    store_ok(f, &r, NULL); /* exp T0+200 */
    f->clock.now = T0 + 201;
    msilo_engine_tick(f->e); /* next clean due at T0+130 -> runs now */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(count(f, "alice", "example.org"), 0);
    store_ok(f, &r, NULL); /* exp T0+301 */
    f->clock.now = T0 + 302; /* next clean due at T0+231: runs */
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    store_ok(f, &r, NULL); /* exp T0+402 */
    f->clock.now = T0 + 403; /* next clean due at T0+332? no: 302+30 = 332 -> runs */
    f->clock.now = T0 + 320; /* before 332: must not run */
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(count(f, "alice", "example.org"), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_EXPIRED_MESSAGES), 3);
}

static void test_max_messages(void **state)
{
    fixture *f = *state;
    set(f, "max_messages", "2");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_ok(f, &r, NULL);
    store_ok(f, &r, NULL);
    int64_t id = 77;
    assert_int_equal(msilo_engine_store_sync(f->e, &r, NULL, &id), MSILO_EFULL);
    assert_int_equal(id, 77); /* untouched on failure */
    assert_int_equal(count(f, "alice", "example.org"), 2);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_REJECTED_FULL), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_STORED_MESSAGES), 2);
    /* other owners are not affected */
    r.ruri = "sip:bob2@example.org";
    store_ok(f, &r, NULL);
}

typedef struct {
    int calls, rc;
    int64_t id;
} store_rec;

static void store_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    store_rec *s = data;
    s->calls++;
    s->rc = rc;
    s->id = id;
}

static void test_store_bad_input(void **state)
{
    fixture *f = *state;
    start(f);
    msilo_request_t good = message("sip:alice@example.org", "sip:alice@example.org", "hello");
    store_rec rec = { 0 };
    struct {
        const char *what;
        msilo_request_t r;
        const char *owner;
        int rc;
    } cases[16];
    size_t n = 0;
#define CASE(w, field, val, own, code)                                                         \
    do {                                                                                       \
        cases[n].what = w;                                                                     \
        cases[n].r = good;                                                                     \
        cases[n].r.field = val;                                                                \
        cases[n].owner = own;                                                                  \
        cases[n].rc = code;                                                                    \
        n++;                                                                                   \
    } while (0)
    CASE("no From", from, NULL, NULL, MSILO_EMISSING);
    CASE("empty To", to, "", NULL, MSILO_EMISSING);
    CASE("To not SIP", to, "mailto:alice@example.org", NULL, MSILO_EURI);
    CASE("From garbage", from, "<<>>", NULL, MSILO_EURI);
    CASE("To no user, R-URI no user", to, "sip:example.org", NULL, MSILO_EURI);
    CASE("owner not a URI", method, "MESSAGE", "alice", MSILO_EURI);
    CASE("owner without user", method, "MESSAGE", "sip:example.org", MSILO_EURI);
    CASE("INVITE", method, "INVITE", NULL, MSILO_EMETHOD);
    CASE("bad reminder time", snd_time, "tomorrow", NULL, MSILO_ETIME);
    CASE("reminders disabled", snd_time, "20300101000000", NULL, MSILO_ENOTSUP);
    CASE("Content-Type injection", content_type, "text/plain\r\nX-Evil: 1", NULL, MSILO_EINVAL);
    CASE("Call-ID injection", call_id, "a\r\nb", NULL, MSILO_EINVAL);
    CASE("Content-Type not UTF-8", content_type, "text/plain; x=\xff", NULL, MSILO_EINVAL);
    CASE("body pointer missing", body, NULL, NULL, MSILO_EINVAL);
    cases[4].r.ruri = "sip:example.org";
    for (size_t i = 0; i < n; i++) {
        int rc = msilo_engine_store(f->e, &cases[i].r, cases[i].owner, store_cb, &rec);
        if (rc != cases[i].rc)
            fail_msg("%s: got %s, want %s", cases[i].what, msilo_error_name(rc),
                     msilo_error_name(cases[i].rc));
        assert_true(*msilo_error_detail() != '\0');
    }
    /* a header that would inject a line */
    msilo_header_t h = { "P-Asserted-Identity", "<sip:x@y>\r\nVia: evil" };
    msilo_request_t r = good;
    r.headers = &h;
    r.n_headers = 1;
    assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, &rec), MSILO_EINVAL);
    assert_int_equal(msilo_engine_store(NULL, &good, NULL, store_cb, &rec), MSILO_EINVAL);
    assert_int_equal(msilo_engine_store(f->e, NULL, NULL, store_cb, &rec), MSILO_EINVAL);
    r = good;
    r.version = 99;
    assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, &rec), MSILO_EVERSION);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(rec.calls, 0); /* an error return never calls back */
    assert_int_equal(count(f, NULL, NULL), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_STORED_MESSAGES), 0);
}

static void test_store_body_limit(void **state)
{
    fixture *f = *state;
    set(f, "max_body_size", "10");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "0123456789");
    store_ok(f, &r, NULL); /* exactly the limit */
    r.body = "0123456789A";
    r.body_len = 11;
    store_rec rec = { 0 };
    assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, &rec), MSILO_ETOOBIG);
    assert_int_equal(count(f, NULL, NULL), 1);
}

static void test_store_binary_body_and_ctype(void **state)
{
    fixture *f = *state;
    f->tr->auto_status = 200;
    start(f);
    static const char bin[] = { 'a', 0, (char)0xff, (char)0xfe, 'z', 0 };
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", NULL);
    r.body = bin;
    r.body_len = sizeof(bin);
    r.content_type = "application/vnd.gsma.rcs-ft-http+xml; charset=UTF-8";
    store_ok(f, &r, NULL);
    dump_rec d = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d);
    fake_sent_t *s = sent(f, 0);
    gsize n;
    const void *data = g_bytes_get_data(s->body, &n);
    assert_int_equal(n, sizeof(bin)); /* no date prefix: not text/plain */
    assert_memory_equal(data, bin, sizeof(bin));
    assert_string_equal(s->content_type, "application/vnd.gsma.rcs-ft-http+xml; charset=UTF-8");
}

static void test_store_async_contract(void **state)
{
    fixture *f = *state;
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_rec rec = { 0 };
    assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, &rec), 0);
    assert_int_equal(rec.calls, 0); /* not from inside the call */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.rc, 0);
    assert_true(rec.id > 0);
}

/* ---- m_dump -------------------------------------------------------------- */

static void store_n(fixture *f, const char *aor, int n)
{
    for (int i = 0; i < n; i++) {
        char *b = g_strdup_printf("msg %d", i);
        msilo_request_t r = message(aor, aor, b);
        store_ok(f, &r, NULL);
        g_free(b);
    }
}

static void test_dump_delivers_in_order_and_deletes(void **state)
{
    fixture *f = *state;
    setenv("TZ", "UTC", 1);
    tzset();
    start(f);
    store_n(f, "sip:alice@example.org", 3);
    f->clock.now = T0 + 50;
    dump_rec d = { 0 };
    dump(f, "<sip:alice@example.org>", "<sip:alice@192.0.2.1:5090;transport=tcp>", &d);
    assert_int_equal(f->tr->sent->len, 3);
    for (guint i = 0; i < 3; i++) {
        fake_sent_t *s = sent(f, i);
        assert_string_equal(s->ruri, "sip:alice@192.0.2.1:5090;transport=tcp"); /* the contact */
        assert_string_equal(s->to, "sip:alice@example.org");
        assert_string_equal(s->from, "\"Bob\" <sip:bob@example.org>"); /* display name kept */
        assert_null(s->next_hop);
        assert_string_equal(s->content_type, "text/plain");
        char *b = body_of(s);
        char *want = g_strdup_printf("[Offline message - Fri Jan 15 08:00:00 2027 +0000] msg %u", i);
        assert_string_equal(b, want);
        g_free(b);
        g_free(want);
        char *date = fake_sent_header(s, "Date");
        assert_string_equal(date, "Fri, 15 Jan 2027 08:00:00 GMT");
        g_free(date);
        char *mid = fake_sent_header(s, "X-Msilo-Id");
        assert_non_null(mid);
        g_free(mid);
        assert_null(s->call_id);
    }
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_IN_FLIGHT), 3);
    assert_int_equal(d.calls, 0); /* waits for the final answers */
    assert_int_equal(fake_transport_answer_all(f->tr, 200), 3);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    /* deleted at once, no cleanup tick needed */
    assert_int_equal(count(f, "alice", "example.org"), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.res.claimed, 3);
    assert_int_equal(d.res.delivered, 3);
    assert_int_equal(d.res.failed, 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 3);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_REMINDERS), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_IN_FLIGHT), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DELIVERIES_TIMED), 3);
}

static void test_dump_window_and_batches(void **state)
{
    fixture *f = *state;
    set(f, "dump_window", "2");
    set(f, "dump_batch", "3");
    start(f);
    store_n(f, "sip:alice@example.org", 7);
    dump_rec d = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d);
    assert_int_equal(f->tr->sent->len, 2); /* window */
    for (int round = 0; round < 10 && f->tr->answered < 7; round++) {
        fake_transport_answer_all(f->tr, 200);
        assert_true(run_until_idle(f->e, f->ctx, TRUE));
        assert_true(f->tr->sent->len - f->tr->answered <= 2);
    }
    assert_int_equal(f->tr->sent->len, 7);
    for (guint i = 0; i < 7; i++) { /* storage order */
        char *b = body_of(sent(f, i));
        char *want = g_strdup_printf("msg %u", i);
        assert_non_null(strstr(b, want));
        g_free(b);
        g_free(want);
    }
    assert_int_equal(d.res.delivered, 7);
    assert_int_equal(count(f, NULL, NULL), 0);
}

static void test_max_in_flight_shared_by_owners(void **state)
{
    fixture *f = *state;
    set(f, "max_in_flight", "2");
    start(f);
    static const char *const aors[] = { "sip:a@example.org", "sip:b@example.org",
                                        "sip:c@example.org" };
    for (int i = 0; i < 3; i++)
        store_n(f, aors[i], 3);
    dump_rec d[3] = { { 0 } };
    for (int i = 0; i < 3; i++)
        dump(f, aors[i], "sip:x@192.0.2.1", &d[i]);
    assert_int_equal(f->tr->sent->len, 2); /* the global cap, not 3 x dump_window */
    for (int round = 0; round < 20 && f->tr->answered < 9; round++) {
        assert_true(f->tr->sent->len - f->tr->answered <= 2);
        fake_transport_answer_all(f->tr, 200);
        assert_true(run_until_idle(f->e, f->ctx, TRUE));
    }
    assert_int_equal(f->tr->sent->len, 9);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].res.delivered, 3);
    }
    assert_int_equal(count(f, NULL, NULL), 0);
}

static void test_dump_max(void **state)
{
    fixture *f = *state;
    f->tr->auto_status = 200;
    start(f);
    store_n(f, "sip:alice@example.org", 5);
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 2, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 2);
    assert_int_equal(count(f, "alice", "example.org"), 3);
}

static void test_dump_owner_argument(void **state)
{
    fixture *f = *state;
    f->tr->auto_status = 200;
    start(f);
    store_n(f, "sip:team@example.org", 2);
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(
        msilo_engine_dump_sync(f->e, &reg, "sip:team@example.org", 0, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 2);
    assert_int_equal(count(f, "team", "example.org"), 0);
}

static void test_dump_skipped(void **state)
{
    fixture *f = *state;
    f->tr->auto_status = 200;
    start(f);
    store_n(f, "sip:alice@example.org", 1);
    msilo_request_t regs[5];
    regs[0] = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 0); /* unregister */
    regs[1] = register_req("sip:alice@example.org", "*", 0);
    regs[2] = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    regs[2].allow = "INVITE, ACK, BYE";
    regs[3] = register_req("sip:alice@example.org",
                           "<sip:alice@192.0.2.1>;methods=\"INVITE,BYE\"", 60);
    regs[4] = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    regs[4].allow = "INVITE, MESSAGE";
    for (int i = 0; i < 4; i++) {
        msilo_dump_result_t res = { 9, 9, 9 };
        assert_int_equal(msilo_engine_dump_sync(f->e, &regs[i], NULL, 0, &res, sizeof res), 0);
        assert_int_equal(res.claimed, 0);
        assert_int_equal(f->tr->sent->len, 0);
    }
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->e, &regs[4], NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 1);
    /* bad REGISTER views */
    msilo_request_t bad = register_req(NULL, "sip:a@b", 60);
    assert_int_equal(msilo_engine_dump_sync(f->e, &bad, NULL, 0, &res, sizeof res), MSILO_EMISSING);
    bad = register_req("sip:example.org", "sip:a@b", 60);
    assert_int_equal(msilo_engine_dump_sync(f->e, &bad, NULL, 0, &res, sizeof res), MSILO_EURI);
    bad = register_req("sip:alice@example.org", "garbage", 60);
    assert_int_equal(msilo_engine_dump_sync(f->e, &bad, NULL, 0, &res, sizeof res), MSILO_EURI);
}

static void test_dump_failure_does_not_block_and_retries(void **state)
{
    fixture *f = *state;
    set(f, "check_time", "10");
    set(f, "max_attempts", "3");
    start(f);
    store_n(f, "sip:alice@example.org", 3);
    dump_rec d = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d);
    assert_int_equal(f->tr->sent->len, 3);
    fake_transport_answer(f->tr, 0, 500); /* the "poison" message */
    fake_transport_answer(f->tr, 1, 200);
    fake_transport_answer(f->tr, 2, 200);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(d.res.delivered, 2);
    assert_int_equal(d.res.failed, 1);
    assert_int_equal(count(f, "alice", "example.org"), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 2);
    /* retry after check_time (backoff 10 s), while registered */
    f->clock.now = T0 + 5;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 3);
    f->clock.now = T0 + 11;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 4);
    fake_transport_answer(f->tr, 3, 503);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    /* second backoff: 20 s */
    f->clock.now = T0 + 25;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 4);
    f->clock.now = T0 + 60;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 5);
    fake_transport_answer(f->tr, 4, MSILO_ETIMEDOUT); /* third failure = max_attempts */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    msilo_message_t **all;
    size_t n;
    assert_int_equal(msilo_store_list(f->store, NULL, NULL, 0, 10, &all, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(all[0]->attempts, 3);
    assert_int_equal(all[0]->next_try, INT64_MAX);
    msilo_message_array_free(all, n);
    /* no more timer retries: it waits for the next registration */
    f->clock.now = T0 + 5000;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 5);
    dump_rec d2 = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d2);
    assert_int_equal(f->tr->sent->len, 6);
    fake_transport_answer(f->tr, 5, 200);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(count(f, NULL, NULL), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 3);
}

static void test_dump_transport_refuses(void **state)
{
    fixture *f = *state;
    start(f);
    store_n(f, "sip:alice@example.org", 2);
    f->tr->refuse = MSILO_ETRANSPORT;
    dump_rec d = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.res.claimed, 2);
    assert_int_equal(d.res.failed, 2);
    assert_int_equal(count(f, "alice", "example.org"), 2); /* nothing lost */
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_IN_FLIGHT), 0);
    /* leases were released: a new registration can deliver at once */
    f->tr->refuse = 0;
    f->tr->auto_status = 200;
    dump_rec d2 = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d2);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(d2.res.delivered, 2);
}

/* Refused sends on the last allowed attempt: the round ends inside the
 * send loop and the owner is forgotten; nothing may touch it afterwards
 * (ASan run). */
static void test_dump_refused_last_attempt(void **state)
{
    fixture *f = *state;
    set(f, "max_attempts", "1");
    start(f);
    store_n(f, "sip:alice@example.org", 3);
    f->tr->refuse = MSILO_ETRANSPORT;
    dump_rec d = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.res.failed, 3);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    msilo_message_t **all;
    size_t n;
    assert_int_equal(msilo_store_list(f->store, NULL, NULL, 0, 10, &all, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(all[i]->next_try, INT64_MAX); /* waits for the next REGISTER */
    msilo_message_array_free(all, n);
}

static void test_dump_concurrent_same_owner(void **state)
{
    fixture *f = *state;
    start(f);
    store_n(f, "sip:alice@example.org", 4);
    dump_rec d1 = { 0 }, d2 = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d1);
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.2", &d2);
    assert_int_equal(f->tr->sent->len, 4);
    fake_transport_answer_all(f->tr, 200);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(f->tr->sent->len, 4); /* nothing twice */
    assert_int_equal(d1.calls, 1);
    assert_int_equal(d2.calls, 1);
    assert_int_equal(count(f, NULL, NULL), 0);
}

static void test_two_engines_one_store(void **state)
{
    fixture *f = *state;
    start(f);
    fake_transport_t *tr2 = fake_transport_new(f->ctx);
    msilo_engine_t *e2;
    assert_int_equal(msilo_engine_new(&e2, f->cfg, f->store, &tr2->base, f->ctx), 0);
    msilo_engine_set_clock(e2, fake_clock_read, &f->clock);
    store_n(f, "sip:alice@example.org", 5);
    dump_rec d1 = { 0 }, d2 = { 0 };
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, &d1), 0);
    assert_int_equal(msilo_engine_dump(e2, &reg, NULL, 0, dump_cb, &d2), 0);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_true(run_until_idle(e2, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len + tr2->sent->len, 5); /* leases: each once */
    fake_transport_answer_all(f->tr, 200);
    fake_transport_answer_all(tr2, 200);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_true(run_until_idle(e2, f->ctx, FALSE));
    assert_int_equal(count(f, NULL, NULL), 0);
    msilo_engine_free(e2);
    msilo_transport_free(&tr2->base);
}

static void test_lease_expiry_and_instance_restart(void **state)
{
    fixture *f = *state;
    set(f, "lease_time", "60");
    set(f, "instance_id", "node-a");
    start(f);
    store_n(f, "sip:alice@example.org", 2);
    dump_rec d = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d);
    assert_int_equal(f->tr->sent->len, 2);
    /* "crash": the engine goes away with both in flight */
    msilo_engine_free(f->e);
    f->e = NULL;
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, MSILO_ECANCELLED);
    assert_int_equal(count(f, NULL, NULL), 2); /* not lost */
    /* another instance must wait for the lease */
    msilo_config_t *other;
    assert_int_equal(msilo_config_copy(f->cfg, &other), 0);
    assert_int_equal(msilo_config_set(other, "instance_id", "node-b"), 0);
    fake_transport_t *tr2 = fake_transport_new(f->ctx);
    tr2->auto_status = 200;
    msilo_engine_t *e2;
    assert_int_equal(msilo_engine_new(&e2, other, f->store, &tr2->base, f->ctx), 0);
    msilo_engine_set_clock(e2, fake_clock_read, &f->clock);
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(e2, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.claimed, 0);
    f->clock.now = T0 + 61; /* lease over */
    assert_int_equal(msilo_engine_dump_sync(e2, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 2);
    msilo_engine_free(e2);
    msilo_transport_free(&tr2->base);
    msilo_config_free(other);
    /* the same instance restarting takes its leases back at once */
    f->clock.now = T0 + 100;
    start(f);
    store_n(f, "sip:alice@example.org", 1);
    dump_rec d3 = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d3);
    msilo_engine_free(f->e);
    f->e = NULL;
    start(f); /* node-a again */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    f->tr->auto_status = 200;
    dump_rec d4 = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d4);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(d4.res.delivered, 1);
    assert_int_equal(count(f, NULL, NULL), 0);
}

static void test_outbound_proxy_and_extra_headers(void **state)
{
    fixture *f = *state;
    set(f, "outbound_proxy", "sip:127.0.0.1:5070;transport=udp");
    set(f, "extra_hdrs", "X-Delivered-By: msilo");
    set(f, "add_date", "0");
    set(f, "use_callid", "1");
    f->tr->auto_status = 200;
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "plain");
    msilo_header_t hs[] = { { "P-Asserted-Identity", "<sip:bob@example.org>" },
                            { "Privacy", "none" } };
    r.headers = hs;
    r.n_headers = 2;
    store_ok(f, &r, NULL);
    msilo_request_t reg = register_req("sip:alice@example.org", NULL, 60); /* no contact: AoR */
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 0, &res, sizeof res), 0);
    fake_sent_t *s = sent(f, 0);
    assert_string_equal(s->ruri, "sip:alice@example.org");
    assert_string_equal(s->next_hop, "sip:127.0.0.1:5070;transport=udp");
    char *v = fake_sent_header(s, "X-Delivered-By");
    assert_string_equal(v, "msilo");
    g_free(v);
    v = fake_sent_header(s, "P-Asserted-Identity");
    assert_string_equal(v, "<sip:bob@example.org>");
    g_free(v);
    v = fake_sent_header(s, "Privacy");
    assert_string_equal(v, "none");
    g_free(v);
    char *b = body_of(s);
    assert_string_equal(b, "plain"); /* add_date = 0 */
    g_free(b);
    assert_string_equal(s->call_id, "cid-1@example.org"); /* use_callid */
}

static void test_add_date_only_text_plain(void **state)
{
    fixture *f = *state;
    f->tr->auto_status = 200;
    start(f);
    static const struct { const char *ct; gboolean prefixed; } cases[] = {
        { NULL, TRUE },
        { "text/plain", TRUE },
        { "TEXT/PLAIN;charset=UTF-8", TRUE },
        { "message/cpim", FALSE },
        { "text/plainish", FALSE },
        { "text/html", FALSE },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "body");
        r.content_type = cases[i].ct;
        store_ok(f, &r, NULL);
    }
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(f->tr->sent->len, G_N_ELEMENTS(cases));
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *b = body_of(sent(f, (guint)i));
        assert_int_equal(g_str_has_prefix(b, "[Offline message - "), cases[i].prefixed);
        assert_true(g_str_has_suffix(b, "body"));
        if (cases[i].ct)
            assert_string_equal(sent(f, (guint)i)->content_type, cases[i].ct);
        g_free(b);
    }
}

/* ---- notification -------------------------------------------------------- */

static void notif_config(fixture *f)
{
    set(f, "from_address", "sip:registrar@example.org");
    set(f, "contact_hdr", "Contact: <sip:null@example.com>\r\n");
    set(f, "content_type_hdr", "Content-Type: text/plain\r\n");
    set(f, "offline_message", "*** User $rU is offline! ($tu, from $fU@$fd, $ci)");
}

static void test_notification_to_contact(void **state)
{
    fixture *f = *state;
    notif_config(f);
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_ok(f, &r, NULL);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 1);
    fake_sent_t *s = sent(f, 0);
    assert_string_equal(s->ruri, "sip:bob@192.0.2.7:5062"); /* use_contact = 1 */
    assert_string_equal(s->from, "sip:registrar@example.org");
    assert_string_equal(s->to, "sip:bob@example.org");
    assert_string_equal(s->content_type, "text/plain");
    char *v = fake_sent_header(s, "Contact");
    assert_string_equal(v, "<sip:null@example.com>");
    g_free(v);
    char *b = body_of(s);
    assert_string_equal(b, "*** User alice is offline! (sip:alice@example.org, from "
                           "bob@example.org, cid-1@example.org)");
    g_free(b);
    fake_transport_answer(f->tr, 0, 200);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_NOTIFICATIONS_SENT), 1);
    /* a notification is not a stored message */
    assert_int_equal(count(f, "bob", "example.org"), 0);
}

static void test_notification_use_contact_off_and_skip(void **state)
{
    fixture *f = *state;
    notif_config(f);
    set(f, "use_contact", "0");
    set(f, "from_address", "sip:$rU@example.org");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_ok(f, &r, NULL);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 1);
    assert_string_equal(sent(f, 0)->ruri, "sip:bob@example.org");
    assert_string_equal(sent(f, 0)->from, "sip:alice@example.org");
    r.flags = MSILO_REQUEST_SKIP_NOTIFICATION;
    store_ok(f, &r, NULL);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 1);
    fake_transport_answer(f->tr, 0, 404);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_NOTIFICATIONS_FAILED), 1);
}

static void test_no_notification_without_from_address(void **state)
{
    fixture *f = *state;
    set(f, "offline_message", "offline");
    set(f, "content_type_hdr", "Content-Type: text/plain\r\n");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_ok(f, &r, NULL);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 0);
}

/* ---- reminders ----------------------------------------------------------- */

static void test_reminder_sent_when_due(void **state)
{
    fixture *f = *state;
    setenv("TZ", "UTC", 1);
    tzset();
    set(f, "reminder", "sip:registrar@example.org");
    set(f, "send_time", "60");
    set(f, "snd_time_avp", "$avp(snd_time)");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "wake up");
    r.snd_time = "20270115081000"; /* T0 + 600 */
    int64_t id = store_ok(f, &r, NULL);
    msilo_message_t *m;
    assert_int_equal(msilo_store_get(f->store, id, &m), 0);
    assert_int_equal(m->snd_time, T0 + 600);
    msilo_message_free(m);
    /* a registration does not deliver a pending reminder */
    f->tr->auto_status = 200;
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.claimed, 0);
    f->tr->auto_status = 0;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 0);
    f->clock.now = T0 + 600;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 1);
    fake_sent_t *s = sent(f, 0);
    assert_string_equal(s->ruri, "sip:alice@example.org");
    assert_string_equal(s->from, "sip:registrar@example.org");
    char *b = body_of(s);
    assert_string_equal(b, "[Reminder message - Fri Jan 15 08:00:00 2027 +0000] wake up");
    g_free(b);
    fake_transport_answer(f->tr, 0, 200);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(count(f, NULL, NULL), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_REMINDERS), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 0);
}

static void test_reminder_failure_becomes_offline_message(void **state)
{
    fixture *f = *state;
    set(f, "reminder", "sip:registrar@example.org");
    set(f, "send_time", "60");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    r.snd_time = "20000101000000"; /* in the past: due now */
    store_ok(f, &r, NULL);
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 1);
    fake_transport_answer(f->tr, 0, 480);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_REMINDERS), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 0);
    assert_int_equal(count(f, NULL, NULL), 1);
    /* not sent as a reminder again */
    f->clock.now = T0 + 120;
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 1);
    /* but delivered at the next registration */
    f->tr->auto_status = 200;
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 1);
}

static void test_reminders_disabled_by_send_time_zero(void **state)
{
    fixture *f = *state;
    set(f, "reminder", "sip:registrar@example.org"); /* send_time stays 0 */
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    r.snd_time = "20000101000000";
    store_rec rec = { 0 };
    assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, &rec), MSILO_ENOTSUP);
}

/* ---- threads, blocking store, life cycle ----------------------------------- */

/* The memory store declared blocking, counting put batches: exercises the
 * worker thread and proves that concurrent stores become one batch. */
typedef struct {
    msilo_store_t base;
    msilo_store_t *inner;
    int puts;
    size_t max_batch;
    int fail_put, fail_remove; /* simulate a database that went away */
    int poison;                /* fail any batch holding a body "poison" (a row the
                                  table refuses, e.g. a too long username) */
} counting_store;

static int cs_put(msilo_store_t *s, msilo_message_t *const *m, size_t n, int64_t max, int *res)
{
    counting_store *c = (counting_store *)s;
    if (c->fail_put)
        return MSILO_ESTORE;
    for (size_t i = 0; c->poison && i < n; i++)
        if (m[i]->body_len == 6 && memcmp(m[i]->body, "poison", 6) == 0)
            return MSILO_ESTORE;
    c->puts++;
    c->max_batch = MAX(c->max_batch, n);
    return c->inner->put(c->inner, m, n, max, res);
}
#define FWD(name, sig, args)                                                                   \
    static int cs_##name sig                                                                   \
    {                                                                                          \
        counting_store *c = (counting_store *)s;                                               \
        return c->inner->name args;                                                            \
    }
FWD(claim, (msilo_store_t * s, const msilo_store_claim_t *cl, msilo_message_t ***r, size_t *n),
    (c->inner, cl, r, n))
static int cs_remove(msilo_store_t *s, const int64_t *ids, size_t n, size_t *d)
{
    counting_store *c = (counting_store *)s;
    if (c->fail_remove)
        return MSILO_ESTORE;
    return c->inner->remove(c->inner, ids, n, d);
}
FWD(release, (msilo_store_t * s, const msilo_store_release_t *it, size_t n, size_t sz),
    (c->inner, it, n, sz))
FWD(count, (msilo_store_t * s, const char *u, const char *d, int64_t *r), (c->inner, u, d, r))
FWD(expire, (msilo_store_t * s, int64_t now, size_t *d), (c->inner, now, d))
static void cs_free(msilo_store_t *s)
{
    (void)s;
}

static void counting_init(counting_store *cs, msilo_store_t *inner, unsigned flags)
{
    *cs = (counting_store){ .base = MSILO_STORE_INIT, .inner = inner };
    cs->base.flags = flags;
    cs->base.name = "counting";
    cs->base.put = cs_put;
    cs->base.claim = cs_claim;
    cs->base.remove = cs_remove;
    cs->base.release = cs_release;
    cs->base.count = cs_count;
    cs->base.expire = cs_expire;
    cs->base.free = cs_free;
}


static void test_blocking_store_batches(void **state)
{
    fixture *f = *state;
    counting_store cs;
    counting_init(&cs, f->store, 0);
    msilo_engine_t *e;
    assert_int_equal(msilo_engine_new(&e, NULL, &cs.base, &f->tr->base, f->ctx), 0);
    msilo_engine_set_clock(e, fake_clock_read, &f->clock);
    store_rec recs[200] = { { 0 } };
    for (int i = 0; i < 200; i++) {
        msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
        assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, &recs[i]), 0);
    }
    assert_true(run_until_idle(e, f->ctx, TRUE));
    for (int i = 0; i < 200; i++) {
        assert_int_equal(recs[i].calls, 1);
        assert_int_equal(recs[i].rc, 0);
    }
    assert_int_equal(count(f, NULL, NULL), 200);
    /* 200 stores issued back to back: far fewer commits than messages */
    assert_true(cs.puts < 200);
    assert_true(cs.max_batch > 1);
    /* deliveries through the worker too */
    f->tr->auto_status = 200;
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(e, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 200);
    assert_true(run_until_idle(e, f->ctx, FALSE));
    assert_int_equal(count(f, NULL, NULL), 0);
    msilo_engine_free(e);
}

/* store_wait_us: the first store after an idle spell waits for the loop to
 * be idle, so the stores read meanwhile commit with it, one batch; with 0 it
 * is submitted at once, closed, and the others wait for its commit (two
 * batches). A wait of 1 s makes the first case independent of the machine's speed:
 * the loop is idle only once all stores were made. */
static int batches_for_burst(fixture *f, const char *wait_us, size_t *max_batch)
{
    set(f, "store_wait_us", wait_us);
    counting_store cs;
    counting_init(&cs, f->store, 0);
    msilo_engine_t *e;
    assert_int_equal(msilo_engine_new(&e, f->cfg, &cs.base, &f->tr->base, f->ctx), 0);
    msilo_engine_set_clock(e, fake_clock_read, &f->clock);
    store_rec recs[8] = { { 0 } };
    for (int i = 0; i < 8; i++) {
        msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
        assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, &recs[i]), 0);
    }
    assert_true(run_until_idle(e, f->ctx, TRUE));
    for (int i = 0; i < 8; i++) {
        assert_int_equal(recs[i].calls, 1);
        assert_int_equal(recs[i].rc, 0);
    }
    msilo_engine_free(e);
    *max_batch = cs.max_batch;
    return cs.puts;
}

static void test_store_wait_one_batch(void **state)
{
    fixture *f = *state;
    size_t max_batch;
    assert_int_equal(batches_for_burst(f, "1000000", &max_batch), 1);
    assert_int_equal(max_batch, 8);
    assert_int_equal(batches_for_burst(f, "0", &max_batch), 2);
    assert_int_equal(max_batch, 7);
    assert_int_equal(count(f, NULL, NULL), 16);
    /* a store still waiting for the idle loop when the engine is freed is
     * written then, with its real result */
    set(f, "store_wait_us", "500");
    counting_store cs;
    counting_init(&cs, f->store, 0);
    msilo_engine_t *e;
    assert_int_equal(msilo_engine_new(&e, f->cfg, &cs.base, &f->tr->base, f->ctx), 0);
    store_rec rec = { 0 };
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "last");
    assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, &rec), 0);
    assert_int_equal(cs.puts, 0); /* it waits for the loop */
    msilo_engine_free(e);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.rc, 0);
    assert_int_equal(count(f, NULL, NULL), 17);
}

/* A blocking store that can open peers (like PostgreSQL's connections), all
 * on one memory store behind a lock; each put sleeps a little outside the lock
 * so that batches on two peers overlap when the engine runs them at once. */
typedef struct {
    GMutex lock;
    GCond put_started;
    msilo_store_t *inner;
    int opened, in_put, max_in_put, puts;
    int expires_on_peer, expires_on_base;
} peer_hub;

typedef struct {
    msilo_store_t base;
    peer_hub *hub;
    gboolean heap;
} peer_store;

/* The hub's lock, as ThreadSanitizer should see it (lib/tsan.h). */
static void hub_lock(peer_hub *h)
{
    g_mutex_lock(&h->lock);
    msilo_tsan_acquire(&h->lock);
}

static void hub_unlock(peer_hub *h)
{
    msilo_tsan_release(&h->lock);
    g_mutex_unlock(&h->lock);
}

static int ps_put(msilo_store_t *s, msilo_message_t *const *m, size_t n, int64_t max, int *res)
{
    peer_hub *h = ((peer_store *)s)->hub;
    hub_lock(h);
    h->puts++;
    h->in_put++;
    h->max_in_put = MAX(h->max_in_put, h->in_put);
    g_cond_broadcast(&h->put_started);
    /* like a commit in flight: wait (a little, bounded) for another put to
     * start, which it can only do on another handle */
    gint64 until = g_get_monotonic_time() + 20 * G_TIME_SPAN_MILLISECOND;
    gboolean signalled = TRUE;
    while (h->in_put < 2 && signalled) {
        msilo_tsan_release(&h->lock); /* the wait unlocks and locks again */
        signalled = g_cond_wait_until(&h->put_started, &h->lock, until);
        msilo_tsan_acquire(&h->lock);
    }
    int rc = h->inner->put(h->inner, m, n, max, res);
    h->in_put--;
    hub_unlock(h);
    return rc;
}
#define PS_FWD(name, sig, args)                                                                \
    static int ps_##name sig                                                                   \
    {                                                                                          \
        peer_hub *h = ((peer_store *)s)->hub;                                                  \
        hub_lock(h);                                                                           \
        int rc = h->inner->name args;                                                          \
        hub_unlock(h);                                                                         \
        return rc;                                                                             \
    }
PS_FWD(claim, (msilo_store_t * s, const msilo_store_claim_t *cl, msilo_message_t ***r, size_t *n),
       (h->inner, cl, r, n))
PS_FWD(remove, (msilo_store_t * s, const int64_t *ids, size_t n, size_t *d), (h->inner, ids, n, d))
PS_FWD(release, (msilo_store_t * s, const msilo_store_release_t *it, size_t n, size_t sz),
       (h->inner, it, n, sz))
PS_FWD(count, (msilo_store_t * s, const char *u, const char *d, int64_t *r), (h->inner, u, d, r))
static int ps_expire(msilo_store_t *s, int64_t now, size_t *d)
{
    peer_store *p = (peer_store *)s;
    peer_hub *h = p->hub;
    hub_lock(h);
    if (p->heap)
        h->expires_on_peer++;
    else
        h->expires_on_base++;
    int rc = h->inner->expire(h->inner, now, d);
    hub_unlock(h);
    return rc;
}
#undef PS_FWD
static void ps_free(msilo_store_t *s)
{
    if (((peer_store *)s)->heap)
        g_free(s);
}
static void peer_init(peer_store *ps, peer_hub *h);
static int ps_open_peer(msilo_store_t *s, msilo_store_t **ret)
{
    peer_hub *h = ((peer_store *)s)->hub;
    peer_store *p = g_new0(peer_store, 1);
    peer_init(p, h);
    p->heap = TRUE;
    hub_lock(h);
    h->opened++;
    hub_unlock(h);
    *ret = &p->base;
    return 0;
}
static void peer_init(peer_store *ps, peer_hub *h)
{
    *ps = (peer_store){ .base = MSILO_STORE_INIT, .hub = h };
    ps->base.name = "peers";
    ps->base.put = ps_put;
    ps->base.claim = ps_claim;
    ps->base.remove = ps_remove;
    ps->base.release = ps_release;
    ps->base.count = ps_count;
    ps->base.expire = ps_expire;
    ps->base.free = ps_free;
    ps->base.open_peer = ps_open_peer;
}

/* store_threads: batches commit on several peers at once, and still every
 * owner's messages get ids in the order they were stored. */
static void run_store_threads(fixture *f, const char *threads, int *ret_opened, int *ret_overlap)
{
    peer_hub hub = { .inner = f->store };
    g_mutex_init(&hub.lock);
    g_cond_init(&hub.put_started);
    peer_store ps;
    peer_init(&ps, &hub);
    msilo_config_t *cfg;
    assert_int_equal(msilo_config_new(&cfg), 0);
    assert_int_equal(msilo_config_set(cfg, "store_threads", threads), 0);
    msilo_engine_t *e;
    assert_int_equal(msilo_engine_new(&e, cfg, &ps.base, &f->tr->base, f->ctx), 0);
    msilo_config_free(cfg);
    msilo_engine_set_clock(e, fake_clock_read, &f->clock);
    enum { OWNERS = 5, EACH = 40, WAVES = 4 };
    static store_rec recs[OWNERS * EACH];
    memset(recs, 0, sizeof recs);
    /* the first store opens the extra handles (a job on the main worker, not
     * on this thread) and goes through the main worker itself */
    msilo_request_t warm = message("sip:warmup@example.org", "sip:warmup@example.org", "w");
    store_rec wrec = { 0 };
    assert_int_equal(msilo_engine_store(e, &warm, NULL, store_cb, &wrec), 0);
    assert_true(run_until_idle(e, f->ctx, TRUE));
    assert_int_equal(wrec.rc, 0);
    int seq[OWNERS] = { 0 };
    /* in waves, so that later stores find earlier batches of their owner in flight */
    for (int w = 0; w < WAVES; w++) {
        for (int i = w * OWNERS * EACH / WAVES; i < (w + 1) * OWNERS * EACH / WAVES; i++) {
            int o = (i * 7 + w) % OWNERS;
            char uri[64], body[32];
            g_snprintf(uri, sizeof uri, "sip:user%d@example.org", o);
            g_snprintf(body, sizeof body, "%d", seq[o]++);
            msilo_request_t r = message(uri, uri, body);
            assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, &recs[i]), 0);
        }
        for (int k = 0; k < 3; k++)
            g_main_context_iteration(f->ctx, FALSE);
    }
    assert_true(run_until_idle(e, f->ctx, TRUE));
    for (int i = 0; i < OWNERS * EACH; i++) {
        assert_int_equal(recs[i].calls, 1);
        assert_int_equal(recs[i].rc, 0);
    }
    msilo_engine_free(e); /* closes the peers */
    for (int o = 0; o < OWNERS; o++) {
        char user[16];
        g_snprintf(user, sizeof user, "user%d", o);
        msilo_message_t **m;
        size_t n;
        assert_int_equal(msilo_store_list(f->store, user, "example.org", 0, 1000, &m, &n), 0);
        assert_int_equal(n, (size_t)seq[o]);
        for (size_t k = 0; k < n; k++) {
            char want[32];
            g_snprintf(want, sizeof want, "%zu", k);
            assert_int_equal(m[k]->body_len, strlen(want));
            assert_memory_equal(m[k]->body, want, strlen(want)); /* id order = store order */
            msilo_message_free(m[k]);
        }
        g_free(m);
    }
    assert_true(hub.puts < OWNERS * EACH); /* still batched */
    *ret_opened = hub.opened;
    *ret_overlap = hub.max_in_put;
    g_cond_clear(&hub.put_started);
    g_mutex_clear(&hub.lock);
}

static void test_store_threads_overlap_in_order(void **state)
{
    fixture *f = *state;
    int opened, overlap;
    run_store_threads(f, "3", &opened, &overlap);
    assert_int_equal(opened, 3);
    assert_true(overlap >= 2); /* batches did commit at the same time */
}

static void test_store_threads_one(void **state)
{
    fixture *f = *state;
    int opened, overlap;
    run_store_threads(f, "1", &opened, &overlap);
    assert_int_equal(opened, 0);
    assert_int_equal(overlap, 1);
}

/* Expiry (and the count for the queued_messages gauge) runs on a handle of
 * its own when the store can open one, so a long count(*) does not hold up
 * stores and claims on the main one. */
static void test_expiry_on_its_own_handle(void **state)
{
    fixture *f = *state;
    peer_hub hub = { .inner = f->store };
    g_mutex_init(&hub.lock);
    g_cond_init(&hub.put_started);
    peer_store ps;
    peer_init(&ps, &hub);
    set(f, "expire_time", "100");
    msilo_engine_t *e;
    assert_int_equal(msilo_engine_new(&e, f->cfg, &ps.base, &f->tr->base, f->ctx), 0);
    msilo_engine_set_clock(e, fake_clock_read, &f->clock);
    /* the first clean runs on the main handle and opens the other one (a job
     * on the main worker: connecting blocks, never on the loop thread) */
    msilo_engine_tick(e);
    assert_true(run_until_idle(e, f->ctx, TRUE));
    assert_int_equal(hub.opened, 1); /* store_threads 1: only the expiry's handle */
    assert_int_equal(hub.expires_on_base, 1);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_rec rec = { 0 };
    assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, &rec), 0);
    assert_true(run_until_idle(e, f->ctx, TRUE));
    assert_int_equal(rec.rc, 0);
    f->clock.now = T0 + 200; /* expired (T0+100), and past the next clean (T0+150) */
    msilo_engine_tick(e);
    assert_true(run_until_idle(e, f->ctx, TRUE));
    assert_int_equal(count(f, "alice", "example.org"), 0);
    assert_int_equal(msilo_engine_stat(e, MSILO_STAT_EXPIRED_MESSAGES), 1);
    assert_int_equal(hub.opened, 1);
    assert_int_equal(hub.expires_on_peer, 1);
    assert_int_equal(hub.expires_on_base, 1);
    msilo_engine_free(e); /* frees that handle (ASan: no leak) */
    g_cond_clear(&hub.put_started);
    g_mutex_clear(&hub.lock);
}

static gpointer other_thread_store(gpointer data)
{
    fixture *f = data;
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    return GINT_TO_POINTER(msilo_engine_store_sync(f->e, &r, NULL, NULL));
}

static void test_sync_from_wrong_thread(void **state)
{
    fixture *f = *state;
    start(f);
    assert_true(g_main_context_acquire(f->ctx)); /* this thread "runs" the loop */
    GThread *t = g_thread_new("other", other_thread_store, f);
    int rc = GPOINTER_TO_INT(g_thread_join(t));
    g_main_context_release(f->ctx);
    assert_int_equal(rc, MSILO_ETHREAD);
    assert_int_equal(count(f, NULL, NULL), 0);
}

static void test_free_completes_pending_stores(void **state)
{
    fixture *f = *state;
    start(f);
    store_rec recs[5] = { { 0 } };
    for (int i = 0; i < 5; i++) {
        msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
        assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, &recs[i]), 0);
    }
    msilo_engine_free(f->e);
    f->e = NULL;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(recs[i].calls, 1);
        assert_int_equal(recs[i].rc, 0); /* accepted means committed */
    }
    assert_int_equal(count(f, NULL, NULL), 5);
}

static void test_poison_message_fails_alone(void **state)
{
    fixture *f = *state;
    counting_store cs;
    counting_init(&cs, f->store, 0);
    cs.poison = 1;
    msilo_engine_t *e;
    assert_int_equal(msilo_engine_new(&e, NULL, &cs.base, &f->tr->base, f->ctx), 0);
    static const char *const bodies[] = { "a", "b", "poison", "c", "d", "e" };
    store_rec recs[G_N_ELEMENTS(bodies)] = { { 0 } };
    for (size_t i = 0; i < G_N_ELEMENTS(bodies); i++) {
        msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", bodies[i]);
        assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, &recs[i]), 0);
    }
    assert_true(run_until_idle(e, f->ctx, TRUE));
    for (size_t i = 0; i < G_N_ELEMENTS(bodies); i++) {
        assert_int_equal(recs[i].calls, 1);
        assert_int_equal(recs[i].rc, i == 2 ? MSILO_ESTORE : 0);
    }
    assert_int_equal(count(f, NULL, NULL), 5);
    /* storage order kept for the rest */
    msilo_message_t **all;
    size_t n;
    assert_int_equal(msilo_store_list(f->store, NULL, NULL, 0, 10, &all, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(all[0]->body, "a", 1);
    assert_memory_equal(all[4]->body, "e", 1);
    msilo_message_array_free(all, n);
    msilo_engine_free(e);
}

static void test_statistics_not_swapped(void **state)
{
    fixture *f = *state;
    set(f, "reminder", "sip:registrar@example.org");
    set(f, "send_time", "10");
    start(f);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    store_ok(f, &r, NULL); /* offline 1 */
    store_ok(f, &r, NULL); /* offline 2 */
    r.snd_time = "20000101000000";
    store_ok(f, &r, NULL); /* reminder 1 */
    store_ok(f, &r, NULL); /* reminder 2 */
    store_ok(f, &r, NULL); /* reminder 3 */
    msilo_engine_tick(f->e);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 3);
    fake_transport_answer(f->tr, 0, 200);
    fake_transport_answer(f->tr, 1, 200);
    fake_transport_answer(f->tr, 2, 500); /* becomes offline message 3 */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    dump_rec d = { 0 };
    dump(f, "sip:alice@example.org", "sip:alice@192.0.2.1", &d);
    assert_int_equal(f->tr->sent->len, 6);
    fake_transport_answer(f->tr, 3, 200);
    fake_transport_answer(f->tr, 4, 486);
    fake_transport_answer(f->tr, 5, 486);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_STORED_MESSAGES), 5);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_REMINDERS), 2);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_REMINDERS), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 2);
}

static void test_store_backend_failure(void **state)
{
    fixture *f = *state;
    counting_store cs;
    counting_init(&cs, f->store, 0); /* blocking: through the worker */
    msilo_engine_t *e;
    assert_int_equal(msilo_engine_new(&e, NULL, &cs.base, &f->tr->base, f->ctx), 0);
    msilo_engine_set_clock(e, fake_clock_read, &f->clock);
    msilo_request_t r = message("sip:alice@example.org", "sip:alice@example.org", "x");
    cs.fail_put = 1;
    int64_t id = 0;
    assert_int_equal(msilo_engine_store_sync(e, &r, NULL, &id), MSILO_ESTORE);
    assert_int_equal(msilo_error_sip_status(MSILO_ESTORE), 503);
    assert_int_equal(count(f, NULL, NULL), 0);
    assert_int_equal(msilo_engine_stat(e, MSILO_STAT_STORE_ERRORS), 1);
    assert_int_equal(msilo_engine_stat(e, MSILO_STAT_STORED_MESSAGES), 0);
    cs.fail_put = 0; /* the database is back */
    assert_int_equal(msilo_engine_store_sync(e, &r, NULL, &id), 0);
    assert_int_equal(count(f, NULL, NULL), 1);
    /* delete after 2xx fails: kept and retried at the next check, not lost */
    cs.fail_remove = 1;
    f->tr->auto_status = 200;
    msilo_request_t reg = register_req("sip:alice@example.org", "sip:alice@192.0.2.1", 60);
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(e, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 1);
    assert_int_equal(count(f, NULL, NULL), 1);
    assert_true(msilo_engine_pending(e) > 0); /* the delete is still owed */
    cs.fail_remove = 0;
    f->clock.now += 31;
    msilo_engine_tick(e);
    assert_true(run_until_idle(e, f->ctx, FALSE));
    assert_int_equal(count(f, NULL, NULL), 0);
    msilo_engine_free(e);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_seed_defaults),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_validate),
        cmocka_unit_test_setup_teardown(test_engine_new_refuses_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vtable_checks, setup, teardown),
        cmocka_unit_test(test_config_load_data),
        cmocka_unit_test(test_aor_parse),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_errors),
        cmocka_unit_test_setup_teardown(test_store_owner_from_ruri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_owner_from_to_when_ruri_not_aor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_owner_argument, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_user_unescaped_host_caseless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_expiry_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_cleaning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_binary_body_and_ctype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_async_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_delivers_in_order_and_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_window_and_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_in_flight_shared_by_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_owner_argument, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_failure_does_not_block_and_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_transport_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_refused_last_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_concurrent_same_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_engines_one_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_and_instance_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_proxy_and_extra_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_date_only_text_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notification_to_contact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notification_use_contact_off_and_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_notification_without_from_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reminder_sent_when_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reminder_failure_becomes_offline_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reminders_disabled_by_send_time_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_store_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_wait_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_threads_overlap_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_threads_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_on_its_own_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_from_wrong_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_completes_pending_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statistics_not_swapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_message_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_backend_failure, setup, teardown),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
