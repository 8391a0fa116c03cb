//! Kafka's RecordBatch v2 byte layout: the unit of produce, storage, replication and
//! fetch. The leader stamps the base offset and its leader epoch in place (outside the
//! CRC); everything from `attributes` to the end is covered by the CRC32C.
//!
//! ```text
//! 0  baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 (=2)
//! 17 crc u32 (CRC32C of bytes 21..) | 21 attributes i16 | 23 lastOffsetDelta i32
//! 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
//! 53 baseSequence i32 | 57 recordCount i32 | 61 records...
//! record: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//!         keyLength varint (-1 = null), key, valueLength varint, value,
//!         headerCount varint, headers (keyLength varint, key, valueLength varint, value)
//! ```

mod batch;
mod compression;
mod control;
mod varint;

pub use batch::{
    decode_stored, encode_stored, set_base_offset, set_partition_leader_epoch, split_batches,
    BatchHeader, Record, RecordBatchBuilder, RecordError, HEADER_LEN, MAGIC, NO_PRODUCER_ID,
};
pub use compression::{Compression, UnknownCompression, MAX_DECOMPRESSED_BYTES};
pub use control::{control_batch, read_control, ControlMarker, ControlType};
