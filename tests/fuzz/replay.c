/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a fuzz target over every file of a corpus directory, without
 * libFuzzer: the corpus is a regression test in every build (gcc, ASan). */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        GDir *d = g_dir_open(argv[i], 0, NULL);
        if (!d) {
            fprintf(stderr, "cannot open corpus %s\n", argv[i]);
            return 1;
        }
        const char *name;
        while ((name = g_dir_read_name(d))) {
            char *path = g_build_filename(argv[i], name, NULL);
            gchar *buf;
            gsize len;
            if (g_file_get_contents(path, &buf, &len, NULL)) {
                LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
                g_free(buf);
                n++;
            }
            g_free(path);
        }
        g_dir_close(d);
    }
    printf("replayed %d inputs\n", n);
    return n > 0 ? 0 : 1;
}
