/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/common.h
 * @brief Export macro, version and the small types shared by every header.
 */
#ifndef MSILO_COMMON_H
#define MSILO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define MSILO_BEGIN_DECLS extern "C" {
#define MSILO_END_DECLS }
#else
#define MSILO_BEGIN_DECLS
#define MSILO_END_DECLS
#endif

/** Marks a symbol as part of the public ABI (the library builds with
 *  -fvisibility=hidden, so everything else stays private). */
#if defined(MSILO_COMPILATION) && defined(__GNUC__)
#define MSILO_API __attribute__((visibility("default")))
#else
#define MSILO_API
#endif

/** Marks a declaration as deprecated: GCC and clang warn where it is used
 *  (-Wdeprecated-declarations); other compilers ignore it. The library's own
 *  code never uses a deprecated function. */
#if defined(__GNUC__) || defined(__clang__)
#define MSILO_DEPRECATED __attribute__((deprecated))
#else
#define MSILO_DEPRECATED
#endif

#define MSILO_VERSION_MAJOR 0
#define MSILO_VERSION_MINOR 2
#define MSILO_VERSION_MICRO 0

MSILO_BEGIN_DECLS

/** The library's version as "MAJOR.MINOR.MICRO" (static string). */
MSILO_API const char *msilo_version(void);

MSILO_END_DECLS

#endif
