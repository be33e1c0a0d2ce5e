/* TensorBoard event files: scalars a run writes beside metrics.jsonl so that
 * `tensorboard --logdir outputs` shows them. One file per writer,
 * <dir>/events.out.tfevents.<unix time>.<hostname>, in TFRecord framing: each record is a
 * little-endian uint64 length, the masked CRC32C of those 8 bytes, the data, the masked CRC32C
 * of the data. The first record is an Event with wall_time and file_version "brain.Event:2";
 * each later one an Event with wall_time, step and a Summary of one or more
 * Value{tag, simple_value}. docs/metrics.md has the tags the run writes and why the format is
 * encoded here rather than through a library.
 *
 * Use from one thread (rank 0). Every function accepts a NULL writer and then does nothing, so a
 * caller can keep NULL where opening failed or on the other ranks. A write error is logged once
 * as a warning; from then on the writer drops what it is given and the run goes on. */
#ifndef CRAM_CORE_TBOARD_H
#define CRAM_CORE_TBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tboard tboard;

/* Create dir (and parents) if missing and a new event file in it, with the file_version record
 * written. When a file of that name exists (two writers in one second), ".<pid>.<n>" is added.
 * Returns NULL with a message in err when the folder or the file cannot be made. */
tboard *tboard_open(const char *dir, char *err, size_t errlen);

/* Buffer one scalar. Consecutive scalars of the same step share one Event (wall time of the
 * first). The tag keeps [A-Za-z0-9_./-] and has any other byte replaced by '_' (TensorBoard's
 * rule; the file must hold valid UTF-8), at most 255 bytes; an empty tag is dropped. The value
 * is stored as a float, as TensorBoard's simple_value is one; NaN and infinities are kept. */
void tboard_scalar(tboard *tb, const char *tag, int64_t step, double value);

/* Write everything buffered to the file (to the kernel: a crash of the process loses nothing
 * flushed; the file is fsync'ed at close). Call at each print step and after validation. */
void tboard_flush(tboard *tb);

/* Flush, fsync, close and free. */
void tboard_close(tboard *tb);

/* The event file's path ("" for NULL), and whether every write so far succeeded. */
const char *tboard_path(const tboard *tb);
bool tboard_ok(const tboard *tb);

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF):
 * "123456789" gives 0xE3069283. And TFRecord's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t tboard_crc32c(const void *data, size_t n);
uint32_t tboard_mask_crc(uint32_t crc);

#endif
