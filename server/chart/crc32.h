/*
 * crc32: the gzip CRC-32 (the same function as zlib's crc32()), using the
 * CPU's carry-less multiply (PCLMULQDQ) when it has one: about ten times
 * faster than zlib's table-driven loop, which matters when a chart archive
 * of a few megabytes is checked on every load. Internal to server/chart.
 * Pure function, thread-safe.
 */
#ifndef FERRY_CHART_CRC32_H
#define FERRY_CHART_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* continue crc over buf[0..len): crc32_update(0, ...) starts a new one */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

#endif
