/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An outside author's test program for a store, built by test-install.sh
 * against the INSTALLED test kit with pkg-config alone:
 *   cc kit-memory.c $(pkg-config --cflags --libs msilo-testing)
 * Its store is libmsilo's in-memory one; a backend of one's own goes where
 * msilo_memory_store_new() is. It also creates and frees the kit's
 * recording transport, so that every part of the kit is linked once.
 */
#include <msilo/msilo.h>
#include <msilo/testing/fake-transport.h>
#include <msilo/testing/store.h>

static int open_store(void *data, msilo_store_t **ret)
{
    (void)data;
    return msilo_memory_store_new(ret);
}

int main(void)
{
    msilo_testing_fake_transport_t *t = NULL;
    if (msilo_testing_fake_transport_new(&t, NULL) != 0 || msilo_transport_check(&t->base) != 0)
        return 99;
    msilo_transport_free(&t->base);

    msilo_testing_store_suite_t suite = MSILO_TESTING_STORE_SUITE_INIT;
    suite.name = "outside-memory";
    suite.open = open_store;
    return msilo_testing_exit_status(msilo_testing_store_run(&suite));
}
