//! The APIs this listener serves and at which versions. ApiVersions advertises exactly
//! this table (kafka-protocol's own ranges over-report what a broker handles).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

#[derive(Debug, Clone, Copy)]
pub struct ServedApi {
    pub key: ApiKey,
    /// The lowest version advertised.
    pub advertised_min: i16,
    /// The lowest version answered; below it (but advertised) the request is refused.
    pub handled_min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ServedApi {
    ServedApi {
        key,
        advertised_min: min,
        handled_min: min,
        max,
    }
}

/// Every API served. Produce is advertised from v0 but v0-2 are refused: old librdkafka
/// stops compressing unless v0 is advertised, and Kafka does the same (KAFKA-18659).
pub const SERVED: &[ServedApi] = &[
    ServedApi {
        key: ApiKey::Produce,
        advertised_min: 0,
        handled_min: 3,
        max: 12,
    },
    api(ApiKey::Fetch, 4, 12),
    api(ApiKey::ListOffsets, 1, 8),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 4),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::ElectLeaders, 0, 2),
    // KIP-455; v1 of AlterPartitionReassignments (KIP-860's replication factor guard)
    // is not served: clients fall back to v0 with the default of allowing it.
    api(ApiKey::AlterPartitionReassignments, 0, 0),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::OffsetCommit, 2, 8),
    api(ApiKey::OffsetFetch, 1, 8),
    api(ApiKey::JoinGroup, 0, 7),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 4),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 4),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    // Transaction version 1 (librdkafka: AddPartitionsToTxn and AddOffsetsToTxn v0,
    // TxnOffsetCommit 0-3, EndTxn 0-1); v4 of AddPartitionsToTxn is broker-to-broker and
    // EndTxn v5 (KIP-890's epoch bump) is not served to Kafka clients yet.
    api(ApiKey::AddPartitionsToTxn, 0, 3),
    api(ApiKey::AddOffsetsToTxn, 0, 3),
    api(ApiKey::TxnOffsetCommit, 0, 3),
    api(ApiKey::EndTxn, 0, 3),
    // Transaction admin (kafka-transactions.sh): WriteTxnMarkers aborts hanging
    // transactions only; ListTransactions v2's regular-expression filter is not served.
    api(ApiKey::DescribeTransactions, 0, 0),
    api(ApiKey::ListTransactions, 0, 1),
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::WriteTxnMarkers, 1, 1),
    // SASL (KIP-152): SaslHandshake v0 would be followed by raw SASL tokens, which this
    // listener does not read; every client that sends v1 uses SaslAuthenticate.
    api(ApiKey::SaslHandshake, 1, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    // ACLs (kafka-acls.sh, AdminClient); v0 (no pattern types) is gone from the crate.
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
];

/// The entry for `key`, if served.
pub fn served(key: ApiKey) -> Option<&'static ServedApi> {
    SERVED.iter().find(|a| a.key == key)
}

/// What `key` at `version` gets: answered, refused though advertised, or unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Handled,
    Refused,
    Unsupported,
}

pub fn support(key: ApiKey, version: i16) -> Support {
    match served(key) {
        Some(a) if (a.handled_min..=a.max).contains(&version) => Support::Handled,
        Some(a) if (a.advertised_min..=a.max).contains(&version) => Support::Refused,
        _ => Support::Unsupported,
    }
}

/// The ApiVersions answer; `error_code` 35 (UNSUPPORTED_VERSION) goes out as v0.
pub fn api_versions(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(
            SERVED
                .iter()
                .map(|a| {
                    ApiVersion::default()
                        .with_api_key(a.key as i16)
                        .with_min_version(a.advertised_min)
                        .with_max_version(a.max)
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handled_version_has_a_layout_to_walk_and_kafka_protocol_decodes_it() {
        for a in SERVED {
            let layout = crate::walk::message(a.key as i16).expect("a layout");
            assert!(
                layout.versions.0 <= a.handled_min && a.max <= layout.versions.1,
                "{:?}",
                a.key
            );
            let crate_range = a.key.valid_versions();
            assert!(
                crate_range.min <= a.handled_min && a.max <= crate_range.max,
                "{:?}",
                a.key
            );
        }
        assert_eq!(support(ApiKey::Produce, 2), Support::Refused);
        assert_eq!(support(ApiKey::Produce, 9), Support::Handled);
        assert_eq!(support(ApiKey::Produce, 13), Support::Unsupported);
        assert_eq!(support(ApiKey::SaslHandshake, 0), Support::Unsupported);
    }
}
