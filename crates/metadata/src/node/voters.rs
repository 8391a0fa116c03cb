//! Controller membership (KIP-853 style): nodes outside the voters join the metadata log
//! as learners; an operator promotes a caught-up learner to voter or demotes a voter to
//! learner, one at a time, while the quorum keeps answering. Replacing a voter whose disk
//! was lost: remove it, let the wiped node rejoin as a learner, add it again.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers};
use rill_common::ErrorCode;
use tracing::info;

use super::leader::not_controller_or;
use super::MetadataNode;
use rill_common::NodeId;

use crate::types::{ControllerReply, ForwardedReply};
use crate::MetadataError;

/// How long a promotion waits for the learner to hold what the leader has committed.
const CATCH_UP: Duration = Duration::from_secs(10);

fn done(log_index: Option<u64>) -> ForwardedReply {
    ForwardedReply {
        reply: ControllerReply::Done,
        log_index,
    }
}

impl MetadataNode {
    pub(super) async fn add_learner(
        &self,
        node_id: NodeId,
        addr: String,
    ) -> Result<ForwardedReply, MetadataError> {
        let known = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&node_id)
            .cloned();
        if known.is_some_and(|n| n.addr == addr) {
            return Ok(done(None));
        }
        let response = self
            .raft
            .add_learner(node_id, BasicNode::new(&addr), false)
            .await
            .map_err(|e| not_controller_or(e.to_string(), self.known_leader()))?;
        info!(node_id, %addr, "added learner");
        Ok(done(Some(response.log_id.index)))
    }

    /// The voters and learners of the current membership.
    fn members(&self) -> (BTreeSet<NodeId>, BTreeSet<NodeId>) {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        (
            membership.voter_ids().collect(),
            membership.learner_ids().collect(),
        )
    }

    /// Waits until learner `node_id` has replicated what this leader had committed when
    /// asked; an error if it has not within [`CATCH_UP`].
    async fn learner_caught_up(&self, node_id: NodeId) -> Result<(), MetadataError> {
        let mut metrics = self.raft.metrics();
        let target = metrics.borrow().last_log_index.unwrap_or(0);
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let matched = metrics
                .borrow()
                .replication
                .as_ref()
                .and_then(|r| r.get(&node_id).cloned().flatten())
                .map_or(0, |log_id| log_id.index);
            if matched >= target {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return Err(MetadataError::rejected(
                    ErrorCode::RequestTimedOut,
                    format!(
                        "learner {node_id} holds the metadata log up to {matched}, not yet \
                         {target}: is it running? try again once it caught up"
                    ),
                ));
            }
        }
    }

    pub(super) async fn add_voter(&self, node_id: NodeId) -> Result<ForwardedReply, MetadataError> {
        let (voters, learners) = self.members();
        if voters.contains(&node_id) {
            return Ok(done(None));
        }
        if !learners.contains(&node_id) {
            return Err(MetadataError::rejected(
                ErrorCode::InvalidRequest,
                format!(
                    "node {node_id} is not a learner: start it (outside --voters) so it joins \
                     the metadata log first"
                ),
            ));
        }
        self.learner_caught_up(node_id).await?;
        let response = self
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true)
            .await
            .map_err(|e| not_controller_or(e.to_string(), self.known_leader()))?;
        info!(node_id, "added voter");
        Ok(done(Some(response.log_id.index)))
    }

    pub(super) async fn remove_voter(
        &self,
        node_id: NodeId,
    ) -> Result<ForwardedReply, MetadataError> {
        let (voters, _) = self.members();
        if !voters.contains(&node_id) {
            return Err(MetadataError::rejected(
                ErrorCode::InvalidRequest,
                format!("node {node_id} is not a voter (voters: {voters:?})"),
            ));
        }
        if voters.len() == 1 {
            return Err(MetadataError::rejected(
                ErrorCode::InvalidRequest,
                format!("node {node_id} is the last voter"),
            ));
        }
        // Kept as a learner: it goes on applying the metadata log (and, if it led, the
        // leader steps down once the change is committed).
        let response = self
            .raft
            .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])), true)
            .await
            .map_err(|e| not_controller_or(e.to_string(), self.known_leader()))?;
        info!(node_id, "removed voter");
        Ok(done(Some(response.log_id.index)))
    }
}
