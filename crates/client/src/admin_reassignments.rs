//! The admin client's reassignment calls: move replicas (KIP-455), list the moves in
//! progress, rebalance the cluster and decommission a broker.

use rill_proto::v1 as pb;
use rill_proto::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Serialize};

use crate::{AdminClient, ClientError};

/// One partition's target replicas, as kafka-reassign-partitions writes them (its
/// `log_dirs` are accepted and ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: u32,
    #[serde(default)]
    pub replicas: Vec<u64>,
}

/// A reassignment plan file: `{"version":1,"partitions":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentPlan {
    pub version: u32,
    pub partitions: Vec<PartitionReassignment>,
}

/// A partition's reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentStatus {
    pub topic: String,
    pub partition: u32,
    pub replicas: Vec<u64>,
    pub adding_replicas: Vec<u64>,
    pub removing_replicas: Vec<u64>,
    pub isr: Vec<u64>,
    pub leader: Option<u64>,
}

/// Whether one reassignment was started (`error_code` `None`) or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentOutcome {
    pub topic: String,
    pub partition: u32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// A rebalance's or decommission's plan and, when started, each move's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedMoves {
    pub plan: ReassignmentPlan,
    pub results: Vec<ReassignmentOutcome>,
}

fn outcomes(
    plan: &[pb::PartitionReassignment],
    results: Vec<pb::ItemResult>,
) -> Vec<ReassignmentOutcome> {
    plan.iter()
        .zip(results)
        .map(|(p, r)| ReassignmentOutcome {
            topic: p.topic.clone(),
            partition: p.partition,
            error_code: (!r.error_code.is_empty()).then_some(r.error_code),
            error_message: (!r.error_message.is_empty()).then_some(r.error_message),
        })
        .collect()
}

fn planned(r: pb::ReassignmentPlanResponse) -> PlannedMoves {
    let results = outcomes(&r.plan, r.results);
    PlannedMoves {
        plan: ReassignmentPlan {
            version: 1,
            partitions: r
                .plan
                .into_iter()
                .map(|p| PartitionReassignment {
                    topic: p.topic,
                    partition: p.partition,
                    replicas: p.replicas,
                })
                .collect(),
        },
        results,
    }
}

impl AdminClient {
    /// Starts (or with `cancel`, cancels) the reassignments; an outcome per partition.
    pub async fn alter_reassignments(
        &self,
        partitions: &[PartitionReassignment],
        cancel: bool,
    ) -> Result<Vec<ReassignmentOutcome>, ClientError> {
        let reassignments: Vec<pb::PartitionReassignment> = partitions
            .iter()
            .map(|p| pb::PartitionReassignment {
                topic: p.topic.clone(),
                partition: p.partition,
                replicas: if cancel {
                    Vec::new()
                } else {
                    p.replicas.clone()
                },
                cancel,
            })
            .collect();
        let request = pb::AlterReassignmentsRequest {
            reassignments: reassignments.clone(),
        };
        let response = self
            .bootstrap()
            .with_channel(|c| {
                let request = request.clone();
                async move {
                    AdminServiceClient::new(c)
                        .alter_reassignments(request)
                        .await
                }
            })
            .await?;
        Ok(outcomes(&reassignments, response.into_inner().results))
    }

    /// The reassignments in progress (of these topics; of all when empty).
    pub async fn list_reassignments(
        &self,
        topics: &[String],
    ) -> Result<Vec<ReassignmentStatus>, ClientError> {
        let request = pb::ListReassignmentsRequest {
            topics: topics.to_vec(),
        };
        let response = self
            .bootstrap()
            .with_channel(|c| {
                let request = request.clone();
                async move { AdminServiceClient::new(c).list_reassignments(request).await }
            })
            .await?;
        Ok(response
            .into_inner()
            .reassignments
            .into_iter()
            .map(|r| ReassignmentStatus {
                topic: r.topic,
                partition: r.partition,
                replicas: r.replicas,
                adding_replicas: r.adding_replicas,
                removing_replicas: r.removing_replicas,
                isr: r.isr,
                leader: r.leader,
            })
            .collect())
    }

    /// The moves that even replicas and leaders over the alive brokers; `execute`
    /// starts them.
    pub async fn rebalance(&self, execute: bool) -> Result<PlannedMoves, ClientError> {
        let response = self
            .bootstrap()
            .with_channel(|c| async move {
                AdminServiceClient::new(c)
                    .rebalance(pb::RebalanceRequest { execute })
                    .await
            })
            .await?;
        Ok(planned(response.into_inner()))
    }

    /// Promotes learner `node_id` to controller voter, or (`remove`) makes a voter a
    /// learner; the quorum afterwards.
    pub async fn change_voters(
        &self,
        node_id: u64,
        remove: bool,
    ) -> Result<crate::ControllerDescription, ClientError> {
        let response = self
            .bootstrap()
            .with_channel(|c| async move {
                AdminServiceClient::new(c)
                    .change_voters(pb::ChangeVotersRequest { node_id, remove })
                    .await
            })
            .await?
            .into_inner();
        Ok(crate::ControllerDescription {
            leader_id: response.leader_id,
            term: response.term,
            voters: response.voters,
            learners: response.learners,
        })
    }

    /// Marks `broker_id` draining and starts moving its replicas off (`cancel`: makes it
    /// placeable again).
    pub async fn decommission_broker(
        &self,
        broker_id: u64,
        cancel: bool,
    ) -> Result<PlannedMoves, ClientError> {
        let response = self
            .bootstrap()
            .with_channel(|c| async move {
                AdminServiceClient::new(c)
                    .decommission_broker(pb::DecommissionBrokerRequest { broker_id, cancel })
                    .await
            })
            .await?;
        Ok(planned(response.into_inner()))
    }
}
