//! The admin client's transaction calls (to the transaction coordinator). The public
//! types serialize to the `txn describe` / `txn list` JSON shapes of DESIGN.md section 3.

use std::time::{Duration, Instant};

use rill_proto::v1 as pb;
use rill_proto::v1::transaction_service_client::TransactionServiceClient;
use serde::{Deserialize, Serialize};

use crate::coordinator::{CoordinatorChannel, CoordinatorKind};
use crate::{AdminClient, ClientError};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a moved or loading coordinator is retried.
const RETRY_FOR: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub state: String,
    pub timeout_ms: u64,
    pub partitions: Vec<TxnPartition>,
    /// When the open transaction began (wall-clock ms); `None` when none is open.
    pub started_ms: Option<u64>,
    /// Groups whose offsets the open transaction commits.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnPartition {
    pub topic: String,
    pub partition: u32,
}

impl From<pb::TransactionDescription> for TransactionDescription {
    fn from(d: pb::TransactionDescription) -> Self {
        Self {
            transactional_id: d.transactional_id,
            producer_id: d.producer_id,
            producer_epoch: d.producer_epoch,
            state: d.state,
            timeout_ms: d.timeout_ms,
            partitions: d
                .partitions
                .into_iter()
                .map(|p| TxnPartition {
                    topic: p.topic,
                    partition: p.partition,
                })
                .collect(),
            started_ms: d.started_ms,
            groups: d.groups,
        }
    }
}

impl AdminClient {
    fn txn_coordinator(&self, transactional_id: &str) -> CoordinatorChannel {
        CoordinatorChannel::new(
            self.bootstrap().clone(),
            CoordinatorKind::Transaction,
            transactional_id.to_string(),
        )
    }

    /// Every transactional id the coordinator knows, by id.
    pub async fn list_transactions(&self) -> Result<Vec<TransactionDescription>, ClientError> {
        let r = self
            .txn_coordinator("")
            .call_until(
                Instant::now() + RETRY_FOR,
                CALL_TIMEOUT,
                |c, t| async move {
                    let mut request = tonic::Request::new(pb::ListTransactionsRequest {});
                    request.set_timeout(t);
                    TransactionServiceClient::new(c)
                        .list_transactions(request)
                        .await
                },
            )
            .await?;
        Ok(r.transactions.into_iter().map(Into::into).collect())
    }

    /// One transactional id (TRANSACTIONAL_ID_NOT_FOUND when the coordinator has none).
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, ClientError> {
        let message = pb::DescribeTransactionsRequest {
            transactional_ids: vec![transactional_id.to_string()],
        };
        let r = self
            .txn_coordinator(transactional_id)
            .call_until(Instant::now() + RETRY_FOR, CALL_TIMEOUT, |c, t| {
                let message = message.clone();
                async move {
                    let mut request = tonic::Request::new(message);
                    request.set_timeout(t);
                    TransactionServiceClient::new(c)
                        .describe_transactions(request)
                        .await
                }
            })
            .await?;
        r.transactions
            .into_iter()
            .next()
            .map(Into::into)
            .ok_or_else(|| ClientError::Server {
                code: rill_common::ErrorCode::TransactionalIdNotFound,
                message: format!("no transactional id '{transactional_id}'"),
            })
    }
}
