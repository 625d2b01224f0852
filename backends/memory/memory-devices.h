/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The memory store's per-device delivery state (store revision 4:
 * claim/release with a device, mark_delivered, forget_devices), kept beside
 * the entries so that an entry stays one allocation and a store that never
 * sees a device pays one field test per delete. Private to the memory store
 * (memory.c calls it with its lock held; nothing here locks).
 *
 * What it keeps:
 * - the known devices of each owner, with when each last claimed;
 * - per message that a device has claimed: that device's lease (holder,
 *   until), attempts, next_try and whether it has the message;
 * - the one device a message is for (msilo_message_t.device), when set.
 */
#ifndef MSILO_MEMORY_DEVICES_H
#define MSILO_MEMORY_DEVICES_H

#include <glib.h>
#include <msilo/sys/store.h>

typedef struct memdev {
    GHashTable *owners;  /* "user\ndomain" -> GHashTable (device -> int64_t *last_seen) */
    GHashTable *states;  /* int64_t *id -> GHashTable (device -> dstate) */
    GHashTable *targets; /* int64_t *id -> char *device (message.device) */
    size_t tracked;      /* messages with a state or a target: 0 = nothing to forget */
} memdev_t;

/* A device's view of one message: its attempts and next try. */
typedef struct memdev_view {
    uint32_t attempts;
    int64_t next_try;
} memdev_view_t;

void memdev_init(memdev_t *d);
void memdev_clear(memdev_t *d);

/* Records that @device of user@domain claims at @now (known, last seen). */
void memdev_seen(memdev_t *d, const char *user, const char *domain, const char *device,
                 int64_t now);
/* Message @id is for @device only (put of a message with a device). */
void memdev_set_target(memdev_t *d, int64_t id, const char *device);
/* The device message @id is for, or NULL. */
const char *memdev_target(const memdev_t *d, int64_t id);
/* May @device claim message @id under @c (not had, not leased, due)? Fills
 * @view with the device's attempts and next_try. */
gboolean memdev_claimable(const memdev_t *d, int64_t id, const msilo_store_claim_t *c,
                          memdev_view_t *view);
/* Leases message @id to @c->device for @c->lease_owner until @c->lease_until. */
void memdev_lease(memdev_t *d, int64_t id, const msilo_store_claim_t *c);
/* release() of one item with a device. */
void memdev_release(memdev_t *d, const msilo_store_release_t *it);
/* Records that @device has message @id of user@domain; TRUE when the message
 * can go: it was for @device only, or every known device has it. */
gboolean memdev_mark(memdev_t *d, int64_t id, const char *user, const char *domain,
                     const char *device);
/* Whether message @id of user@domain has been delivered to some device and
 * every known device of the owner has it (after forget_devices). */
gboolean memdev_complete(const memdev_t *d, int64_t id, const char *user, const char *domain);
/* Forgets devices last seen before @seen_before; *ret_n how many; appends
 * to @owners ("user\ndomain", g_free) the owners that lost one. */
void memdev_forget(memdev_t *d, int64_t seen_before, size_t *ret_n, GPtrArray *owners);
/* Ends every per-device lease held by @lease_owner; how many. */
size_t memdev_reset(memdev_t *d, const char *lease_owner);
/* Message @id is gone: drops its state. */
void memdev_drop(memdev_t *d, int64_t id);

#endif
