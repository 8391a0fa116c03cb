use bytes::Bytes;

use super::compression::{Compression, MAX_DECOMPRESSED_BYTES};
use super::varint::{get_varint, get_varlong, put_varint, put_varlong};

pub const MAGIC: i8 = 2;
pub const HEADER_LEN: usize = 61;
pub const NO_PRODUCER_ID: i64 = -1;
/// Bytes before the batch length field counts: baseOffset + batchLength.
const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;
/// Attribute bits: the batch belongs to a transaction / is a control batch (markers).
pub(super) const TRANSACTIONAL_BIT: i16 = 0x10;
pub(super) const CONTROL_BIT: i16 = 0x20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record batch is truncated")]
    Truncated,
    #[error("record batch is corrupt: {0}")]
    Corrupt(String),
    #[error("record batch CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unsupported record batch magic {0} (only 2)")]
    UnsupportedMagic(i8),
    #[error("unknown compression codec {0}")]
    UnsupportedCompression(i16),
}

/// One record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The fixed-size header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    /// Length of the whole batch in bytes, header included.
    pub size: usize,
    pub partition_leader_epoch: i32,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta.max(0) as u64
    }

    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    pub fn compression(&self) -> Result<Compression, RecordError> {
        Compression::from_attributes(self.attributes)
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Reads the header of the batch at the start of `buf` without checking the CRC.
    pub fn parse(buf: &[u8]) -> Result<Self, RecordError> {
        if buf.len() < HEADER_LEN {
            return Err(RecordError::Truncated);
        }
        let magic = buf[16] as i8;
        if magic != MAGIC {
            return Err(RecordError::UnsupportedMagic(magic));
        }
        let batch_length = i32_at(buf, 8);
        let size = usize::try_from(batch_length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|s| *s >= HEADER_LEN)
            .ok_or_else(|| RecordError::Corrupt(format!("batch length {batch_length}")))?;
        let base_offset = i64_at(buf, 0);
        let header = Self {
            base_offset: u64::try_from(base_offset)
                .map_err(|_| RecordError::Corrupt(format!("negative base offset {base_offset}")))?,
            size,
            partition_leader_epoch: i32_at(buf, 12),
            crc: u32::from_be_bytes([buf[17], buf[18], buf[19], buf[20]]),
            attributes: i16_at(buf, 21),
            last_offset_delta: i32_at(buf, 23),
            base_timestamp: i64_at(buf, 27),
            max_timestamp: i64_at(buf, 35),
            producer_id: i64_at(buf, 43),
            producer_epoch: i16_at(buf, 51),
            base_sequence: i32_at(buf, 53),
            record_count: i32_at(buf, 57),
        };
        if header.record_count < 1 || header.last_offset_delta != header.record_count - 1 {
            return Err(RecordError::Corrupt(format!(
                "{} records but last offset delta {}",
                header.record_count, header.last_offset_delta
            )));
        }
        Ok(header)
    }

    /// Parses and fully validates the single batch that `buf` must hold exactly: length,
    /// magic, CRC, a known codec, and every record (decompressed if need be) decodes with
    /// dense offset deltas.
    pub fn validate(buf: &[u8]) -> Result<Self, RecordError> {
        let header = Self::parse(buf)?;
        if header.size != buf.len() {
            return Err(RecordError::Corrupt(format!(
                "batch length says {} bytes, got {}",
                header.size,
                buf.len()
            )));
        }
        let computed = crc32c::crc32c(&buf[CRC_START..]);
        if computed != header.crc {
            return Err(RecordError::CrcMismatch {
                stored: header.crc,
                computed,
            });
        }
        header.records_of(buf)?;
        Ok(header)
    }

    /// Decodes every record of a validated batch, decompressing it if need be.
    pub fn records(&self, buf: &Bytes) -> Result<Vec<Record>, RecordError> {
        self.records_of(buf)
    }

    fn records_of(&self, buf: &[u8]) -> Result<Vec<Record>, RecordError> {
        let body = buf.get(HEADER_LEN..).ok_or(RecordError::Truncated)?;
        let body = match self.compression()? {
            Compression::None => Bytes::copy_from_slice(body),
            codec => Bytes::from(codec.decompress(body, MAX_DECOMPRESSED_BYTES)?),
        };
        decode_records(&body, self)
    }
}

/// Stamps the leader-assigned base offset in place (outside the CRC).
pub fn set_base_offset(buf: &mut [u8], base_offset: u64) {
    buf[0..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
}

/// Stamps the leader epoch in place (outside the CRC).
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Decodes the (uncompressed) records that follow a batch header.
fn decode_records(bytes: &Bytes, header: &BatchHeader) -> Result<Vec<Record>, RecordError> {
    let mut pos = 0;
    // Every record takes at least 7 bytes: never allocate by an untrusted count.
    let mut records = Vec::with_capacity((header.record_count as usize).min(bytes.len() / 7));
    for expected_delta in 0..header.record_count {
        let length = get_varint(bytes, &mut pos)?;
        let end = usize::try_from(length)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|e| *e <= bytes.len())
            .ok_or(RecordError::Truncated)?;
        let _attributes = *bytes.get(pos).ok_or(RecordError::Truncated)?;
        pos += 1;
        let timestamp_delta = get_varlong(bytes, &mut pos)?;
        let offset_delta = get_varint(bytes, &mut pos)?;
        if offset_delta != expected_delta {
            return Err(RecordError::Corrupt(format!(
                "offset delta {offset_delta}, expected {expected_delta}"
            )));
        }
        let key = get_nullable(bytes, &mut pos, end)?;
        let value = get_nullable(bytes, &mut pos, end)?;
        let header_count = get_varint(bytes, &mut pos)?;
        let mut headers = Vec::new();
        for _ in 0..header_count.max(0) {
            let name = get_nullable(bytes, &mut pos, end)?.unwrap_or_default();
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| RecordError::Corrupt("header key is not UTF-8".into()))?;
            headers.push((name, get_nullable(bytes, &mut pos, end)?));
        }
        if pos != end {
            return Err(RecordError::Corrupt(
                "record length does not match its fields".into(),
            ));
        }
        records.push(Record {
            offset: header.base_offset + offset_delta as u64,
            timestamp_ms: header.base_timestamp.saturating_add(timestamp_delta),
            key,
            value,
            headers,
        });
    }
    if pos != bytes.len() {
        return Err(RecordError::Corrupt(
            "trailing bytes after the last record".into(),
        ));
    }
    Ok(records)
}

fn get_nullable(buf: &Bytes, pos: &mut usize, end: usize) -> Result<Option<Bytes>, RecordError> {
    let len = get_varint(buf, pos)?;
    if len < 0 {
        return Ok(None);
    }
    let stop = pos
        .checked_add(len as usize)
        .filter(|s| *s <= end)
        .ok_or(RecordError::Truncated)?;
    let value = buf.slice(*pos..stop);
    *pos = stop;
    Ok(Some(value))
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Builds a batch, compressed with `compression`. Base offset 0 and leader epoch -1 until
/// the leader stamps them; producer fields -1 unless set (idempotent producer).
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    records: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub compression: Compression,
    /// The batch belongs to a transaction (its producer's open one).
    pub transactional: bool,
    /// A control batch (transaction markers): only `control::control_batch` sets it.
    pub(super) control: bool,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: -1,
            compression: Compression::None,
            transactional: false,
            control: false,
        }
    }
}

impl RecordBatchBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_compression(compression: Compression) -> Self {
        Self {
            compression,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch will take when built (a close upper bound).
    pub fn estimated_size(&self) -> usize {
        HEADER_LEN + self.records.len()
    }

    /// Appends a record; returns its offset delta within the batch.
    pub fn push(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp_ms: i64) -> i32 {
        let base = *self.base_timestamp.get_or_insert(timestamp_ms);
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        let mut body =
            Vec::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
        body.push(0); // attributes
        put_varlong(&mut body, timestamp_ms - base);
        put_varint(&mut body, self.count);
        put_nullable(&mut body, key);
        put_nullable(&mut body, value);
        put_varint(&mut body, 0); // headers
        put_varint(&mut self.records, body.len() as i32);
        self.records.extend_from_slice(&body);
        self.count += 1;
        self.count - 1
    }

    /// The batch bytes. A codec that fails (it cannot on in-memory data) leaves the
    /// batch uncompressed, which is still a valid batch.
    pub fn build(&self) -> Vec<u8> {
        let (codec, records) = match self.compression {
            Compression::None => (Compression::None, None),
            codec => match codec.compress(&self.records) {
                Ok(packed) => (codec, Some(packed)),
                Err(_) => (Compression::None, None),
            },
        };
        let records = records.as_deref().unwrap_or(&self.records);
        let mut buf = Vec::with_capacity(HEADER_LEN + records.len());
        buf.extend_from_slice(&0i64.to_be_bytes());
        let batch_length = (HEADER_LEN - LOG_OVERHEAD + records.len()) as i32;
        buf.extend_from_slice(&batch_length.to_be_bytes());
        buf.extend_from_slice(&(-1i32).to_be_bytes());
        buf.push(MAGIC as u8);
        buf.extend_from_slice(&[0; 4]); // crc, below
        let mut attributes = codec.attribute_bits();
        if self.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if self.control {
            attributes |= CONTROL_BIT;
        }
        buf.extend_from_slice(&attributes.to_be_bytes());
        buf.extend_from_slice(&(self.count - 1).to_be_bytes());
        let base_timestamp = self.base_timestamp.unwrap_or(0);
        buf.extend_from_slice(&base_timestamp.to_be_bytes());
        buf.extend_from_slice(&self.max_timestamp.max(base_timestamp).to_be_bytes());
        buf.extend_from_slice(&self.producer_id.to_be_bytes());
        buf.extend_from_slice(&self.producer_epoch.to_be_bytes());
        buf.extend_from_slice(&self.base_sequence.to_be_bytes());
        buf.extend_from_slice(&self.count.to_be_bytes());
        buf.extend_from_slice(records);
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf
    }
}

fn put_nullable(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        None => put_varint(out, -1),
        Some(d) => {
            put_varint(out, d.len() as i32);
            out.extend_from_slice(d);
        }
    }
}

/// Splits concatenated batches (a fetch response) into `(header, bytes)` pairs,
/// validating each.
pub fn split_batches(buf: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, RecordError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let header = BatchHeader::parse(&buf[pos..])?;
        let end = pos
            .checked_add(header.size)
            .filter(|e| *e <= buf.len())
            .ok_or(RecordError::Truncated)?;
        let batch = buf.slice(pos..end);
        BatchHeader::validate(&batch)?;
        out.push((header, batch));
        pos = end;
    }
    Ok(out)
}

/// The storage envelope: the batch followed by a CRC32C of all of it, so a flipped
/// byte anywhere (also in the base offset and leader epoch, which the batch CRC does
/// not cover) is caught when the stored value is read.
pub fn encode_stored(batch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len() + 4);
    out.extend_from_slice(batch);
    out.extend_from_slice(&crc32c::crc32c(batch).to_be_bytes());
    out
}

/// Checks the envelope and the batch; returns the batch bytes and header.
pub fn decode_stored(stored: &[u8]) -> Result<(BatchHeader, &[u8]), RecordError> {
    let split = stored.len().checked_sub(4).ok_or(RecordError::Truncated)?;
    let (batch, tail) = stored.split_at(split);
    let stored_crc = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = crc32c::crc32c(batch);
    if stored_crc != computed {
        return Err(RecordError::CrcMismatch {
            stored: stored_crc,
            computed,
        });
    }
    let header = BatchHeader::parse(batch)?;
    if header.size != batch.len() {
        return Err(RecordError::Corrupt("stored batch length mismatch".into()));
    }
    Ok((header, batch))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

    fn records() -> impl Strategy<Value = Vec<Rec>> {
        prop::collection::vec(
            (
                prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
                0i64..4_000_000_000_000,
            ),
            1..20,
        )
    }

    fn build(recs: &[Rec]) -> Vec<u8> {
        build_with(recs, Compression::None)
    }

    fn build_with(recs: &[Rec], compression: Compression) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new();
        b.compression = compression;
        for (k, v, ts) in recs {
            b.push(k.as_deref(), v.as_deref(), *ts);
        }
        b.build()
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(recs in records(), base in 0u64..1 << 50, epoch in 0i32..1000, codec in 0usize..5) {
            let mut buf = build_with(&recs, Compression::ALL[codec]);
            set_base_offset(&mut buf, base);
            set_partition_leader_epoch(&mut buf, epoch);
            let header = BatchHeader::validate(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(header.base_offset, base);
            prop_assert_eq!(header.partition_leader_epoch, epoch);
            prop_assert_eq!(header.record_count as usize, recs.len());
            prop_assert_eq!(header.last_offset(), base + recs.len() as u64 - 1);
            let decoded = header.records(&Bytes::from(buf)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (i, (r, (k, v, ts))) in decoded.iter().zip(&recs).enumerate() {
                prop_assert_eq!(r.offset, base + i as u64);
                prop_assert_eq!(r.key.as_deref(), k.as_deref());
                prop_assert_eq!(r.value.as_deref(), v.as_deref());
                prop_assert_eq!(r.timestamp_ms, *ts);
            }
        }

        #[test]
        fn a_flipped_byte_in_the_protected_part_is_caught(recs in records(), at in any::<prop::sample::Index>(), bit in 0u8..8, codec in 0usize..5) {
            let buf = build_with(&recs, Compression::ALL[codec]);
            // Everything but the base offset and leader epoch, which the leader stamps.
            let protected: Vec<usize> = (8..12).chain(16..buf.len()).collect();
            let i = protected[at.index(protected.len())];
            let mut bad = buf.clone();
            bad[i] ^= 1 << bit;
            prop_assert!(BatchHeader::validate(&bad).is_err(), "flip at {} not caught", i);
        }

        #[test]
        fn a_flipped_byte_anywhere_in_a_stored_batch_is_caught(recs in records(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let stored = encode_stored(&build(&recs));
            prop_assert!(decode_stored(&stored).is_ok());
            let mut bad = stored.clone();
            let i = at.index(bad.len());
            bad[i] ^= 1 << bit;
            prop_assert!(decode_stored(&bad).is_err(), "flip at {} not caught", i);
        }
    }

    #[test]
    fn truncated_and_concatenated_batches() {
        let a = build(&[(None, Some(b"a".to_vec()), 1)]);
        let b = build(&[
            (Some(b"k".to_vec()), Some(b"bb".to_vec()), 2),
            (None, None, 3),
        ]);
        assert!(BatchHeader::validate(&a[..a.len() - 1]).is_err());
        let both = Bytes::from([a.clone(), b.clone()].concat());
        let split = split_batches(&both).unwrap_or_default();
        assert_eq!(split.len(), 2);
        assert_eq!(split[1].0.record_count, 2);
        assert!(split_batches(&both.slice(..both.len() - 2)).is_err());
    }
}
