//! The transactional producer's calls to its transaction coordinator, each retried while
//! the answer is retriable (the coordinator moved, or the last transaction's markers are
//! still being written) until the producer's `max_block` deadline.

use std::time::{Duration, Instant};

use rill_common::transaction::ProducerIdAndEpoch;
use rill_proto::v1 as pb;
use rill_proto::v1::transaction_service_client::TransactionServiceClient;

use crate::coordinator::{CoordinatorChannel, CoordinatorKind};
use crate::{Bootstrap, ClientError, ConsumerGroupMetadata, TopicPartition};

/// How long one coordinator call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct TxnLink {
    coordinator: CoordinatorChannel,
}

fn producer_to_pb(p: ProducerIdAndEpoch) -> pb::TxnProducer {
    pb::TxnProducer {
        producer_id: p.producer_id,
        producer_epoch: p.epoch.into(),
    }
}

fn producer_from_pb(p: pb::TxnProducer) -> Result<ProducerIdAndEpoch, ClientError> {
    let epoch = i16::try_from(p.producer_epoch).map_err(|_| ClientError::Server {
        code: rill_common::ErrorCode::UnknownServerError,
        message: format!("producer epoch {} out of range", p.producer_epoch),
    })?;
    Ok(ProducerIdAndEpoch {
        producer_id: p.producer_id,
        epoch,
    })
}

fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

impl TxnLink {
    pub fn new(bootstrap: Bootstrap, transactional_id: String) -> Self {
        Self {
            coordinator: CoordinatorChannel::new(
                bootstrap,
                CoordinatorKind::Transaction,
                transactional_id,
            ),
        }
    }

    pub fn transactional_id(&self) -> &str {
        self.coordinator.key()
    }

    pub async fn init_producer_id(
        &self,
        deadline: Instant,
        transaction_timeout: Duration,
    ) -> Result<ProducerIdAndEpoch, ClientError> {
        let message = pb::InitTxnProducerIdRequest {
            transactional_id: self.transactional_id().to_string(),
            transaction_timeout_ms: u32::try_from(transaction_timeout.as_millis())
                .unwrap_or(u32::MAX),
            current: None,
        };
        let p = self
            .coordinator
            .call_until(deadline, CALL_TIMEOUT, |c, t| {
                let message = message.clone();
                async move {
                    TransactionServiceClient::new(c)
                        .init_producer_id(request(message, t))
                        .await
                }
            })
            .await?;
        producer_from_pb(p)
    }

    pub async fn add_partitions(
        &self,
        deadline: Instant,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<(), ClientError> {
        let message = pb::AddPartitionsToTxnRequest {
            transactional_id: self.transactional_id().to_string(),
            producer: Some(producer_to_pb(producer)),
            partitions: partitions
                .iter()
                .map(|(topic, partition)| pb::TopicPartitionRef {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect(),
        };
        self.coordinator
            .call_until(deadline, CALL_TIMEOUT, |c, t| {
                let message = message.clone();
                async move {
                    TransactionServiceClient::new(c)
                        .add_partitions(request(message, t))
                        .await
                }
            })
            .await
            .map(|_| ())
    }

    pub async fn send_offsets(
        &self,
        deadline: Instant,
        producer: ProducerIdAndEpoch,
        offsets: &[(TopicPartition, u64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<(), ClientError> {
        let add = pb::AddOffsetsToTxnRequest {
            transactional_id: self.transactional_id().to_string(),
            producer: Some(producer_to_pb(producer)),
            group_id: group.group_id.clone(),
        };
        self.coordinator
            .call_until(deadline, CALL_TIMEOUT, |c, t| {
                let add = add.clone();
                async move {
                    TransactionServiceClient::new(c)
                        .add_offsets(request(add, t))
                        .await
                }
            })
            .await?;
        let commit = pb::TxnOffsetCommitRequest {
            transactional_id: self.transactional_id().to_string(),
            producer: Some(producer_to_pb(producer)),
            group_id: group.group_id.clone(),
            member_id: group.member_id.clone(),
            group_instance_id: group.group_instance_id.clone(),
            generation: group.generation,
            offsets: crate::group::offsets_to_pb(offsets),
        };
        self.coordinator
            .call_until(deadline, CALL_TIMEOUT, |c, t| {
                let commit = commit.clone();
                async move {
                    TransactionServiceClient::new(c)
                        .txn_offset_commit(request(commit, t))
                        .await
                }
            })
            .await
            .map(|_| ())
    }

    /// Commits or aborts; returns the producer id and epoch of the next transaction.
    pub async fn end(
        &self,
        deadline: Instant,
        producer: ProducerIdAndEpoch,
        commit: bool,
    ) -> Result<ProducerIdAndEpoch, ClientError> {
        let message = pb::EndTxnRequest {
            transactional_id: self.transactional_id().to_string(),
            producer: Some(producer_to_pb(producer)),
            commit,
        };
        let next = self
            .coordinator
            .call_until(deadline, CALL_TIMEOUT, |c, t| {
                let message = message.clone();
                async move {
                    TransactionServiceClient::new(c)
                        .end_txn(request(message, t))
                        .await
                }
            })
            .await?;
        producer_from_pb(next)
    }
}
