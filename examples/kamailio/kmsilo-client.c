/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmsilo-client.c: one process's connection to the engine process: a
 * SOCK_SEQPACKET connection to the socket mod_init bound (abstract address,
 * named after the main process's pid), opened on first use and reopened once
 * when the engine process went away. Used by SIP workers (m_store, m_dump)
 * and by whichever process runs a tm reply callback (DONE).
 */
#include "kmsilo-wire.h"
#include "kmsilo.h"

#include "core/dprint.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int client_fd = -1;
static int client_pid = -1; /* a forked child must not share its parent's */

static int client_connect(void)
{
    if (client_fd >= 0 && client_pid == getpid())
        return 0;
    client_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (client_fd < 0)
        return -1;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    size_t n = strlen(kmsilo.sock_name);
    memcpy(a.sun_path + 1, kmsilo.sock_name, n);
    if (connect(client_fd, (struct sockaddr *)&a,
                (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
        LM_ERR("msilo_lib: cannot connect to the engine process: %s\n", strerror(errno));
        close(client_fd);
        client_fd = -1;
        return -1;
    }
    client_pid = getpid();
    return 0;
}

static void client_drop(void)
{
    if (client_fd >= 0)
        close(client_fd);
    client_fd = -1;
}

int kmsilo_client_send(const char *buf, size_t len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (client_connect() < 0)
            return -1;
        if (send(client_fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len)
            return 0;
        LM_WARN("msilo_lib: send to the engine process: %s\n", strerror(errno));
        client_drop();
    }
    return -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kmsilo_client_call(const char *buf, size_t len, uint32_t seq, int timeout_ms,
                       int32_t *ret_result, int64_t *ret_id)
{
    if (kmsilo_client_send(buf, len) < 0)
        return -1;
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = client_fd, .events = POLLIN };
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        char in[KMSILO_WIRE_SMALL];
        ssize_t got = recv(client_fd, in, sizeof in, 0);
        if (got <= 0) { /* the engine process is gone: its answer will not come */
            client_drop();
            return -1;
        }
        kmsilo_wire_t w;
        if (kmsilo_wire_decode(in, (size_t)got, &w) < 0 || w.op != KMSILO_OP_STORED)
            continue;
        if (w.seq != seq) /* the late answer of a store that timed out */
            continue;
        *ret_result = w.status;
        *ret_id = w.num;
        return 0;
    }
}
