//! The compression codecs of a record batch (attribute bits 0-2): the records after the
//! 61-byte header are compressed as one block. Batches are stored and served as produced;
//! the broker decompresses only to validate, a client to read.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use super::batch::RecordError;

/// Bits 0-2 of a batch's `attributes`.
pub const COMPRESSION_MASK: i16 = 0x07;
/// A decompressed batch larger than this is refused (a small compressed batch must not
/// make a broker or client allocate without bound).
pub const MAX_DECOMPRESSED_BYTES: usize = 128 << 20;
/// The stream header of snappy-java's framing (Kafka's Java client, kafka-python); bare
/// snappy blocks (librdkafka) have none.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
const XERIAL_HEADER_LEN: usize = 16;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    /// The codec a batch's attributes name; 5-7 are not codecs.
    pub fn from_attributes(attributes: i16) -> Result<Self, RecordError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(RecordError::UnsupportedCompression(other)),
        }
    }

    pub fn attribute_bits(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, RecordError> {
        let failed =
            |e: &dyn fmt::Display| RecordError::Corrupt(format!("{self} compression: {e}"));
        match self {
            Self::None => Ok(data.to_vec()),
            Self::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).map_err(|e| failed(&e))?;
                encoder.finish().map_err(|e| failed(&e))
            }
            Self::Snappy => snap::raw::Encoder::new()
                .compress_vec(data)
                .map_err(|e| failed(&e)),
            Self::Lz4 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder.write_all(data).map_err(|e| failed(&e))?;
                encoder.finish().map_err(|e| failed(&e))
            }
            Self::Zstd => zstd::stream::encode_all(data, 3).map_err(|e| failed(&e)),
        }
    }

    /// Decompresses at most `limit` bytes; more is an error, never an allocation.
    pub fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
        let failed = |e: &dyn fmt::Display| RecordError::Corrupt(format!("{self} data: {e}"));
        match self {
            Self::None => Ok(data.to_vec()),
            Self::Gzip => read_bounded(flate2::read::GzDecoder::new(data), limit, self),
            Self::Snappy => decompress_snappy(data, limit),
            Self::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data), limit, self),
            Self::Zstd => {
                let decoder =
                    zstd::stream::read::Decoder::with_buffer(data).map_err(|e| failed(&e))?;
                read_bounded(decoder, limit, self)
            }
        }
    }
}

fn read_bounded(
    reader: impl Read,
    limit: usize,
    codec: Compression,
) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| RecordError::Corrupt(format!("{codec} data: {e}")))?;
    if out.len() > limit {
        return Err(too_large(codec, limit));
    }
    Ok(out)
}

fn too_large(codec: Compression, limit: usize) -> RecordError {
    RecordError::Corrupt(format!(
        "{codec} batch decompresses to more than {limit} bytes"
    ))
}

fn decompress_snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    let corrupt = |e: &dyn fmt::Display| RecordError::Corrupt(format!("snappy data: {e}"));
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), RecordError> {
        let len = snap::raw::decompress_len(block).map_err(|e| corrupt(&e))?;
        if out.len().saturating_add(len) > limit {
            return Err(too_large(Compression::Snappy, limit));
        }
        let start = out.len();
        out.resize(start + len, 0);
        let written = decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt(&e))?;
        out.truncate(start + written);
        Ok(())
    };
    let mut out = Vec::new();
    if !data.starts_with(XERIAL_MAGIC) {
        block(data, &mut out)?;
        return Ok(out);
    }
    // snappy-java framing: magic, version, compatible version, then (length, block)...
    let mut rest = data
        .get(XERIAL_HEADER_LEN..)
        .ok_or(RecordError::Truncated)?;
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::Truncated)?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let chunk = rest.get(4..4 + len).ok_or(RecordError::Truncated)?;
        block(chunk, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a codec (none, gzip, snappy, lz4, zstd).
#[derive(Debug, thiserror::Error)]
#[error("unknown compression {0:?} (none, gzip, snappy, lz4, zstd)")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCompression(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_names_itself() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in Compression::ALL {
            let packed = codec.compress(&data).unwrap_or_default();
            assert_eq!(
                codec.decompress(&packed, data.len()).ok(),
                Some(data.clone()),
                "{codec}"
            );
            assert_eq!(codec.as_str().parse::<Compression>().ok(), Some(codec));
            let bits = codec.attribute_bits();
            assert_eq!(Compression::from_attributes(bits | 0x30).ok(), Some(codec));
        }
        assert!(Compression::from_attributes(5).is_err());
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let data = vec![0u8; 1 << 20];
        for codec in Compression::ALL.into_iter().skip(1) {
            let packed = codec.compress(&data).unwrap_or_default();
            assert!(packed.len() < data.len() / 10, "{codec}");
            assert!(codec.decompress(&packed, 1000).is_err(), "{codec}");
        }
    }

    #[test]
    fn snappy_reads_the_java_framing_too() {
        let data = b"hello hello hello hello".repeat(100);
        let block = snap::raw::Encoder::new()
            .compress_vec(&data)
            .unwrap_or_default();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        for half in [&block, &block] {
            framed.extend_from_slice(&(half.len() as u32).to_be_bytes());
            framed.extend_from_slice(half);
        }
        let out = Compression::Snappy
            .decompress(&framed, 1 << 20)
            .unwrap_or_default();
        assert_eq!(out, [data.clone(), data].concat());
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        for codec in Compression::ALL.into_iter().skip(1) {
            assert!(
                codec.decompress(b"\x00\x01garbage\xff", 1 << 20).is_err(),
                "{codec}"
            );
        }
    }
}
