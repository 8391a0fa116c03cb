//! The admin client's transaction calls (to the transaction coordinator). The public
//! types serialize to the `txn describe` / `txn list` JSON shapes of DESIGN.md section 3.

use std::time::{Duration, Instant};

use rill_proto::v1 as pb;
use rill_proto::v1::transaction_service_client::TransactionServiceClient;
use serde::{Deserialize, Serialize};

use crate::coordinator::{CoordinatorChannel, CoordinatorKind};
use crate::metadata::{BrokerClient, ClusterMetadata};
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

/// A producer as a partition's leader remembers it (`rill txn producers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerState {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// Where its open transaction in the partition began, if one is open.
    pub open_transaction_start: Option<u64>,
}

impl AdminClient {
    /// One call to a partition's leader, again after a metadata refresh while the
    /// answer is retriable (a moved leader), for up to `RETRY_FOR`.
    async fn call_leader<T, F, Fut>(
        &self,
        topic: &str,
        partition: u32,
        f: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(BrokerClient) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let metadata = ClusterMetadata::new(self.clone());
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let result = match metadata.leader(topic, partition).await {
                Ok((_, client)) => f(client)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| ClientError::from_status(&s)),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = metadata.refresh(topic).await;
                }
                other => return other,
            }
        }
    }

    /// The producers the leader of `topic`-`partition` remembers.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Vec<ProducerState>, ClientError> {
        let request = pb::DescribeProducersRequest {
            topic: topic.to_string(),
            partition,
        };
        let r = self
            .call_leader(topic, partition, |mut c| {
                let request = request.clone();
                async move { c.describe_producers(request).await }
            })
            .await?;
        Ok(r.producers
            .into_iter()
            .map(|p| ProducerState {
                producer_id: p.producer_id,
                producer_epoch: p.producer_epoch,
                last_sequence: p.last_sequence,
                last_timestamp_ms: p.last_timestamp_ms,
                open_transaction_start: p.open_transaction_start,
            })
            .collect())
    }

    /// Aborts a hanging transaction of `producer_id` in `topic`-`partition`.
    pub async fn abort_transaction(
        &self,
        topic: &str,
        partition: u32,
        producer_id: i64,
    ) -> Result<(), ClientError> {
        let request = pb::AbortTransactionRequest {
            topic: topic.to_string(),
            partition,
            producer_id,
        };
        self.call_leader(topic, partition, |mut c| {
            let request = request.clone();
            async move { c.abort_transaction(request).await }
        })
        .await
        .map(|_| ())
    }

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
