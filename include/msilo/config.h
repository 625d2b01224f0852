/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/config.h
 * @brief Engine configuration: every msilo parameter, by its msilo name.
 *
 * The configuration is an opaque object addressed by key, so that adding an
 * option never changes the ABI. Keys are the parameter names of the OpenSIPS
 * msilo admin guide (db_url, expire_time, sc_from, ...) plus a few of
 * Kamailio's and libmsilo's own; msilo_config_key_at() lists them all with
 * their types and defaults, and doc/admin-guide.md explains each.
 *
 * Deliberate differences from the guide's defaults (see doc/admin-guide.md):
 * - sc_mid defaults to "id" (the column the schemas of Kamailio's and OpenSIPS's msilo modules create), not "mid".
 * - db_url defaults to "postgres://opensips:opensipsrw@localhost/opensips":
 *   the guide's user and database on the one SQL server libmsilo supports.
 *
 * Thread-safety: a config is not synchronised; do not modify it from two
 * threads at once. The engine copies it on msilo_engine_new().
 */
#ifndef MSILO_CONFIG_H
#define MSILO_CONFIG_H

#include <msilo/common.h>

MSILO_BEGIN_DECLS

typedef struct msilo_config msilo_config_t;

typedef enum msilo_config_type {
    MSILO_CONFIG_STRING = 1, /**< string; may be unset (NULL) */
    MSILO_CONFIG_INT = 2,    /**< 64-bit signed integer, range-checked per key */
    MSILO_CONFIG_BOOL = 3,   /**< 0/1 (accepted from strings: 0 1 yes no on off true false) */
} msilo_config_type_t;

/** Description of one key (static data). It grows only by appending
 *  members; the library hands out pointers to its own copies only, never an
 *  array a caller would step through with its own sizeof. */
typedef struct msilo_config_key {
    const char *name;        /**< key name */
    msilo_config_type_t type;
    const char *default_str; /**< default as text; NULL = unset */
    int64_t min, max;        /**< allowed range for INT keys */
    const char *help;        /**< one line */
} msilo_config_key_t;

/**
 * The key number @p i (0, 1, ... in the order of doc/admin-guide.md), to list
 * them all: `for (size_t i = 0; (k = msilo_config_key_at(i)); i++)`.
 * @return static data (do not free), or NULL when @p i is past the last key.
 */
MSILO_API const msilo_config_key_t *msilo_config_key_at(size_t i);

/** The key named @p name. @return static data, or NULL (@p name NULL or unknown). */
MSILO_API const msilo_config_key_t *msilo_config_key_find(const char *name);

/**
 * Creates a configuration holding every default.
 * @return 0, or MSILO_EINVAL if @p ret is NULL.
 * Free with msilo_config_free().
 */
MSILO_API int msilo_config_new(msilo_config_t **ret);

/** Deep copy. @return 0 or MSILO_EINVAL. */
MSILO_API int msilo_config_copy(const msilo_config_t *cfg, msilo_config_t **ret);

/** Frees @p cfg. NULL is a no-op. */
MSILO_API void msilo_config_free(msilo_config_t *cfg);

/**
 * Sets @p key from its text form, whatever its type ("36000", "yes", a
 * string). @p value NULL unsets a string key (ints/bools return to default).
 * @return 0; MSILO_EINVAL for NULL cfg/key; MSILO_ECONFIG for an unknown key
 * or a value that does not parse or is out of range (detail names both).
 */
MSILO_API int msilo_config_set(msilo_config_t *cfg, const char *key, const char *value);

/** Sets an INT or BOOL key. @return 0, MSILO_EINVAL, or MSILO_ECONFIG (unknown key,
 *  wrong type, out of range). */
MSILO_API int msilo_config_set_int(msilo_config_t *cfg, const char *key, int64_t value);

/**
 * Reads a STRING key. @return the value (owned by @p cfg, valid until the key is
 * set again or cfg is freed) or NULL when unset or the key is unknown/not a string.
 */
MSILO_API const char *msilo_config_get_string(const msilo_config_t *cfg, const char *key);

/** Reads an INT or BOOL key into *ret. @return 0, MSILO_EINVAL or MSILO_ECONFIG. */
MSILO_API int msilo_config_get_int(const msilo_config_t *cfg, const char *key, int64_t *ret);

/**
 * Checks the configuration as a whole: templates (from_address, contact_hdr,
 * content_type_hdr, offline_message) use only known variables,
 * offline_message has a content_type_hdr, header values end in CRLF, URIs
 * (from_address when constant, reminder, outbound_proxy) parse.
 * msilo_engine_new() calls it too.
 * @return 0 or MSILO_ECONFIG with a detail naming the key.
 */
MSILO_API int msilo_config_validate(const msilo_config_t *cfg);

/**
 * What msilo_config_load_data() does with a group other than [msilo]: called
 * once with @p key and @p value NULL when the group is met (refuse the whole
 * group by returning an error), then once per key.
 * @param group the group's name
 * @param key a key of @p group, or NULL when the group begins
 * @param value the key's value (escapes resolved), or NULL with @p key
 * @param ret_why on error, a reason (g_malloc()ed; the loader frees it), or
 *        left NULL.
 * @param data the @p data given to msilo_config_load_data()
 * @return 0, or a negative MSILO_E* code to stop loading.
 */
typedef int (*msilo_config_group_fn)(const char *group, const char *key, const char *value,
                                     char **ret_why, void *data);

/**
 * Applies a configuration file's text (GLib key-file format) to @p cfg: each
 * key of the `[msilo]` group is an msilo parameter, by its name in the
 * OpenSIPS msilo admin guide (msilo_config_set(); an empty value restores the
 * default); the keys of any other group go to @p other (NULL: another group
 * is an error). Then the whole set is checked (msilo_config_validate()).
 *
 * Stops at the first error. Keys applied before it stay applied: load into
 * a fresh configuration (or a copy) and drop it on failure.
 *
 * @param cfg the configuration to apply the [msilo] keys to
 * @param text the file's text (NUL-terminated)
 * @param path names the file in error details only (NULL: "configuration").
 * @param other the embedder's groups, or NULL
 * @param data passed to @p other
 * @return 0; MSILO_EINVAL (NULL @p cfg or @p text); MSILO_ECONFIG with a
 *         detail naming the file, line, group and key, e.g.
 *         `msilo.conf:12: [msilo] check_time: invalid configuration value: ...`.
 */
MSILO_API int msilo_config_load_data(msilo_config_t *cfg, const char *text, const char *path,
                                     msilo_config_group_fn other, void *data);

/**
 * msilo_config_load_data() on the contents of the file @p path.
 * @param cfg, other, data as for msilo_config_load_data()
 * @param path the file to read
 * @return as msilo_config_load_data(); MSILO_ECONFIG also when the file
 *         cannot be read (the detail says why).
 */
MSILO_API int msilo_config_load_file(msilo_config_t *cfg, const char *path,
                                     msilo_config_group_fn other, void *data);

MSILO_END_DECLS

#endif
