/*
 * sanitize.h - which sanitizer this file is built with, for the few places
 * that must know: WEFT_ASAN / WEFT_TSAN defined (1) under AddressSanitizer
 * / ThreadSanitizer, with gcc (__SANITIZE_*__) or clang (__has_feature).
 */
#ifndef WEFT_SANITIZE_H
#define WEFT_SANITIZE_H

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#endif
