/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmsilo.h: what the files of the msilo_lib Kamailio module share: the
 * module's settings (filled by the modparams, before Kamailio forks), the
 * engine process's entry point and the per-process client connection to it.
 * doc/kamailio.md describes the process design.
 */
#ifndef KMSILO_H
#define KMSILO_H

#include <msilo/config.h>
#include <stddef.h>
#include <stdint.h>

struct sip_msg;

/* Settings, written while Kamailio parses its config (main process). */
typedef struct kmsilo_settings {
    msilo_config_t *cfg;     /* every libmsilo key set by a modparam */
    int migrate;             /* "migrate": create/upgrade the table at start */
    int store_timeout_ms;    /* "store_timeout": longest wait of m_store */
    int skip_notification_flag;
    char *snd_time_avp;      /* pv names, parsed in mod_init */
    char *extra_hdrs_avp;
    int listen_fd;           /* the engine's SOCK_SEQPACKET socket (mod_init) */
    char sock_name[64];      /* its abstract address, without the leading NUL */
    int engine_pid;
    int store_threads_set;   /* engine_param "store_threads=" given */
    int async_reply;         /* "async_reply": m_store in request_route hands the
                                transaction over and the engine process answers it */
} kmsilo_settings_t;

extern kmsilo_settings_t kmsilo;

/* kmsilo-params.c: the param_export_t table is kmsilo_params[]; this makes
 * sure kmsilo.cfg exists even when no modparam was given. */
int kmsilo_params_finish(void);

/* kmsilo-client.c: this process's connection to the engine process. */
int kmsilo_client_send(const char *buf, size_t len);
/* Sends @p buf and waits at most @p timeout_ms for the STORED of @p seq.
 * @return 0 with *ret_result set, or -1 (no answer, no connection). */
int kmsilo_client_call(const char *buf, size_t len, uint32_t seq, int timeout_ms,
                       int32_t *ret_result, int64_t *ret_id);

/* kmsilo-engine.c: binds tm (mod_init); then kmsilo_tmb is usable anywhere. */
struct tm_binds;
extern struct tm_binds kmsilo_tmb;
int kmsilo_tm_load(void);

/* kmsilo-engine.c: the engine process's main; never returns. */
void kmsilo_engine_main(void);

/* kmsilo-engine.c: the module's statistics (mod_init registers them). */
int kmsilo_stats_register(const char *module);
/* The five statistics, in msilo's order: stored, dumped, failed messages,
 * dumped, failed reminders (any process: Kamailio's counters). */
void kmsilo_stats_read(unsigned long v[5]);

#endif
