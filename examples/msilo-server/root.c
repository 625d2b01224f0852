/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's Sofia root inside the GLib main loop, on Sofia's own epoll
 * port rather than libsofia-sip-ua-glib's GSource port.
 *
 * Why: the GSource port (su_source.c) keeps its sockets in one array and
 * unregisters one by shifting every later socket down a slot, and each shift
 * is a g_source_remove_poll() + g_source_add_poll(), both linear in the
 * number of sockets. Closing one of N TCP connections therefore costs O(N^2)
 * and closing N at once O(N^3): after 3 000 idle connections closed, a new
 * TCP request waited 63 s (issue 17). Sofia's epoll port registers and
 * removes a socket in O(1) (epoll_ctl), and GLib polls only its one epoll
 * descriptor.
 *
 * How: su_root_create() makes an epoll port (SU_PORT=epoll unless set);
 * Sofia has no API for its descriptor, so it is found as the one new
 * "anon_inode:[eventpoll]" in /proc/self/fd. A GSource watches that fd;
 * prepare() runs su_root_step(root, 0) (timers due, messages, ready sockets)
 * and takes the time to Sofia's next timer as its poll timeout, so a timer set
 * from outside a Sofia callback (g_timeout handlers, engine callbacks) is seen
 * at the next loop iteration. A 60 s timer of our own keeps su_root_step()'s
 * result meaningful: without any timer it returns its argument (0), which
 * would make the loop spin. When the epoll descriptor is not found (another
 * port, no /proc), the GSource port of su_glib_root_create() is used as before.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

typedef struct {
    GSource base;
    su_root_t *root;
    gpointer tag;     /* the epoll fd's */
    su_timer_t *keep; /* see the top comment */
} root_source_t;

/* The descriptors in /proc/self/fd that are epoll instances. */
static GHashTable *epoll_fds(void)
{
    GHashTable *set = g_hash_table_new(NULL, NULL);
    GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        char path[64], target[64];
        ssize_t n;
        g_snprintf(path, sizeof(path), "/proc/self/fd/%s", name);
        n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, "anon_inode:[eventpoll]") == 0)
            g_hash_table_add(set, GINT_TO_POINTER(atoi(name) + 1)); /* +1: fd 0 */
    }
    if (dir)
        g_dir_close(dir);
    return set;
}

static gboolean root_prepare(GSource *src, gint *timeout)
{
    root_source_t *rs = (root_source_t *)src;
    su_duration_t t = su_root_step(rs->root, 0);
    *timeout = t < 0 ? -1 : t > G_MAXINT ? G_MAXINT : (gint)t;
    return *timeout == 0;
}

static gboolean root_check(GSource *src)
{
    root_source_t *rs = (root_source_t *)src;
    return (g_source_query_unix_fd(src, rs->tag) & (G_IO_IN | G_IO_ERR | G_IO_HUP)) != 0;
}

static gboolean root_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    root_source_t *rs = (root_source_t *)src;
    (void)cb;
    (void)data;
    su_root_step(rs->root, 0);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs root_funcs = { root_prepare, root_check, root_dispatch, NULL, NULL, NULL };

static void keep_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    (void)magic;
    (void)t;
    (void)arg;
}

su_root_t *server_root_create(server_t *s, GSource **ret_source, bool *ret_epoll)
{
    GHashTable *before, *after;
    GHashTableIter it;
    gpointer key;
    int fd = -1, found = 0;
    su_root_t *root;

    *ret_epoll = false;
    if (!g_getenv("MSILO_SERVER_GLIB_ROOT")) {
        g_setenv("SU_PORT", "epoll", FALSE);
        before = epoll_fds();
        root = su_root_create(s);
        after = epoll_fds();
        g_hash_table_iter_init(&it, after);
        while (root && g_hash_table_iter_next(&it, &key, NULL))
            if (!g_hash_table_contains(before, key))
                fd = GPOINTER_TO_INT(key) - 1, found++;
        g_hash_table_unref(before);
        g_hash_table_unref(after);
        if (root && found == 1) {
            root_source_t *rs = (root_source_t *)g_source_new(&root_funcs, sizeof(*rs));
            rs->root = root;
            rs->tag = g_source_add_unix_fd(&rs->base, fd, G_IO_IN);
            rs->keep = su_timer_create(su_root_task(root), 60000);
            if (rs->keep)
                su_timer_set_interval(rs->keep, keep_timer, NULL, 60000);
            g_source_set_name(&rs->base, "sofia-epoll");
            *ret_source = &rs->base;
            *ret_epoll = true;
            return root;
        }
        if (root)
            su_root_destroy(root);
    }
    root = su_glib_root_create(s);
    if (!root)
        return NULL;
    *ret_source = g_source_ref(su_glib_root_gsource(root));
    /* Without this GLib "blocks" the source around each dispatch: it removes
     * and re-adds every Sofia socket from the poll set, and each of those
     * writes the context's eventfd (GLib 2.74: g_main_context_add_poll /
     * remove_poll call g_wakeup_signal). With one UDP datagram per dispatch
     * that was 4 write()s, one extra read() and poll() per SIP message.
     * Recursion cannot happen here: nothing in the server iterates the main
     * context from inside a Sofia callback (drain() runs after the loop). */
    g_source_set_can_recurse(*ret_source, TRUE);
    return root;
}

void server_root_destroy(su_root_t *root, GSource *source, bool epoll)
{
    if (source && epoll) {
        su_timer_destroy(((root_source_t *)source)->keep);
        ((root_source_t *)source)->keep = NULL;
    }
    /* before the root (the GSource port's source belongs to it; ours was ref'd) */
    if (source) {
        g_source_destroy(source);
        g_source_unref(source);
    }
    if (root)
        su_root_destroy(root);
}
