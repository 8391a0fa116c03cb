//! Produce: a leader's append, made durable per the flush policy, and (acks=all) the
//! wait for the high watermark to pass it (Kafka's DelayedProduce).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rill_common::record::BatchHeader;

use crate::partition::Partition;
use crate::BrokerError;

use super::{FlushPolicy, ReplicaManager};

/// How long a batch ahead of its producer's sequence waits for the batches before it
/// (a pipelining producer's, sent at once, can arrive in any order) before the append
/// refuses it.
const SEQUENCE_GAP_WAIT: Duration = Duration::from_secs(2);

/// Waits while `batch` is ahead of its producer's sequence here, so one partition's
/// batches are appended in sequence order however they arrive.
async fn wait_for_earlier_batches(
    p: &Partition,
    batch: &[u8],
    timeout: Duration,
) -> Result<(), BrokerError> {
    let Ok(header) = BatchHeader::parse(batch) else {
        return Ok(()); // the append's validation reports it
    };
    let deadline = tokio::time::Instant::now() + SEQUENCE_GAP_WAIT.min(timeout);
    let mut changed = p.subscribe();
    while p.sequence_ahead(&header) {
        if !p.is_leader() {
            return Err(p.not_leader());
        }
        match tokio::time::timeout_at(deadline, changed.changed()).await {
            Ok(Ok(())) => {}
            // Waited long enough (or the partition is gone): the append decides.
            _ => break,
        }
    }
    Ok(())
}

/// How many replicas must have a write before the producer hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    pub fn from_wire(acks: i32) -> Result<Self, BrokerError> {
        match acks {
            0 => Ok(Self::None),
            1 => Ok(Self::Leader),
            -1 => Ok(Self::All),
            other => Err(BrokerError::InvalidRequest(format!(
                "acks must be -1, 0 or 1, got {other}"
            ))),
        }
    }
}

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: u64,
    pub log_start_offset: u64,
}

impl ReplicaManager {
    /// Appends a producer's batch and waits as `acks` asks: nothing, the leader's durable
    /// write, or the high watermark passing the batch. A transactional batch names its
    /// `transactional_id`; its first write to this partition is verified with the
    /// transaction coordinator first.
    pub async fn produce(
        &self,
        topic: &str,
        partition: u32,
        acks: Acks,
        records: Bytes,
        timeout: Duration,
        transactional_id: Option<&str>,
    ) -> Result<Produced, BrokerError> {
        let produced = self
            .produce_inner(topic, partition, acks, records, timeout, transactional_id)
            .await;
        self.storage_health.observe(&produced);
        produced
    }

    async fn produce_inner(
        &self,
        topic: &str,
        partition: u32,
        acks: Acks,
        records: Bytes,
        timeout: Duration,
        transactional_id: Option<&str>,
    ) -> Result<Produced, BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let mut batch = records.to_vec();
        wait_for_earlier_batches(&p, &batch, timeout).await?;
        let verification = self
            .verify_first_write(&p, &batch, transactional_id)
            .await?;
        let appended = p.append_verified(&mut batch, acks == Acks::All, verification)?;
        let next = appended.next_offset;
        if !appended.duplicate {
            crate::traffic::produced(topic, next - appended.base_offset, batch.len());
            // Wake followers long-polling for new data.
            p.notify_changed();
        }
        let durable = self.make_durable(p.clone(), next);
        match acks {
            Acks::None => {
                tokio::spawn(durable);
            }
            Acks::Leader => durable.await?,
            Acks::All => {
                durable.await?;
                self.wait_for_high_watermark(&p, next, timeout).await?;
            }
        }
        Ok(Produced {
            base_offset: appended.base_offset,
            log_start_offset: p.log().log_start_offset(),
        })
    }

    /// Makes everything up to `next` durable per the flush policy, then lets the high
    /// watermark follow.
    pub(super) fn make_durable(
        &self,
        partition: Arc<Partition>,
        next: u64,
    ) -> impl std::future::Future<Output = Result<(), BrokerError>> + Send + 'static {
        let flusher = match self.flush {
            FlushPolicy::Group => self.storage.flusher(),
            FlushPolicy::Interval(_) => None,
        };
        async move {
            if let Some(flusher) = flusher {
                flusher
                    .flush()
                    .await
                    .map_err(|e| BrokerError::Storage(format!("fsync failed: {e}")))?;
            }
            if partition.mark_durable(next) {
                partition.notify_changed();
            }
            Ok(())
        }
    }

    pub(super) async fn wait_for_high_watermark(
        &self,
        p: &Partition,
        next: u64,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changed = p.subscribe();
        while p.high_watermark() < next {
            if !p.is_leader() {
                return Err(p.not_leader());
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(BrokerError::Timeout(format!(
                    "high watermark did not reach {next}"
                )));
            }
        }
        Ok(())
    }
}
