//! What the active controller does for partition reassignments: start, replace or cancel
//! them (decided by `controller::reassignment`), plan them for a rebalance or a
//! decommission (`controller::rebalance`), and complete each one once its target
//! replicas are all in the ISR (checked at every controller pass, so a completion due
//! when leadership moved is found by the next controller).

use tracing::info;

use super::MetadataNode;
use crate::controller::reassignment::{self, ReassignmentRequest};
use crate::controller::rebalance;
use crate::model::{MetadataCommand, MetadataState};
use crate::types::{ControllerReply, ForwardedReply};
use crate::MetadataError;

impl MetadataNode {
    pub(super) async fn alter_reassignments(
        &self,
        requests: Vec<ReassignmentRequest>,
    ) -> Result<ForwardedReply, MetadataError> {
        let _guard = self.leader.decisions.lock().await;
        let state = self.linearizable_state().await?;
        self.start_reassignments(&state, requests).await
    }

    pub(super) async fn rebalance(&self, execute: bool) -> Result<ForwardedReply, MetadataError> {
        let _guard = self.leader.decisions.lock().await;
        let state = self.linearizable_state().await?;
        let planned = rebalance::plan_rebalance(&state)?;
        if !execute {
            return Ok(ForwardedReply {
                reply: ControllerReply::Reassignments {
                    planned,
                    results: Vec::new(),
                },
                log_index: None,
            });
        }
        self.start_reassignments(&state, planned).await
    }

    pub(super) async fn decommission_broker(
        &self,
        broker_id: u64,
        cancel: bool,
    ) -> Result<ForwardedReply, MetadataError> {
        let _guard = self.leader.decisions.lock().await;
        let state = self.linearizable_state().await?;
        let draining = state.current_broker_any_epoch(broker_id)?.draining;
        let planned = if cancel {
            Vec::new()
        } else {
            rebalance::plan_decommission(&state, broker_id)?
        };
        let mut log_index = None;
        if draining == cancel {
            info!(broker_id, draining = !cancel, "broker decommission changed");
            let command = MetadataCommand::SetBrokerDraining {
                broker_id,
                draining: !cancel,
            };
            log_index = Some(self.write(command).await?.1);
        }
        let mut reply = self.start_reassignments(&state, planned).await?;
        reply.log_index = reply.log_index.or(log_index);
        Ok(reply)
    }

    /// Plans `requests` against `state` (under the decisions lock) and writes what was
    /// accepted in one entry.
    async fn start_reassignments(
        &self,
        state: &MetadataState,
        requests: Vec<ReassignmentRequest>,
    ) -> Result<ForwardedReply, MetadataError> {
        let reassignment::ReassignmentPlan { changes, results } =
            reassignment::plan_reassignments(state, &requests);
        for change in &changes {
            let Some(set) = &change.replicas else {
                continue;
            };
            info!(topic = %change.topic, partition = change.partition, replicas = ?set.replicas,
                adding = ?set.adding, removing = ?set.removing, leader = ?change.leader,
                "reassignment changed");
        }
        let log_index = if changes.is_empty() {
            None
        } else {
            let command = MetadataCommand::ReassignPartitions { changes };
            Some(self.write(command).await?.1)
        };
        Ok(ForwardedReply {
            reply: ControllerReply::Reassignments {
                planned: requests,
                results,
            },
            log_index,
        })
    }

    /// Completes every reassignment whose target replicas are all in the ISR: the
    /// replicas become the target and leadership leaves the removed ones.
    pub(super) async fn complete_reassignments(&self) -> Result<(), MetadataError> {
        if !self.state().any_reassigning() {
            return Ok(());
        }
        let _guard = self.leader.decisions.lock().await;
        let changes = reassignment::completions(&self.state());
        if changes.is_empty() {
            return Ok(());
        }
        for change in &changes {
            info!(topic = %change.topic, partition = change.partition,
                replicas = ?change.replicas.as_ref().map(|s| &s.replicas), leader = ?change.leader,
                "reassignment completed");
        }
        self.write(MetadataCommand::ReassignPartitions { changes })
            .await?;
        Ok(())
    }
}
