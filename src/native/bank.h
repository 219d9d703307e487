/*
 * A process-wide bank of memory that is already faulted in. Buffers that live for one job (an
 * entry's compressed pieces gathered into one, a stream's input and output window) are mapped
 * fresh for it, and every page of a fresh mapping costs a fault the first time it is written:
 * at 2 GiB of archive that was about 50,000 of the load's faults. Here a buffer's memory is
 * made of chunks moved (mremap: page tables, no copy, no fault) from the bank, and given back
 * to it afterwards, so the same pages serve one job after another.
 *
 * The bank holds at most BANK_KEEP chunks; what it cannot hold is unmapped. Any thread may
 * take or give (a mutex guards the bank). Without a chunk to give, a buffer's pages are simply
 * fresh, as before.
 */
#ifndef SNAPLOADER_BANK_H
#define SNAPLOADER_BANK_H

#include <stddef.h>

/* The bank's unit: a buffer's length is rounded up to a multiple of it. */
#define BANK_CHUNK (256 * 1024)
/* Chunks the bank keeps at most (16 MiB). */
#define BANK_KEEP 64

/* len rounded up to BANK_CHUNK. */
size_t bank_round(size_t len);

/*
 * A private anonymous mapping of bank_round(len) bytes, its first `fill` bytes (rounded up)
 * made of the bank's chunks where it has them. MAP_FAILED without memory (errno set).
 */
void *bank_map(size_t len, size_t fill);

/* Gives [p, p + bank_round(len)) back: chunk by chunk to the bank while it has room, the rest unmapped. */
void bank_unmap(void *p, size_t len);

#endif
