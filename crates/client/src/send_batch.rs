//! One batch to its partition's leader, retried until it is written, refused for good or
//! out of time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rill_common::ErrorCode;
use rill_proto::v1 as pb;

use crate::in_flight::{InFlight, Ticket};
use crate::metadata::ClusterMetadata;
use crate::ClientError;

use crate::producer::TopicPartition;

/// Retry backoff doubles from the minimum up to the maximum (KIP-580); the cap is low so
/// that a producer finds a new leader within a few hundred ms of its election.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(25);
const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(250);

/// Whether a batch refused for a gap in its sequence may yet be written: a batch sent
/// before it is still in flight (a retry of it may fill the gap).
fn gap_may_fill(error: &ClientError, (flight, ticket): (&InFlight, Ticket)) -> bool {
    matches!(
        error,
        ClientError::Server {
            code: ErrorCode::OutOfOrderSequence,
            ..
        }
    ) && flight.has_earlier(ticket)
}

/// Where and how a batch is written.
pub(crate) struct BatchTarget<'a> {
    pub tp: &'a TopicPartition,
    pub acks: i32,
    /// The broker's wait for acks=all.
    pub timeout: Duration,
    /// A transactional batch names its transactional id.
    pub transactional_id: Option<&'a str>,
    /// The partition's batches in flight and this one's place among them.
    pub in_flight: (&'a InFlight, Ticket),
}

/// Sends one batch to the partition's leader, retrying retriable errors (refreshing
/// metadata) until `deadline`. Returns the base offset.
pub(crate) async fn send_batch(
    metadata: &ClusterMetadata,
    target: &BatchTarget<'_>,
    batch: &Bytes,
    deadline: Instant,
) -> Result<u64, ClientError> {
    let BatchTarget {
        tp,
        acks,
        timeout,
        transactional_id,
        in_flight,
    } = *target;
    let mut backoff = RETRY_BACKOFF_MIN;
    // Whether an earlier attempt reached a leader without a definite answer: it may
    // have been written (and be read later), so no later refusal is definite.
    let mut may_be_written = false;
    loop {
        let mut sent = false;
        let attempt = async {
            let (_, mut client) = metadata.leader(&tp.0, tp.1).await?;
            sent = true;
            let mut request = tonic::Request::new(pb::ProduceRequest {
                topic: tp.0.clone(),
                partition: tp.1,
                acks,
                records: batch.clone(),
                timeout_ms: timeout.as_millis() as u32,
                transactional_id: transactional_id.map(str::to_string),
            });
            request.set_timeout(timeout + Duration::from_secs(5));
            client
                .produce(request)
                .await
                .map(|r| r.into_inner().base_offset)
                .map_err(|s| ClientError::from_status(&s))
        };
        match attempt.await {
            Ok(base) => return Ok(base),
            Err(e)
                if (e.is_retriable() || gap_may_fill(&e, in_flight))
                    && Instant::now() + backoff < deadline =>
            {
                tracing::debug!(topic = %tp.0, partition = tp.1, "retrying produce: {e}");
                may_be_written |= sent;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                let _ = metadata.refresh(&tp.0).await;
            }
            // Refused now, but an earlier attempt may have landed: the outcome is
            // unknown, not a failure (guarantee 3: a definite error is never visible).
            Err(e) if may_be_written && !e.is_retriable() => {
                return Err(ClientError::Server {
                    code: ErrorCode::RequestTimedOut,
                    message: format!("{e}; an earlier attempt may have been written"),
                })
            }
            Err(e) => return Err(e),
        }
    }
}
