use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::*;

/// Every request this listener decodes, with content in its arrays so nested layouts
/// are walked too.
fn samples() -> Vec<(ApiKey, RequestKind)> {
    let name = || TopicName(StrBytes::from_static_str("orders"));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(2)
                    .with_records(Some(Bytes::from_static(b"batch"))),
            ])]);
    let fetch = FetchRequest::default()
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name())
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(1)
                .with_fetch_offset(7)])])
        .with_forgotten_topics_data(vec![fetch_request::ForgottenTopic::default()
            .with_topic(name())
            .with_partitions(vec![1, 2])])
        .with_rack_id(StrBytes::from_static_str("rack"));
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name())),
    ]));
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name())
            .with_num_partitions(3)
            .with_assignments(vec![
                create_topics_request::CreatableReplicaAssignment::default()
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
            ])
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1000")))]),
    ]);
    let list_offsets = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(name())
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()]),
    ]);
    let configs = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_name(StrBytes::from_static_str("orders"))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("a")])),
    ]);
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_name(StrBytes::from_static_str("orders"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("a")),
            ]),
    ]);
    let epochs = OffsetForLeaderEpochRequest::default().with_topics(vec![
        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(name())
            .with_partitions(vec![
                offset_for_leader_epoch_request::OffsetForLeaderPartition::default(),
            ]),
    ]);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name())
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default(),
                ]),
        ]);
    vec![
        (ApiKey::Produce, RequestKind::Produce(produce)),
        (ApiKey::Fetch, RequestKind::Fetch(fetch)),
        (ApiKey::Metadata, RequestKind::Metadata(metadata)),
        (ApiKey::CreateTopics, RequestKind::CreateTopics(create)),
        (ApiKey::ListOffsets, RequestKind::ListOffsets(list_offsets)),
        (
            ApiKey::DescribeConfigs,
            RequestKind::DescribeConfigs(configs),
        ),
        (
            ApiKey::IncrementalAlterConfigs,
            RequestKind::IncrementalAlterConfigs(alter),
        ),
        (
            ApiKey::OffsetForLeaderEpoch,
            RequestKind::OffsetForLeaderEpoch(epochs),
        ),
        (ApiKey::OffsetCommit, RequestKind::OffsetCommit(commit)),
        (
            ApiKey::ApiVersions,
            RequestKind::ApiVersions(Default::default()),
        ),
        (
            ApiKey::InitProducerId,
            RequestKind::InitProducerId(Default::default()),
        ),
        (
            ApiKey::DeleteTopics,
            RequestKind::DeleteTopics(Default::default()),
        ),
        (
            ApiKey::CreatePartitions,
            RequestKind::CreatePartitions(Default::default()),
        ),
        (
            ApiKey::AlterConfigs,
            RequestKind::AlterConfigs(Default::default()),
        ),
        (
            ApiKey::DescribeCluster,
            RequestKind::DescribeCluster(Default::default()),
        ),
        (
            ApiKey::DeleteRecords,
            RequestKind::DeleteRecords(Default::default()),
        ),
        (
            ApiKey::ElectLeaders,
            RequestKind::ElectLeaders(Default::default()),
        ),
        (
            ApiKey::FindCoordinator,
            RequestKind::FindCoordinator(Default::default()),
        ),
        (
            ApiKey::JoinGroup,
            RequestKind::JoinGroup(Default::default()),
        ),
        (
            ApiKey::Heartbeat,
            RequestKind::Heartbeat(Default::default()),
        ),
        (
            ApiKey::LeaveGroup,
            RequestKind::LeaveGroup(Default::default()),
        ),
        (
            ApiKey::SyncGroup,
            RequestKind::SyncGroup(Default::default()),
        ),
        (
            ApiKey::DescribeGroups,
            RequestKind::DescribeGroups(Default::default()),
        ),
        (
            ApiKey::ListGroups,
            RequestKind::ListGroups(Default::default()),
        ),
        (
            ApiKey::OffsetFetch,
            RequestKind::OffsetFetch(Default::default()),
        ),
        (
            ApiKey::DeleteGroups,
            RequestKind::DeleteGroups(Default::default()),
        ),
        (
            ApiKey::OffsetDelete,
            RequestKind::OffsetDelete(Default::default()),
        ),
        (
            ApiKey::AlterPartitionReassignments,
            RequestKind::AlterPartitionReassignments(Default::default()),
        ),
        (
            ApiKey::ListPartitionReassignments,
            RequestKind::ListPartitionReassignments(Default::default()),
        ),
    ]
}

fn encoded() -> Vec<(ApiKey, i16, Bytes)> {
    let mut out = Vec::new();
    for (key, request) in samples() {
        let layout = message(key as i16).expect("a layout for every sample");
        for version in layout.versions.0..=layout.versions.1 {
            let mut buf = BytesMut::new();
            // Some sample contents do not exist in every version; those are skipped.
            if request.encode(&mut buf, version).is_ok() {
                out.push((key, version, buf.freeze()));
            }
        }
    }
    out
}

#[test]
fn every_request_the_crate_encodes_walks_exactly() {
    let all = encoded();
    assert!(all.len() > 150, "only {} samples encoded", all.len());
    for (key, version, body) in all {
        let layout = message(key as i16).expect("layout");
        assert_eq!(
            walk(layout, version, &body),
            Ok(body.len()),
            "{key:?} v{version}"
        );
        let mut decode = body.clone();
        assert!(
            RequestKind::decode(key, &mut decode, version).is_ok(),
            "{key:?} v{version}"
        );
    }
}

#[test]
fn a_truncated_body_never_walks() {
    for (key, version, body) in encoded() {
        let layout = message(key as i16).expect("layout");
        for cut in 0..body.len() {
            assert!(
                walk(layout, version, &body[..cut]).is_err(),
                "{key:?} v{version} cut at {cut}"
            );
        }
        let mut longer = body.to_vec();
        longer.push(0);
        assert_eq!(
            walk(layout, version, &longer),
            Ok(body.len()),
            "{key:?} v{version} with a trailing byte"
        );
    }
}

#[test]
fn an_absurd_count_is_refused_before_anything_is_decoded() {
    // Metadata v1: topics array with 2^31 - 1 entries in an 4-byte body.
    let body = i32::MAX.to_be_bytes();
    assert!(matches!(
        walk(message(3).expect("metadata"), 1, &body),
        Err(WalkError::ImpossibleCount { .. })
    ));
    // Produce v9 (flexible): transactional id null, acks, timeout, a huge compact count.
    let mut body = vec![0u8, 0xff, 0xff, 0, 0, 0, 100];
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(walk(message(0).expect("produce"), 9, &body).is_err());
}

#[test]
fn a_tagged_value_must_fill_its_declared_size() {
    // Fetch v12 with an empty body but for a tagged cluster id whose size lies.
    let mut buf = BytesMut::new();
    let fetch = RequestKind::Fetch(FetchRequest::default());
    fetch.encode(&mut buf, 12).expect("encode");
    let mut body = buf.to_vec();
    let last = body.len() - 1;
    assert_eq!(body[last], 0, "no tagged fields");
    body[last] = 1; // one tagged field:
    body.extend_from_slice(&[0, 5, 3, b'a', b'b']); // tag 0, size 5, compact string "ab"
    assert!(matches!(
        walk(message(1).expect("fetch"), 12, &body),
        Err(WalkError::TagSize { .. })
    ));
}

#[test]
fn null_arrays_walk_and_librdkafkas_padded_null_too() {
    // librdkafka 2.x, Metadata v12 for every topic: a 4-byte slot for the null count.
    let padded = [0u8, 0, 0, 0, 1, 0, 0];
    assert_eq!(walk(message(3).expect("m"), 12, &padded), Ok(4));
    for version in [1i16, 4, 9, 12] {
        let mut buf = BytesMut::new();
        RequestKind::Metadata(MetadataRequest::default().with_topics(None))
            .encode(&mut buf, version)
            .expect("encode");
        assert_eq!(
            walk(message(3).expect("m"), version, &buf),
            Ok(buf.len()),
            "v{version}"
        );
    }
}
