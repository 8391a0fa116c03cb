//! The walk: a request body is checked against its layout before kafka-protocol decodes
//! it. kafka-protocol trusts array counts from the wire (`Vec::with_capacity(n)`), so an
//! 8-byte frame could ask for gigabytes; the walk visits every field without allocating,
//! and refuses a count larger than the bytes left could hold. Only a body that walks is
//! decoded, so decoding allocates in proportion to bytes that are really there.
//!
//! Bytes after the end of the layout are tolerated, as Kafka does: librdkafka 2.x sends
//! a null compact array in a 4-byte slot it reserved (`00 00 00 00`), which leaves three
//! zero bytes after its Metadata request.
//!
//! The layouts (`schemas.rs`) are generated from kafka-protocol's own decoders by
//! `tools/gen_walk_schemas.py`; a test walks every request the crate encodes.

mod schemas;

use thiserror::Error;

/// A field type as laid out on the wire. Strings, bytes and arrays are compact (unsigned
/// varint length + 1, 0 = null) in flexible versions, else i16 / i32 lengths (-1 = null).
#[derive(Debug)]
pub(crate) enum Ty {
    I8,
    I16,
    I32,
    I64,
    Uuid,
    Str,
    Bytes,
    Struct(&'static Struct),
    Array(&'static Ty),
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Ty,
    /// The versions (inclusive) the field is in.
    pub versions: (i16, i16),
    /// A tagged field (in the tagged-field section of flexible versions).
    pub tag: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct Struct {
    pub name: &'static str,
    pub fields: &'static [Field],
}

#[derive(Debug)]
pub(crate) struct Message {
    pub versions: (i16, i16),
    pub flexible_from: i16,
    pub body: &'static Struct,
}

impl Message {
    pub fn is_flexible(&self, version: i16) -> bool {
        version >= self.flexible_from
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WalkError {
    #[error("the body ends inside {0}")]
    Truncated(&'static str),
    #[error("{field}: a count of {count} cannot fit in the {left} bytes left")]
    ImpossibleCount {
        field: &'static str,
        count: u64,
        left: usize,
    },
    #[error("{field}: bad length {length}")]
    BadLength { field: &'static str, length: i64 },
    #[error("tagged field {tag} of {name} is {declared} bytes but its value took {used}")]
    TagSize {
        name: &'static str,
        tag: u32,
        declared: usize,
        used: usize,
    },
    #[error("nesting too deep")]
    TooDeep,
    #[error("version {0} is not in this message's range")]
    Version(i16),
}

/// How deep structs may nest (the deepest request layout is 4).
const MAX_DEPTH: usize = 8;

/// Walks `body` as `message` at `version`; returns how many bytes the layout took.
pub(crate) fn walk(message: &Message, version: i16, body: &[u8]) -> Result<usize, WalkError> {
    if version < message.versions.0 || version > message.versions.1 {
        return Err(WalkError::Version(version));
    }
    let mut cursor = Cursor {
        buf: body,
        pos: 0,
        flexible: message.is_flexible(version),
        version,
    };
    cursor.walk_struct(message.body, 0)?;
    Ok(cursor.pos)
}

/// The layout of a request, if this listener decodes its key.
pub(crate) fn message(api_key: i16) -> Option<&'static Message> {
    use schemas::*;
    Some(match api_key {
        0 => &produce_request::MESSAGE,
        1 => &fetch_request::MESSAGE,
        2 => &list_offsets_request::MESSAGE,
        3 => &metadata_request::MESSAGE,
        8 => &offset_commit_request::MESSAGE,
        9 => &offset_fetch_request::MESSAGE,
        10 => &find_coordinator_request::MESSAGE,
        11 => &join_group_request::MESSAGE,
        12 => &heartbeat_request::MESSAGE,
        13 => &leave_group_request::MESSAGE,
        14 => &sync_group_request::MESSAGE,
        15 => &describe_groups_request::MESSAGE,
        16 => &list_groups_request::MESSAGE,
        17 => &sasl_handshake_request::MESSAGE,
        18 => &api_versions_request::MESSAGE,
        19 => &create_topics_request::MESSAGE,
        20 => &delete_topics_request::MESSAGE,
        21 => &delete_records_request::MESSAGE,
        22 => &init_producer_id_request::MESSAGE,
        23 => &offset_for_leader_epoch_request::MESSAGE,
        24 => &add_partitions_to_txn_request::MESSAGE,
        25 => &add_offsets_to_txn_request::MESSAGE,
        26 => &end_txn_request::MESSAGE,
        27 => &write_txn_markers_request::MESSAGE,
        28 => &txn_offset_commit_request::MESSAGE,
        29 => &describe_acls_request::MESSAGE,
        30 => &create_acls_request::MESSAGE,
        31 => &delete_acls_request::MESSAGE,
        32 => &describe_configs_request::MESSAGE,
        33 => &alter_configs_request::MESSAGE,
        36 => &sasl_authenticate_request::MESSAGE,
        37 => &create_partitions_request::MESSAGE,
        42 => &delete_groups_request::MESSAGE,
        43 => &elect_leaders_request::MESSAGE,
        44 => &incremental_alter_configs_request::MESSAGE,
        45 => &alter_partition_reassignments_request::MESSAGE,
        46 => &list_partition_reassignments_request::MESSAGE,
        47 => &offset_delete_request::MESSAGE,
        60 => &describe_cluster_request::MESSAGE,
        61 => &describe_producers_request::MESSAGE,
        65 => &describe_transactions_request::MESSAGE,
        66 => &list_transactions_request::MESSAGE,
        _ => return None,
    })
}

/// The layouts inside group requests: a Kafka consumer's subscription and assignment
/// (each preceded by its own i16 version, versions above 3 read as 3).
pub(crate) fn consumer_subscription() -> &'static Message {
    &schemas::consumer_protocol_subscription::MESSAGE
}

pub(crate) fn consumer_assignment() -> &'static Message {
    &schemas::consumer_protocol_assignment::MESSAGE
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
    version: i16,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), WalkError> {
        if n > self.left() {
            return Err(WalkError::Truncated(what));
        }
        self.pos += n;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WalkError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or(WalkError::Truncated(what))?;
        self.pos += N;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, WalkError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let [byte] = self.fixed::<1>(what)?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WalkError::BadLength {
            field: what,
            length: -1,
        })
    }

    /// A length prefix: `Some(n)` or `None` for null.
    fn length(&mut self, short: bool, what: &'static str) -> Result<Option<u64>, WalkError> {
        if self.flexible {
            return Ok(self.varint(what)?.checked_sub(1));
        }
        let length = if short {
            i64::from(i16::from_be_bytes(self.fixed::<2>(what)?))
        } else {
            i64::from(i32::from_be_bytes(self.fixed::<4>(what)?))
        };
        match length {
            -1 => Ok(None),
            n if n >= 0 => Ok(Some(n as u64)),
            length => Err(WalkError::BadLength {
                field: what,
                length,
            }),
        }
    }

    fn walk_struct(&mut self, s: &'static Struct, depth: usize) -> Result<(), WalkError> {
        if depth > MAX_DEPTH {
            return Err(WalkError::TooDeep);
        }
        let version = self.version;
        let present = move |f: &&Field| f.versions.0 <= version && version <= f.versions.1;
        for field in s.fields.iter().filter(present).filter(|f| f.tag.is_none()) {
            self.walk_value(&field.ty, field.name, depth)?;
        }
        if !self.flexible {
            return Ok(());
        }
        let tags = self.varint(s.name)?;
        if tags > self.left() as u64 {
            return Err(WalkError::ImpossibleCount {
                field: s.name,
                count: tags,
                left: self.left(),
            });
        }
        for _ in 0..tags {
            let tag = self.varint(s.name)?;
            let size = self.varint(s.name)? as usize;
            let known = s
                .fields
                .iter()
                .filter(present)
                .find(|f| f.tag.is_some_and(|t| u64::from(t) == tag));
            match known {
                // kafka-protocol decodes a known tag's value without bounding it by
                // the declared size: the value must take exactly that size.
                Some(field) => {
                    let start = self.pos;
                    self.walk_value(&field.ty, field.name, depth)?;
                    let used = self.pos - start;
                    if used != size {
                        return Err(WalkError::TagSize {
                            name: s.name,
                            tag: tag as u32,
                            declared: size,
                            used,
                        });
                    }
                }
                None => self.skip(size, s.name)?,
            }
        }
        Ok(())
    }

    fn walk_value(&mut self, ty: &Ty, name: &'static str, depth: usize) -> Result<(), WalkError> {
        match ty {
            Ty::I8 => self.skip(1, name),
            Ty::I16 => self.skip(2, name),
            Ty::I32 => self.skip(4, name),
            Ty::I64 => self.skip(8, name),
            Ty::Uuid => self.skip(16, name),
            Ty::Str | Ty::Bytes => match self.length(matches!(ty, Ty::Str), name)? {
                Some(n) => self.skip(usize::try_from(n).unwrap_or(usize::MAX), name),
                None => Ok(()),
            },
            Ty::Struct(s) => self.walk_struct(s, depth + 1),
            Ty::Array(element) => {
                let Some(count) = self.length(false, name)? else {
                    return Ok(());
                };
                // Every element takes at least one byte on the wire.
                if count > self.left() as u64 {
                    return Err(WalkError::ImpossibleCount {
                        field: name,
                        count,
                        left: self.left(),
                    });
                }
                for _ in 0..count {
                    self.walk_value(element, name, depth)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
