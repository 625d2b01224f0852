/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/engine: the engine with the in-memory store and an in-process
 * transport that answers 200 at once (from the loop, as the contract says),
 * on one thread. Stores N messages for N/10 owners, then dumps every owner,
 * and prints messages/s for each phase and the resident memory per stored
 * message beyond its body. The same work done by a plain GHashTable of
 * GQueues runs in the same process as a reference for the engine's own cost.
 *
 *   bench-engine [N [OWNERS]]        default 1000000 100000
 */
#include <msilo/msilo.h>

#include "instant.h"

#include <glib.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static double now_s(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define BODY_LEN 100

static void make_body(char *buf, long i, long owner)
{
    int n = snprintf(buf, BODY_LEN + 1, "msgid=%ld; bench offline message for user%06ld ", i, owner);
    memset(buf + n, '.', (size_t)(BODY_LEN - n));
    buf[BODY_LEN] = '\0';
}

static void store_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)id;
    if (rc)
        (*(long *)data)++;
}

/* ---- reference: GHashTable of GQueue ---- */
typedef struct {
    char *src, *dst;
    char *body;
    size_t len;
    int64_t inc, exp;
} ref_msg;

static void bench_reference(long n, long owners, double *store_rate, double *dump_rate)
{
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char body[BODY_LEN + 1];
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        long o = i % owners;
        char key[64];
        snprintf(key, sizeof key, "user%06ld@example.org", o);
        GQueue *q = g_hash_table_lookup(h, key);
        if (!q) {
            q = g_queue_new();
            g_hash_table_insert(h, g_strdup(key), q);
        }
        make_body(body, i, o);
        ref_msg *m = g_new(ref_msg, 1);
        m->src = g_strdup("sip:sender@example.org");
        m->dst = g_strdup_printf("sip:%s", key);
        m->body = g_memdup2(body, BODY_LEN);
        m->len = BODY_LEN;
        m->inc = 1;
        m->exp = 2;
        g_queue_push_tail(q, m);
    }
    double t1 = now_s();
    GHashTableIter it;
    gpointer k, v;
    long delivered = 0;
    g_hash_table_iter_init(&it, h);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        GQueue *q = v;
        ref_msg *m;
        while ((m = g_queue_pop_head(q))) {
            /* the same per-message delivery work the engine does: prefix + header */
            char *out = g_strdup_printf("[Offline message - x] %.*s", (int)m->len, m->body);
            g_free(out);
            g_free(m->src);
            g_free(m->dst);
            g_free(m->body);
            g_free(m);
            delivered++;
        }
        g_queue_free(q);
        g_hash_table_iter_remove(&it);
    }
    double t2 = now_s();
    g_hash_table_unref(h);
    *store_rate = (double)n / (t1 - t0);
    *dump_rate = (double)delivered / (t2 - t1);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long owners = argc > 2 ? atol(argv[2]) : 100000;
    if (n <= 0 || owners <= 0 || owners > n) {
        fprintf(stderr, "usage: bench-engine [N [OWNERS]]\n");
        return 2;
    }
    msilo_config_t *cfg;
    msilo_store_t *store;
    msilo_engine_t *e;
    msilo_config_new(&cfg);
    msilo_config_set(cfg, "dump_batch", "1000");
    msilo_config_set(cfg, "dump_window", "1000");
    msilo_memory_store_new(&store);
    msilo_transport_t *tr = instant_transport_new();
    if (msilo_engine_new(&e, cfg, store, tr, NULL)) {
        fprintf(stderr, "engine: %s\n", msilo_error_detail());
        return 1;
    }

    malloc_trim(0);
    long rss0 = rss_kb("VmRSS:");
    long errors = 0;
    /* The request strings of a chunk are built before its timed part: the
     * figures are the engine's (the reference below still builds its
     * strings inside its timed loop). */
    const long chunk = 4096;
    char(*bodies)[BODY_LEN + 1] = g_malloc((size_t)chunk * sizeof *bodies);
    char(*ruris)[64] = g_malloc((size_t)chunk * sizeof *ruris);
    double t_store = 0, c_store = 0;
    for (long base = 0; base < n; base += chunk) {
        long k = MIN(chunk, n - base);
        for (long i = 0; i < k; i++) {
            long o = (base + i) % owners;
            snprintf(ruris[i], sizeof ruris[i], "sip:user%06ld@example.org", o);
            make_body(bodies[i], base + i, o);
        }
        double ta = now_s(), ca = cpu_s();
        for (long i = 0; i < k; i++) {
            msilo_request_t r = MSILO_REQUEST_INIT;
            r.ruri = ruris[i];
            r.to = ruris[i];
            r.from = "<sip:sender@example.org>;tag=1";
            r.body = bodies[i];
            r.body_len = BODY_LEN;
            r.content_type = "text/plain";
            if (msilo_engine_store(e, &r, NULL, store_cb, &errors))
                errors++;
        }
        bench_drain(e);
        t_store += now_s() - ta;
        c_store += cpu_s() - ca;
    }
    g_free(bodies);
    g_free(ruris);
    malloc_trim(0);
    long rss1 = rss_kb("VmRSS:");
    int64_t stored = 0;
    msilo_store_count(store, NULL, NULL, &stored);

    const long ochunk = 512;
    char(*tos)[64] = g_malloc((size_t)ochunk * sizeof *tos);
    char(*contacts)[64] = g_malloc((size_t)ochunk * sizeof *contacts);
    double t_dump = 0, c_dump = 0;
    for (long base = 0; base < owners; base += ochunk) {
        long k = MIN(ochunk, owners - base);
        for (long i = 0; i < k; i++) {
            snprintf(tos[i], sizeof tos[i], "sip:user%06ld@example.org", base + i);
            snprintf(contacts[i], sizeof contacts[i], "sip:user%06ld@127.0.0.1:5090", base + i);
        }
        double ta = now_s(), ca = cpu_s();
        for (long i = 0; i < k; i++) {
            msilo_request_t reg = MSILO_REQUEST_INIT;
            reg.to = tos[i];
            reg.contact = contacts[i];
            reg.expires = 3600;
            if (msilo_engine_dump(e, &reg, NULL, 0, NULL, NULL))
                errors++;
        }
        bench_drain(e);
        t_dump += now_s() - ta;
        c_dump += cpu_s() - ca;
    }
    g_free(tos);
    g_free(contacts);
    int64_t left = -1;
    msilo_store_count(store, NULL, NULL, &left);
    uint64_t dumped = msilo_engine_stat(e, MSILO_STAT_DUMPED_MESSAGES);

    double ref_store, ref_dump;
    bench_reference(n, owners, &ref_store, &ref_dump);

    double store_rate = (double)n / t_store, dump_rate = (double)dumped / t_dump;
    double per_msg = (double)(rss1 - rss0) * 1024.0 / (double)n;
    printf("bench-engine: %ld messages, %ld owners, body %d bytes, one thread\n", n, owners,
           BODY_LEN);
    printf("  store: %10.0f msg/s  (%.2f s wall, %.2f us CPU/msg)   reference %10.0f msg/s  ratio %.2f\n",
           store_rate, t_store, c_store * 1e6 / (double)n, ref_store, store_rate / ref_store);
    printf("  dump:  %10.0f msg/s  (%.2f s wall, %.2f us CPU/msg)   reference %10.0f msg/s  ratio %.2f\n",
           dump_rate, t_dump, c_dump * 1e6 / (double)dumped, ref_dump, dump_rate / ref_dump);
    printf("  memory: %.0f bytes RSS per stored message, %.0f beyond the %d-byte body (peak VmHWM %ld kB)\n",
           per_msg, per_msg - BODY_LEN, BODY_LEN, rss_kb("VmHWM:"));
    printf("  check: stored %lld, delivered %llu, left %lld, sent %llu, errors %ld\n",
           (long long)stored, (unsigned long long)dumped, (long long)left,
           (unsigned long long)instant_transport_sent(tr), errors);
    int ok = stored == n && (long)dumped == n && left == 0 && errors == 0;
    msilo_engine_free(e);
    msilo_transport_free(tr);
    msilo_store_free(store);
    msilo_config_free(cfg);
    return ok ? 0 : 1;
}
