//! One rebalance from the member's side: JoinGroup until a generation forms, compute the
//! assignment if this member leads, SyncGroup for its own share. Runs as its own task
//! so that a cooperative member keeps fetching what it owns meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rill_common::group::{Assignment, Subscription};
use rill_common::ErrorCode;
use tokio::time::Instant;

use super::link::{CoordinatorLink, JoinParams, MemberIdentity};
use crate::metadata::ClusterMetadata;
use crate::ClientError;

const RETRY: Duration = Duration::from_millis(100);

pub(crate) struct Rebalanced {
    pub me: MemberIdentity,
    pub protocol: String,
    pub assignment: Assignment,
}

pub(crate) async fn join_and_sync(
    link: Arc<CoordinatorLink>,
    metadata: ClusterMetadata,
    mut params: JoinParams,
) -> Result<Rebalanced, ClientError> {
    let deadline = Instant::now() + params.rebalance_timeout + params.session_timeout;
    loop {
        if Instant::now() > deadline {
            return Err(ClientError::Server {
                code: ErrorCode::RebalanceInProgress,
                message: "could not join the group before the rebalance timeout".into(),
            });
        }
        let joined = match link.join(&params).await {
            Ok(j) => j,
            Err(e) if e.code() == ErrorCode::UnknownMemberId => {
                params.member_id.clear();
                continue;
            }
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        params.member_id = joined.member_id.clone();
        let me = MemberIdentity {
            member_id: joined.member_id.clone(),
            instance_id: params.instance_id.clone(),
            generation: joined.generation,
        };
        let assignments = if joined.leader == joined.member_id {
            assign(&metadata, &joined.protocol, &joined.members).await?
        } else {
            BTreeMap::new()
        };
        match link.sync(&me, &assignments, params.rebalance_timeout).await {
            Ok(assignment) => {
                return Ok(Rebalanced {
                    me,
                    protocol: joined.protocol,
                    assignment,
                })
            }
            Err(e) if e.code() == ErrorCode::UnknownMemberId => params.member_id.clear(),
            Err(e)
                if e.is_retriable()
                    || matches!(
                        e.code(),
                        ErrorCode::IllegalGeneration | ErrorCode::RebalanceInProgress
                    ) =>
            {
                tokio::time::sleep(RETRY).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The leader's job: run the chosen assignor over every member's subscription with
/// fresh partition counts.
async fn assign(
    metadata: &ClusterMetadata,
    protocol: &str,
    members: &[rill_coordinator::JoinedMember],
) -> Result<BTreeMap<String, Assignment>, ClientError> {
    let assignor = rill_coordinator::assignor::by_name(protocol).ok_or_else(|| {
        ClientError::InvalidArgument(format!("the group chose an unknown assignor {protocol}"))
    })?;
    let mut topics: Vec<&String> = members
        .iter()
        .flat_map(|m| &m.subscription.topics)
        .collect();
    topics.sort();
    topics.dedup();
    let mut counts = BTreeMap::new();
    for topic in topics {
        let _ = metadata.refresh(topic).await;
        match metadata.partitions(topic).await {
            Ok(partitions) => {
                counts.insert(topic.clone(), partitions.len() as u32);
            }
            // A topic that does not exist (yet) has nothing to assign.
            Err(e) if e.code() == ErrorCode::UnknownTopicOrPartition => {}
            Err(e) => return Err(e),
        }
    }
    Ok(assignor.assign(&counts, members))
}

/// The subscription this member announces for each of its assignors.
pub(crate) fn protocols(
    assignors: &[String],
    topics: &[String],
    owned: Vec<(String, u32)>,
    generation: i32,
) -> Vec<(String, Subscription)> {
    assignors
        .iter()
        .map(|name| {
            (
                name.clone(),
                Subscription {
                    topics: topics.to_vec(),
                    owned: owned.clone(),
                    generation,
                },
            )
        })
        .collect()
}
