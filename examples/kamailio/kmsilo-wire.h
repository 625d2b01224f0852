/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmsilo-wire.h: the messages between Kamailio's processes and the module's
 * engine process (see kmsilo-engine.c), and their byte encoding.
 *
 * One message is one SOCK_SEQPACKET packet. A SIP worker sends STORE (and
 * waits for STORED with the same seq) or DUMP (no answer); whichever process
 * runs a tm reply callback sends DONE for the delivery token it carries.
 * Knows nothing of Kamailio: tests/kamailio/test-wire.c tests it alone.
 */
#ifndef KMSILO_WIRE_H
#define KMSILO_WIRE_H

#include <msilo/request.h>
#include <stddef.h>
#include <stdint.h>

enum kmsilo_op {
    KMSILO_OP_STORE = 1,  /* request + owner -> STORED */
    KMSILO_OP_DUMP = 2,   /* REGISTER view + owner + max, no answer */
    KMSILO_OP_DONE = 3,   /* token + final status of a delivery */
    KMSILO_OP_STORED = 4, /* seq + result of a STORE */
    KMSILO_OP_STORE_ASYNC = 5, /* request + owner + tm ident in num: the engine
                                  process answers the transaction itself */
};

/* A decoded message. For STORE/DUMP, req and owner point into the packet
 * buffer (valid while it lives); req.headers is g_malloc'ed (kmsilo_wire_clear). */
typedef struct kmsilo_wire {
    uint32_t op;
    uint32_t seq;      /* STORE/STORED: matches an answer to its request */
    int64_t num;       /* DONE: token; STORED: id; DUMP: max */
    int32_t status;    /* DONE: SIP status or MSILO_E*; STORED: result */
    msilo_request_t req;
    const char *owner; /* NULL: the request's own */
} kmsilo_wire_t;

/* Encodes STORE or DUMP into a g_malloc'ed buffer. @return its length. */
size_t kmsilo_wire_encode_request(uint32_t op, uint32_t seq, const msilo_request_t *req,
                                  const char *owner, int64_t max, char **ret_buf);

/* Encodes DONE or STORED into @p buf (at least KMSILO_WIRE_SMALL bytes). */
#define KMSILO_WIRE_SMALL 24
size_t kmsilo_wire_encode_small(uint32_t op, uint32_t seq, int64_t num, int32_t status,
                                char *buf);

/* Decodes @p len bytes of @p buf. @return 0, or -1 when malformed. */
int kmsilo_wire_decode(const char *buf, size_t len, kmsilo_wire_t *out);

/* Frees what kmsilo_wire_decode allocated. */
void kmsilo_wire_clear(kmsilo_wire_t *w);

#endif
