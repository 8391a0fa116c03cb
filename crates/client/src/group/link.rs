//! The consumer's calls to its group coordinator (found and followed by
//! `CoordinatorChannel`).

use std::time::{Duration, Instant};

use crate::session::Channel;
use rill_common::group::{Assignment, Subscription};
use rill_proto::group::{
    assignment_from_pb, assignment_to_pb, subscription_from_pb, subscription_to_pb,
};
use rill_proto::v1 as pb;
use rill_proto::v1::group_service_client::GroupServiceClient;

use crate::coordinator::{CoordinatorChannel, CoordinatorKind};
use crate::{Bootstrap, ClientError};

/// How long a short group call (heartbeat, commit, leave) may take.
const SHORT_CALL: Duration = Duration::from_secs(10);
/// How long committed offsets that a transaction is committing are waited for.
const STABLE_WAIT: Duration = Duration::from_secs(60);

/// Offsets to commit (next offsets to read), as a commit request carries them.
pub(crate) fn offsets_to_pb(offsets: &[((String, u32), u64)]) -> Vec<pb::PartitionOffset> {
    offsets
        .iter()
        .map(|((topic, partition), offset)| pb::PartitionOffset {
            topic: topic.clone(),
            partition: *partition,
            offset: *offset,
            metadata: String::new(),
        })
        .collect()
}

pub(crate) struct CoordinatorLink {
    pub group_id: String,
    coordinator: CoordinatorChannel,
}

/// A member's identity in its current generation.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberIdentity {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
}

pub(crate) struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (assignor name, subscription), preferred first.
    pub protocols: Vec<(String, Subscription)>,
}

pub(crate) struct Joined {
    pub generation: i32,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<rill_coordinator::JoinedMember>,
}

impl CoordinatorLink {
    pub fn new(bootstrap: Bootstrap, group_id: String) -> Self {
        Self {
            coordinator: CoordinatorChannel::new(
                bootstrap,
                CoordinatorKind::Group,
                group_id.clone(),
            ),
            group_id,
        }
    }

    /// One call to the group's coordinator (see `CoordinatorChannel::call`).
    async fn call<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, ClientError>
    where
        F: FnOnce(GroupServiceClient<Channel>, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.coordinator
            .call(timeout, |c, t| f(GroupServiceClient::new(c), t))
            .await
    }

    pub async fn join(&self, p: &JoinParams) -> Result<Joined, ClientError> {
        let request = pb::JoinGroupRequest {
            group_id: self.group_id.clone(),
            member_id: p.member_id.clone(),
            group_instance_id: p.instance_id.clone(),
            client_id: p.client_id.clone(),
            session_timeout_ms: p.session_timeout.as_millis() as u32,
            rebalance_timeout_ms: p.rebalance_timeout.as_millis() as u32,
            protocol_type: "consumer".into(),
            protocols: p
                .protocols
                .iter()
                .map(|(name, s)| pb::GroupProtocol {
                    name: name.clone(),
                    subscription: Some(subscription_to_pb(s)),
                })
                .collect(),
        };
        let wait = p.rebalance_timeout + SHORT_CALL;
        let r = self
            .call(wait, |mut c, t| async move {
                let mut request = tonic::Request::new(request);
                request.set_timeout(t);
                c.join_group(request).await
            })
            .await?;
        Ok(Joined {
            generation: r.generation,
            protocol: r.protocol,
            leader: r.leader,
            member_id: r.member_id,
            members: r
                .members
                .into_iter()
                .map(|m| rill_coordinator::JoinedMember {
                    metadata: None,
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    subscription: subscription_from_pb(m.subscription),
                })
                .collect(),
        })
    }

    pub async fn sync(
        &self,
        me: &MemberIdentity,
        assignments: &std::collections::BTreeMap<String, Assignment>,
        wait: Duration,
    ) -> Result<Assignment, ClientError> {
        let request = pb::SyncGroupRequest {
            group_id: self.group_id.clone(),
            member_id: me.member_id.clone(),
            group_instance_id: me.instance_id.clone(),
            generation: me.generation,
            assignments: assignments
                .iter()
                .map(|(member_id, a)| pb::MemberAssignment {
                    member_id: member_id.clone(),
                    topics: assignment_to_pb(a),
                })
                .collect(),
        };
        let r = self
            .call(wait + SHORT_CALL, |mut c, t| async move {
                let mut request = tonic::Request::new(request);
                request.set_timeout(t);
                c.sync_group(request).await
            })
            .await?;
        Ok(assignment_from_pb(r.assignment))
    }

    /// A heartbeat the coordinator holds open up to `wait` while the generation is
    /// stable, answering at once when the group starts rebalancing.
    pub async fn heartbeat(&self, me: &MemberIdentity, wait: Duration) -> Result<(), ClientError> {
        let request = pb::HeartbeatRequest {
            group_id: self.group_id.clone(),
            member_id: me.member_id.clone(),
            group_instance_id: me.instance_id.clone(),
            generation: me.generation,
            wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        };
        self.call(SHORT_CALL + wait, |mut c, t| async move {
            let mut request = tonic::Request::new(request);
            request.set_timeout(t);
            c.heartbeat(request).await
        })
        .await
        .map(|_| ())
    }

    pub async fn leave(&self, me: &MemberIdentity) -> Result<(), ClientError> {
        let request = pb::LeaveGroupRequest {
            group_id: self.group_id.clone(),
            member_id: me.member_id.clone(),
            group_instance_id: me.instance_id.clone(),
        };
        self.call(SHORT_CALL, |mut c, t| async move {
            let mut request = tonic::Request::new(request);
            request.set_timeout(t);
            c.leave_group(request).await
        })
        .await
        .map(|_| ())
    }

    pub async fn commit(
        &self,
        me: &MemberIdentity,
        offsets: &[((String, u32), u64)],
    ) -> Result<(), ClientError> {
        let request = pb::OffsetCommitRequest {
            group_id: self.group_id.clone(),
            member_id: me.member_id.clone(),
            group_instance_id: me.instance_id.clone(),
            generation: me.generation,
            offsets: offsets_to_pb(offsets),
        };
        self.call(SHORT_CALL, |mut c, t| async move {
            let mut request = tonic::Request::new(request);
            request.set_timeout(t);
            c.offset_commit(request).await
        })
        .await
        .map(|_| ())
    }

    pub async fn committed(
        &self,
        partitions: &[(String, u32)],
    ) -> Result<Vec<((String, u32), u64)>, ClientError> {
        let request = pb::OffsetFetchRequest {
            group_id: self.group_id.clone(),
            partitions: partitions
                .iter()
                .map(|(topic, partition)| pb::TopicPartitionRef {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect(),
            require_stable: true,
        };
        // Offsets a transaction is committing are waited for (UNSTABLE_OFFSET_COMMIT is
        // retried): otherwise a copier could read its own last transaction's input again.
        let r = self
            .coordinator
            .call_until(Instant::now() + STABLE_WAIT, SHORT_CALL, |c, t| {
                let request = request.clone();
                async move {
                    let mut request = tonic::Request::new(request);
                    request.set_timeout(t);
                    GroupServiceClient::new(c).offset_fetch(request).await
                }
            })
            .await?;
        Ok(r.offsets
            .into_iter()
            .map(|o| ((o.topic, o.partition), o.offset))
            .collect())
    }
}
