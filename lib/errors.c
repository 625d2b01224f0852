/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "internal.h"

#include <stdarg.h>

const char *msilo_version(void)
{
    return G_STRINGIFY(MSILO_VERSION_MAJOR) "." G_STRINGIFY(MSILO_VERSION_MINOR) "." G_STRINGIFY(
        MSILO_VERSION_MICRO);
}

static const struct {
    int code;
    const char *name;
    const char *text;
} errors[] = {
    { MSILO_OK, "MSILO_OK", "success" },
    { MSILO_EINVAL, "MSILO_EINVAL", "invalid argument" },
    { MSILO_ENOMEM, "MSILO_ENOMEM", "out of memory" },
    { MSILO_EURI, "MSILO_EURI", "malformed or unsupported URI" },
    { MSILO_EMISSING, "MSILO_EMISSING", "required header missing" },
    { MSILO_ETOOBIG, "MSILO_ETOOBIG", "message body too large" },
    { MSILO_ETIME, "MSILO_ETIME", "invalid reminder time" },
    { MSILO_EFULL, "MSILO_EFULL", "mailbox full" },
    { MSILO_ESTORE, "MSILO_ESTORE", "storage backend failure" },
    { MSILO_ETRANSPORT, "MSILO_ETRANSPORT", "transport failure" },
    { MSILO_ECONFIG, "MSILO_ECONFIG", "invalid configuration" },
    { MSILO_EVERSION, "MSILO_EVERSION", "unsupported interface version" },
    { MSILO_ENOTSUP, "MSILO_ENOTSUP", "operation not supported" },
    { MSILO_ETHREAD, "MSILO_ETHREAD", "called from a thread that does not own the engine's main context" },
    { MSILO_ENOTFOUND, "MSILO_ENOTFOUND", "no such message" },
    { MSILO_ECANCELLED, "MSILO_ECANCELLED", "operation cancelled" },
    { MSILO_EMETHOD, "MSILO_EMETHOD", "request method is not MESSAGE" },
    { MSILO_ETIMEDOUT, "MSILO_ETIMEDOUT", "timed out" },
    { MSILO_EBUSY, "MSILO_EBUSY", "resource busy" },
    { MSILO_ESHUTDOWN, "MSILO_ESHUTDOWN", "the engine is shutting down" },
    { MSILO_ETRANSIENT, "MSILO_ETRANSIENT", "transient content is not stored" },
};

const char *msilo_strerror(int code)
{
    for (size_t i = 0; i < G_N_ELEMENTS(errors); i++)
        if (errors[i].code == code)
            return errors[i].text;
    return "unknown error";
}

const char *msilo_error_name(int code)
{
    for (size_t i = 0; i < G_N_ELEMENTS(errors); i++)
        if (errors[i].code == code)
            return errors[i].name;
    return NULL;
}

int msilo_error_sip_status(int code)
{
    switch (code) {
    case MSILO_OK:
        return 202;
    case MSILO_EINVAL:
    case MSILO_EURI:
    case MSILO_EMISSING:
    case MSILO_ETIME:
        return 400;
    case MSILO_ETOOBIG:
        return 413;
    case MSILO_EFULL:
        return 486;
    case MSILO_EMETHOD:
        return 405;
    case MSILO_ETRANSIENT: /* RFC 3994: not stored, the user is not available now */
        return 480;
    case MSILO_ESHUTDOWN: /* 503: try again, here later or at another instance */
    default:
        return 503;
    }
}

/* One detail buffer per thread, freed with the thread. */
static void detail_free(gpointer p)
{
    g_free(p);
}
static GPrivate detail_key = G_PRIVATE_INIT(detail_free);

int msilo_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_private_replace(&detail_key, g_strdup_vprintf(fmt, ap));
    va_end(ap);
    return code;
}

void msilo_error_clear(void)
{
    g_private_replace(&detail_key, NULL);
}

const char *msilo_error_detail(void)
{
    const char *d = g_private_get(&detail_key);
    return d ? d : "";
}
