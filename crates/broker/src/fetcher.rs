//! Follower fetch: one task per leader broker pulls every partition this broker follows
//! from it in one Fetch (Kafka style), appends the batches, makes them durable before the
//! next fetch reports the new log end, and follows the leader's high watermark. A
//! partition whose role changed first truncates to where its last epoch ends on the
//! leader (OffsetForLeaderEpoch, KIP-101/279; the high watermark is the fallback), and
//! every fetch carries the epoch of the replica's last batch, so a leader whose log
//! differs there answers with the diverging epoch and the replica truncates and fetches
//! again (KIP-595), whatever the fault history. Answers apply only while the leadership
//! they were asked of lasts: a deposed leader's late answer is dropped. Replicas a
//! reassignment is adding fetch under the node's replication throttle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rill_common::record::split_batches;
use rill_common::{BrokerId, ErrorCode};
use rill_metadata::ChannelPool;
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_client::BrokerServiceClient;
use rill_proto::NodeChannel;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::divergence::{truncation_target, EpochEnd};
use crate::partition::{Leadership, Partition};
use crate::replica_manager::FlushPolicy;
use crate::throttle::ByteThrottle;
use crate::{BrokerError, ReplicaManager};

/// The replication throttle all of this broker's fetchers share.
type SharedThrottle = Arc<Mutex<ByteThrottle>>;

const PARTITION_MAX_BYTES: u32 = 4 << 20;
const FETCH_MAX_BYTES: u32 = 32 << 20;
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// How long a follower's fetch may wait at the leader with nothing new, given the
/// leaders' `replica.lag.time.max.ms`: long, so an idle partition costs little (each
/// fetch names every partition followed from that leader), and well within the lag, so
/// a waiting follower stays in the ISR (the leader counts it caught up at both ends of
/// the wait). New data, a high watermark move or a leadership change ends it sooner.
pub fn follower_fetch_wait(replica_lag_time_max: Duration) -> Duration {
    (replica_lag_time_max / 2).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Starts and stops the per-leader fetcher tasks as leadership moves.
/// `throttle_bytes_per_s` (`replica.throttle.bytes`, 0 = none) bounds how fast the
/// replicas a reassignment adds are fetched, over all leaders together.
pub async fn run_fetchers(
    replicas: Arc<ReplicaManager>,
    channels: ChannelPool,
    max_wait: Duration,
    throttle_bytes_per_s: u64,
    cancel: CancellationToken,
) {
    let throttle = Arc::new(Mutex::new(ByteThrottle::new(
        throttle_bytes_per_s,
        Instant::now(),
    )));
    let mut workers: HashMap<BrokerId, JoinHandle<()>> = HashMap::new();
    let mut roles = replicas.subscribe_role_changes();
    let mut rescan = true;
    loop {
        if rescan {
            workers.retain(|_, task| !task.is_finished());
            for leader in replicas.followed_leaders() {
                workers.entry(leader).or_insert_with(|| {
                    tokio::spawn(fetch_from(
                        replicas.clone(),
                        leader,
                        channels.clone(),
                        max_wait,
                        throttle.clone(),
                        cancel.clone(),
                    ))
                });
            }
        }
        // Leaderships move, or a worker ended (its leader led nothing of ours when it
        // looked, perhaps just before a role change): look again. Otherwise nothing is
        // scanned, however many partitions this broker follows.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = roles.changed() => rescan = true,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                rescan = workers.values().any(|task| task.is_finished());
            }
        }
    }
    for (_, task) in workers {
        let _ = task.await;
    }
}

/// Fetches from one leader until it leads none of this broker's partitions.
async fn fetch_from(
    replicas: Arc<ReplicaManager>,
    leader: BrokerId,
    channels: ChannelPool,
    max_wait: Duration,
    throttle: SharedThrottle,
    cancel: CancellationToken,
) {
    let mut roles = replicas.subscribe_role_changes();
    loop {
        if cancel.is_cancelled() {
            return;
        }
        // Seen before planning: a role change from here on ends the fetch planned now.
        roles.borrow_and_update();
        let partitions: Vec<Arc<Partition>> = replicas
            .followed_partitions()
            .into_iter()
            .filter(|(l, _)| *l == leader)
            .map(|(_, p)| p)
            .collect();
        if partitions.is_empty() {
            return;
        }
        let client = replicas
            .broker_addr(leader)
            .and_then(|addr| channels.get(&addr).ok())
            .map(|c| {
                BrokerServiceClient::new(c)
                    .max_decoding_message_size(rill_proto::MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(rill_proto::MAX_MESSAGE_BYTES)
            });
        let outcome = match client {
            Some(client) => {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = fetch_once(&replicas, leader, client, &partitions, max_wait, &throttle, &mut roles) => r,
                }
            }
            None => Err(BrokerError::NotLeader(format!(
                "no address for broker {leader}"
            ))),
        };
        replicas.storage_health().observe(&outcome);
        if let Err(e) = outcome {
            tracing::debug!(leader, "follower fetch failed: {e}");
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(RETRY_DELAY) => {}
            }
        }
    }
}

/// How the throttle shapes one fetch: the replicas being added sit it out while the
/// budget is spent (and the fetch then waits no longer than the budget takes to come
/// back), else they share what is left.
struct Throttled {
    /// Per partition in `following`: it fetches under the throttle.
    flags: Vec<bool>,
    partition_max_bytes: u32,
    max_wait: Duration,
}

fn throttle_fetch(
    throttle: &SharedThrottle,
    following: &mut Vec<(&Arc<Partition>, Leadership)>,
    max_wait: Duration,
) -> Throttled {
    let adding = |p: &Partition| p.role().adding;
    let count = following.iter().filter(|(p, _)| adding(p)).count() as u64;
    let mut throttled = Throttled {
        flags: Vec::new(),
        partition_max_bytes: PARTITION_MAX_BYTES,
        max_wait,
    };
    if count > 0 {
        let mut bucket = throttle.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match bucket.available(now).checked_div(count) {
            Some(0) | None => {
                following.retain(|(p, _)| !adding(p));
                throttled.max_wait = max_wait.min(bucket.wait_for(count, now).max(RETRY_DELAY / 4));
            }
            Some(share) => {
                let share = share.min(u64::from(PARTITION_MAX_BYTES));
                throttled.partition_max_bytes = u32::try_from(share).unwrap_or(PARTITION_MAX_BYTES);
            }
        }
    }
    throttled.flags = following.iter().map(|(p, _)| adding(p)).collect();
    throttled
}

fn grpc_error(status: &tonic::Status) -> BrokerError {
    BrokerError::NotLeader(format!("fetch from leader failed: {}", status.message()))
}

async fn fetch_once(
    replicas: &ReplicaManager,
    leader: BrokerId,
    mut client: BrokerServiceClient<NodeChannel>,
    partitions: &[Arc<Partition>],
    max_wait: Duration,
    throttle: &SharedThrottle,
    roles: &mut tokio::sync::watch::Receiver<u64>,
) -> Result<(), BrokerError> {
    // Each partition is fetched for the leadership it follows now; every answer is
    // applied only while that leadership lasts (a role change drops late answers).
    let following: Vec<(&Arc<Partition>, Leadership)> = partitions
        .iter()
        .filter_map(|p| Some((p, p.following().filter(|f| f.leader == leader)?)))
        .filter(|(p, from)| !p.truncation_refused_by(*from))
        .collect();
    for (p, from) in &following {
        if p.take_truncation_need() {
            if let Err(e) = truncate(&mut client, p, *from).await {
                p.require_truncation();
                return Err(e);
            }
        }
    }
    let mut following: Vec<(&Arc<Partition>, Leadership)> = following
        .into_iter()
        .filter(|(p, from)| !p.truncation_refused_by(*from))
        .collect();
    let planned = !following.is_empty();
    let throttled = throttle_fetch(throttle, &mut following, max_wait);
    if following.is_empty() {
        let wait = if planned {
            throttled.max_wait
        } else {
            RETRY_DELAY
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = roles.changed() => {}
        }
        return Ok(());
    }
    let request = pb::FetchRequest {
        replica_id: replicas.broker_id() as i64,
        max_wait_ms: u32::try_from(throttled.max_wait.as_millis()).unwrap_or(u32::MAX),
        min_bytes: 1,
        max_bytes: FETCH_MAX_BYTES,
        // Followers read up to the log end whatever this says.
        isolation_level: pb::IsolationLevel::ReadUncommitted.into(),
        partitions: following
            .iter()
            .zip(&throttled.flags)
            .map(|((p, from), throttled_here)| {
                let (fetch_offset, last_fetched_epoch) = p.log().fetch_position();
                pb::FetchPartition {
                    topic: p.topic.clone(),
                    partition: p.key.partition,
                    fetch_offset,
                    partition_max_bytes: if *throttled_here {
                        throttled.partition_max_bytes
                    } else {
                        PARTITION_MAX_BYTES
                    },
                    current_leader_epoch: Some(from.leader_epoch),
                    last_fetched_epoch,
                }
            })
            .collect(),
    };
    // A leadership this broker follows moved while the fetch waits: plan again now (no
    // answer was applied yet, so dropping this one loses nothing).
    let response = tokio::select! {
        r = client.fetch(request) => r.map_err(|s| grpc_error(&s))?.into_inner(),
        _ = roles.changed() => return Ok(()),
    };
    let throttled_bytes: usize = response
        .partitions
        .iter()
        .zip(&throttled.flags)
        .filter(|(_, throttled_here)| **throttled_here)
        .map(|(r, _)| r.records.len())
        .sum();
    if throttled_bytes > 0 {
        throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .charge(throttled_bytes as u64, Instant::now());
    }
    let mut appended = Vec::new();
    let mut stale = false;
    let mut high_watermarks = Vec::new();
    for (r, (p, from)) in response.partitions.iter().zip(&following) {
        if !r.error_code.is_empty() {
            match r.error_code.parse::<ErrorCode>() {
                Ok(ErrorCode::OffsetOutOfRange) => p.require_truncation(),
                _ => stale = true,
            }
            continue;
        }
        if let Some(d) = &r.diverging_epoch {
            // KIP-595: the leader's log does not hold our last epoch up to our log end.
            let leader_end = d.epoch.zip(d.end_offset);
            let log_end = p.log().log_end_offset();
            truncate_to_leader(p, *from, leader_end, Some(r.log_end_offset))?;
            // An answer that moved nothing (or a refused cut) is not retried at once.
            stale |= p.log().log_end_offset() == log_end;
            continue;
        }
        let mut appended_to = None;
        for (header, batch) in split_batches(&r.records)? {
            let log_end = p.log().log_end_offset();
            if header.next_offset() <= log_end {
                continue;
            }
            if header.base_offset != log_end {
                warn!(topic = %p.topic, partition = p.key.partition, "leader batch at {} does not continue the log at {log_end}", header.base_offset);
                p.require_truncation();
                break;
            }
            if !p.append_fetched(*from, &batch)? {
                break;
            }
            appended_to = Some(header.next_offset());
        }
        if let Some(next) = appended_to {
            appended.push((p, *from, next));
        }
        high_watermarks.push((p, *from, r.high_watermark, r.log_start_offset));
    }
    // What the next fetch reports as this replica's log end must be on disk.
    if !appended.is_empty() && replicas.flush_policy() == FlushPolicy::Group {
        replicas.flush().await?;
    }
    for (p, from, next) in appended {
        p.mark_fetched_durable(from, next);
    }
    for (p, from, hw, log_start) in high_watermarks {
        p.follow_high_watermark(from, hw);
        if let Err(e) = p.follow_log_start(from, log_start) {
            warn!(topic = %p.topic, partition = p.key.partition, "cannot move the log start to the leader's {log_start}: {e}");
        }
    }
    if stale {
        // Leadership or epochs moved; the metadata will tell this broker where to go.
        tokio::time::sleep(RETRY_DELAY).await;
    }
    Ok(())
}

/// Truncates a follower to where its latest epoch ends on the leader (KIP-101), or to
/// the smaller end of the latest epoch both know (KIP-279); the high watermark when the
/// leader knows no such epoch.
async fn truncate(
    client: &mut BrokerServiceClient<NodeChannel>,
    p: &Partition,
    from: Leadership,
) -> Result<(), BrokerError> {
    let Some(my_epoch) = p.log().latest_epoch() else {
        return Ok(());
    };
    let request = pb::OffsetForLeaderEpochRequest {
        topic: p.topic.clone(),
        partition: p.key.partition,
        leader_epoch: my_epoch,
        current_leader_epoch: from.leader_epoch,
    };
    let response = client
        .offset_for_leader_epoch(request)
        .await
        .map_err(|s| grpc_error(&s))?
        .into_inner();
    truncate_to_leader(
        p,
        from,
        response.leader_epoch.zip(response.end_offset),
        None,
    )
}

/// Cuts the divergent suffix the leader's end of an epoch reveals. A cut below the high
/// watermark is refused (the partition then waits for another leader or an operator);
/// that is not an error of the fetch as a whole.
fn truncate_to_leader(
    p: &Partition,
    from: Leadership,
    leader_end: Option<EpochEnd>,
    leader_log_end: Option<u64>,
) -> Result<(), BrokerError> {
    let log = p.log();
    let target = truncation_target(
        leader_end,
        |epoch| log.end_offset_for_epoch(epoch),
        log.log_end_offset(),
        p.high_watermark(),
        leader_log_end,
    );
    match p.truncate_following(from, target) {
        Ok(_) | Err(BrokerError::TruncationRefused { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
