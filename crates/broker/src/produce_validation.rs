//! What a producer may send to a partition, checked before anything is appended
//! (Kafka's produce validation, with its error codes): exactly one batch, magic 2, a
//! matching CRC, a known codec, records that decode (decompressed if need be) with the
//! count the header claims, no control batch (markers come only from the transaction
//! coordinator), and timestamps that are not negative (-1, "none", is allowed).

use rill_common::record::BatchHeader;

use crate::BrokerError;

pub fn validate_produced(batch: &[u8]) -> Result<BatchHeader, BrokerError> {
    let header = BatchHeader::parse(batch)?;
    if header.size < batch.len() {
        return Err(BrokerError::InvalidRecord(
            "a produce request carries exactly one record batch per partition".into(),
        ));
    }
    let header = BatchHeader::validate(batch)?;
    if header.is_control() {
        return Err(BrokerError::InvalidRecord(
            "producers may not write control batches".into(),
        ));
    }
    if header.base_timestamp < -1 || header.max_timestamp < -1 {
        return Err(BrokerError::InvalidTimestamp(format!(
            "timestamps {} / {} are negative",
            header.base_timestamp, header.max_timestamp
        )));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use rill_common::record::{Compression, RecordBatchBuilder};
    use rill_common::ErrorCode;

    use super::*;

    fn batch(compression: Compression) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new();
        b.compression = compression;
        b.push(Some(b"k"), Some(b"v"), 1_000);
        b.push(None, Some(b"w"), 1_001);
        b.build()
    }

    fn code(r: Result<BatchHeader, BrokerError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn a_batch_of_any_codec_passes() {
        for codec in Compression::ALL {
            let header = validate_produced(&batch(codec)).expect("valid");
            assert_eq!(header.record_count, 2);
            assert_eq!(header.compression().ok(), Some(codec));
        }
    }

    /// An uncompressed batch with `bits` set in its attributes and a CRC that matches.
    fn with_attribute_bits(bits: u8) -> Vec<u8> {
        let mut b = batch(Compression::None);
        b[22] |= bits;
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn what_kafka_refuses_gets_kafkas_codes() {
        let one = batch(Compression::Lz4);
        assert_eq!(
            code(validate_produced(&[one.clone(), one.clone()].concat())),
            Some(ErrorCode::InvalidRecord)
        );
        let mut bad_crc = one.clone();
        *bad_crc.last_mut().expect("bytes") ^= 1;
        assert_eq!(
            code(validate_produced(&bad_crc)),
            Some(ErrorCode::CorruptMessage)
        );
        let mut magic1 = one.clone();
        magic1[16] = 1;
        assert_eq!(
            code(validate_produced(&magic1)),
            Some(ErrorCode::InvalidRecord)
        );
        assert_eq!(
            code(validate_produced(&with_attribute_bits(7))),
            Some(ErrorCode::UnsupportedCompressionType)
        );
        assert_eq!(
            code(validate_produced(&with_attribute_bits(0x20))),
            Some(ErrorCode::InvalidRecord)
        );
        assert_eq!(
            code(validate_produced(&one[..30])),
            Some(ErrorCode::CorruptMessage)
        );
    }
}
