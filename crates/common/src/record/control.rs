//! Control batches: the COMMIT and ABORT markers a transaction coordinator writes to each
//! partition of a transaction. A control batch is transactional and control (attributes
//! 0x30), has base sequence -1 and one record: key = version 0 (i16) + type (i16: 0 ABORT,
//! 1 COMMIT), value = version 0 (i16) + the coordinator epoch (i32). Readers skip types
//! they do not know.

use bytes::Bytes;

use super::batch::{BatchHeader, RecordBatchBuilder, RecordError};

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    fn wire(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
        }
    }
}

/// One transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMarker {
    pub kind: ControlType,
    pub coordinator_epoch: i32,
}

/// The control batch that ends `producer_id`'s transaction at `producer_epoch`.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: ControlMarker,
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::default();
    builder.producer_id = producer_id;
    builder.producer_epoch = producer_epoch;
    builder.base_sequence = -1;
    builder.transactional = true;
    builder.control = true;
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&marker.kind.wire().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    builder.push(Some(&key), Some(&value), timestamp_ms);
    builder.build()
}

/// The marker a control batch carries; `None` for a control type this version does not
/// know (skipped, as Kafka's readers do). Fails on a batch that is not a control batch or
/// whose record is malformed.
pub fn read_control(
    header: &BatchHeader,
    batch: &Bytes,
) -> Result<Option<ControlMarker>, RecordError> {
    if !header.is_control() {
        return Err(RecordError::Corrupt("not a control batch".into()));
    }
    let records = header.records(batch)?;
    let record = records
        .first()
        .ok_or_else(|| RecordError::Corrupt("a control batch without a record".into()))?;
    let key = record.key.as_deref().unwrap_or_default();
    if key.len() < 4 {
        return Err(RecordError::Corrupt(
            "a control record key is 4 bytes".into(),
        ));
    }
    let kind = match i16::from_be_bytes([key[2], key[3]]) {
        0 => ControlType::Abort,
        1 => ControlType::Commit,
        _ => return Ok(None),
    };
    let value = record.value.as_deref().unwrap_or_default();
    let coordinator_epoch = match value {
        [_, _, a, b, c, d, ..] => i32::from_be_bytes([*a, *b, *c, *d]),
        _ => {
            return Err(RecordError::Corrupt(
                "a control record value is 6 bytes".into(),
            ))
        }
    };
    Ok(Some(ControlMarker {
        kind,
        coordinator_epoch,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(batch: &[u8]) -> BatchHeader {
        match BatchHeader::validate(batch) {
            Ok(h) => h,
            Err(e) => panic!("invalid batch: {e}"),
        }
    }

    #[test]
    fn a_marker_round_trips_in_a_valid_transactional_control_batch() {
        for kind in [ControlType::Commit, ControlType::Abort] {
            let marker = ControlMarker {
                kind,
                coordinator_epoch: 7,
            };
            let batch = control_batch(42, 3, marker, 1_700_000_000_000);
            let header = header_of(&batch);
            assert!(header.is_control() && header.is_transactional());
            assert_eq!(
                (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence
                ),
                (42, 3, -1)
            );
            assert_eq!(header.record_count, 1);
            assert_eq!(read_control(&header, &Bytes::from(batch)), Ok(Some(marker)));
        }
    }

    #[test]
    fn an_unknown_control_type_is_skipped_and_a_data_batch_is_refused() {
        let mut builder = RecordBatchBuilder::default();
        builder.transactional = true;
        builder.control = true;
        builder.push(Some(&[0, 0, 0, 9]), Some(&[0, 0, 0, 0, 0, 1]), 0);
        let batch = builder.build();
        assert_eq!(
            read_control(&header_of(&batch), &Bytes::from(batch)),
            Ok(None)
        );

        let mut data = RecordBatchBuilder::default();
        data.transactional = true;
        data.push(None, Some(b"v"), 0);
        let batch = data.build();
        let header = header_of(&batch);
        assert!(header.is_transactional() && !header.is_control());
        assert!(read_control(&header, &Bytes::from(batch)).is_err());
    }
}
