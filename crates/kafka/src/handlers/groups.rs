//! FindCoordinator (groups and transactions), OffsetCommit and OffsetFetch on the group
//! coordinator the gRPC GroupService uses (it runs on the active controller; other nodes answer
//! NOT_COORDINATOR and clients look for it again).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{Operation, ResourceType};
use rill_common::listeners::host_port;
use rill_common::ErrorCode;
use rill_metadata::OffsetCommit;

use super::data::topic_name;
use super::{code, Context};

/// FindCoordinator key types.
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// Where a group's or a transactional id's coordinator is (both run on the active
/// controller), on the listener the client came through.
fn locate(ctx: &Context<'_>, key_type: i8) -> Result<(i32, String, i32), (ErrorCode, String)> {
    if key_type != GROUP_KEY && key_type != TRANSACTION_KEY {
        return Err((
            ErrorCode::InvalidRequest,
            format!("unknown coordinator key type {key_type}"),
        ));
    }
    let not_available = |why: &str| (ErrorCode::CoordinatorNotAvailable, why.to_string());
    let (id, _) = ctx
        .backends
        .groups
        .find(None)
        .map_err(|e| (e.code(), e.message().to_string()))?;
    let state = ctx.backends.metadata.state();
    let broker = state
        .brokers
        .get(&id)
        .filter(|b| b.is_alive())
        .ok_or_else(|| not_available("the coordinator's broker is not alive"))?;
    let addr = broker
        .listeners
        .kafka
        .get(ctx.listener)
        .ok_or_else(|| not_available("the coordinator has no address on this listener"))?;
    let (host, port) = host_port(addr).ok_or_else(|| not_available("bad advertised address"))?;
    Ok((id as i32, host.to_string(), port))
}

pub(crate) fn find_coordinator(
    ctx: &Context<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let found = locate(ctx, request.key_type);
    // DESCRIBE on the group or transactional id the key names.
    let resource_type = if request.key_type == 1 {
        ResourceType::TransactionalId
    } else {
        ResourceType::Group
    };
    let refused = |key: &str| {
        (!ctx.allowed(Operation::Describe, resource_type, key)).then(|| {
            (
                resource_type.authorization_failed(),
                format!("may not describe {} {key:?}", resource_type.name()),
            )
        })
    };
    if ctx.version >= 4 {
        // The batched form: one answer per key (every group has the same coordinator).
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = match refused(key.as_str()) {
                    Some(refusal) => Err(refusal),
                    None => found.clone(),
                };
                let c = Coordinator::default().with_key(key);
                match &found {
                    Ok((id, host, port)) => c
                        .with_node_id(BrokerId(*id))
                        .with_host(StrBytes::from_string(host.clone()))
                        .with_port(*port),
                    Err((e, why)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code(*e))
                        .with_error_message(Some(StrBytes::from_string(why.clone()))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let found = match refused(request.key.as_str()) {
        Some(refusal) => Err(refusal),
        None => found,
    };
    match found {
        Ok((id, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host))
            .with_port(port),
        Err((e, why)) => FindCoordinatorResponse::default()
            .with_error_code(code(e))
            .with_error_message(Some(StrBytes::from_string(why)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}

/// One partition of a commit request (OffsetCommit, TxnOffsetCommit) as sent.
pub(crate) struct SentOffset<'a> {
    pub topic: &'a str,
    pub partition_index: i32,
    pub committed_offset: i64,
    pub committed_leader_epoch: i32,
    pub metadata: Option<&'a StrBytes>,
}

/// The offsets a commit request names, as the coordinator takes them, or the code a
/// bad partition index or offset refuses the whole request with (the coordinator
/// commits all of a request or none of it).
pub(crate) fn requested_offsets<'a>(
    sent: impl Iterator<Item = SentOffset<'a>>,
) -> Result<Vec<OffsetCommit>, ErrorCode> {
    sent.map(|p| {
        let partition =
            u32::try_from(p.partition_index).map_err(|_| ErrorCode::UnknownTopicOrPartition)?;
        let offset = u64::try_from(p.committed_offset).map_err(|_| ErrorCode::InvalidRequest)?;
        Ok(OffsetCommit {
            topic: p.topic.to_string(),
            partition,
            offset,
            metadata: p.metadata.map(ToString::to_string).unwrap_or_default(),
            leader_epoch: (p.committed_leader_epoch >= 0).then_some(p.committed_leader_epoch),
        })
    })
    .collect()
}

pub(crate) async fn offset_commit(
    ctx: &Context<'_>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let sent = request.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| SentOffset {
            topic: t.name.0.as_str(),
            partition_index: p.partition_index,
            committed_offset: p.committed_offset,
            committed_leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_ref(),
        })
    });
    let group_id = request.group_id.0.as_str();
    let readable = |t: &str| ctx.allowed(Operation::Read, ResourceType::Topic, t);
    let outcome = match requested_offsets(sent) {
        _ if !ctx.allowed(Operation::Read, ResourceType::Group, group_id) => {
            Err(ErrorCode::GroupAuthorizationFailed)
        }
        _ if !request.topics.iter().all(|t| readable(&t.name.0)) => {
            Err(ErrorCode::TopicAuthorizationFailed)
        }
        Err(e) => Err(e),
        Ok(offsets) => ctx
            .backends
            .groups
            .commit(
                request.group_id.0.as_str(),
                request.member_id.as_str(),
                request.group_instance_id.as_ref().map(|i| i.as_str()),
                request.generation_id_or_member_epoch,
                offsets,
            )
            .await
            .map_err(|e| e.code()),
    };
    let error = outcome.err().map_or(0, code);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One partition's committed offset as OffsetFetch returns it (-1: none).
struct Row {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    /// UNSTABLE_OFFSET_COMMIT while a transaction commits this offset (require_stable).
    error: i16,
}

impl Row {
    fn none(partition: i32) -> Self {
        Self {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: 0,
        }
    }
}

/// One group's committed offsets per topic, for the partitions asked (`None`: every
/// partition with a commit).
type Committed = Vec<(String, Vec<Row>)>;

async fn committed(
    ctx: &Context<'_>,
    group_id: &str,
    asked: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Committed, ErrorCode> {
    if !ctx.allowed(Operation::Describe, ResourceType::Group, group_id) {
        return Err(ErrorCode::GroupAuthorizationFailed);
    }
    let mut rows = committed_rows(ctx, group_id, asked).await?;
    if require_stable {
        let unstable = ctx.backends.groups.unstable_offsets(group_id);
        for (topic, rows) in &mut rows {
            for r in rows.iter_mut() {
                let pending = u32::try_from(r.partition)
                    .is_ok_and(|p| unstable.contains(&(topic.clone(), p)));
                if pending {
                    *r = Row {
                        error: code(ErrorCode::UnstableOffsetCommit),
                        ..Row::none(r.partition)
                    };
                }
            }
        }
    }
    Ok(rows)
}

async fn committed_rows(
    ctx: &Context<'_>,
    group_id: &str,
    asked: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Committed, ErrorCode> {
    let wanted: Vec<(String, u32)> = asked
        .iter()
        .flatten()
        .flat_map(|(t, ps)| {
            ps.iter()
                .filter_map(|p| u32::try_from(*p).ok())
                .map(move |p| (t.clone(), p))
        })
        .collect();
    let found = ctx
        .backends
        .groups
        .fetch_offsets(group_id, &wanted)
        .await
        .map_err(|e| e.code())?;
    let lookup = |topic: &str, partition: i32| {
        found
            .iter()
            .find(|o| o.topic == topic && i64::from(o.partition) == i64::from(partition))
    };
    Ok(match asked {
        // Every asked partition is answered, -1 where nothing was committed.
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let rows = partitions
                    .into_iter()
                    .map(|p| match lookup(&topic, p) {
                        Some(o) => Row {
                            partition: p,
                            offset: o.offset as i64,
                            leader_epoch: o.leader_epoch.unwrap_or(-1),
                            metadata: o.metadata.clone(),
                            error: 0,
                        },
                        None => Row::none(p),
                    })
                    .collect();
                (topic, rows)
            })
            .collect(),
        None => {
            let mut out: Committed = Vec::new();
            for o in found {
                let row = Row {
                    partition: o.partition as i32,
                    offset: o.offset as i64,
                    leader_epoch: o.leader_epoch.unwrap_or(-1),
                    metadata: o.metadata,
                    error: 0,
                };
                match out.last_mut() {
                    Some((t, rows)) if *t == o.topic => rows.push(row),
                    _ => out.push((o.topic, vec![row])),
                }
            }
            out
        }
    })
}

pub(crate) async fn offset_fetch(
    ctx: &Context<'_>,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if ctx.version >= 8 {
        let mut groups = Vec::new();
        for g in request.groups {
            let asked = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let answer = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            let found = committed(ctx, g.group_id.0.as_str(), asked, request.require_stable);
            groups.push(match found.await {
                Ok(topics) => answer.with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, rows)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(topic_name(topic))
                                .with_partitions(
                                    rows.into_iter()
                                        .map(|r| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(r.partition)
                                                .with_committed_offset(r.offset)
                                                .with_committed_leader_epoch(r.leader_epoch)
                                                .with_metadata(Some(StrBytes::from_string(
                                                    r.metadata,
                                                )))
                                                .with_error_code(r.error)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
                Err(e) => answer.with_error_code(code(e)),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let asked: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let result = committed(
        ctx,
        request.group_id.0.as_str(),
        asked.clone(),
        request.require_stable,
    )
    .await;
    let (topics, error) = match result {
        Ok(topics) => (topics, None),
        // v1 has no top-level error: each asked partition carries it.
        Err(e) => (
            asked
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(Row::none).collect()))
                .collect(),
            Some(e),
        ),
    };
    let partition_error = match error {
        Some(e) if ctx.version < 2 => code(e),
        _ => 0,
    };
    let response = OffsetFetchResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(topic, rows)| {
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        rows.into_iter()
                            .map(|r| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(r.partition)
                                    .with_committed_offset(r.offset)
                                    .with_committed_leader_epoch(r.leader_epoch)
                                    .with_metadata(Some(StrBytes::from_string(r.metadata)))
                                    .with_error_code(if r.error != 0 {
                                        r.error
                                    } else {
                                        partition_error
                                    })
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    match error {
        Some(e) if ctx.version >= 2 => response.with_error_code(code(e)),
        _ => response,
    }
}
