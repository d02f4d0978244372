/* Build identity. QS_BUILD_HASH is passed by the Makefile: the first 16 hex digits of SHA-256 over the
 * firmware sources and build flags (see firmware/README.md). */
#include "qs.h"

#ifndef QS_BUILD_HASH
#define QS_BUILD_HASH "0000000000000000"
#endif

const char *qs_build_hash(void) { return QS_BUILD_HASH; }
