//! The broker's background tasks: follow the metadata, enforce retention, checkpoint
//! high watermarks, flush on a timer (interval mode) and delete orphaned replicas once
//! the metadata has caught up. Each stops on the cancellation token.

use std::sync::Arc;
use std::time::Duration;

use rill_broker::{FlushPolicy, ReplicaManager};
use rill_metadata::{ControllerReply, ControllerRequest, MetadataNode};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::NodeConfig;

/// The most ISR changes one request (and one metadata entry) carries.
const ISR_CHANGES_PER_REQUEST: usize = 1_000;

pub fn spawn(
    config: &NodeConfig,
    metadata: Arc<MetadataNode>,
    replicas: Arc<ReplicaManager>,
    cancel: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();

    // Replicas follow the metadata only once this incarnation has registered: the
    // registration fenced the previous one (new leader epochs), so nothing is served
    // under an epoch the previous incarnation led with data it may have lost.
    let mut watch = metadata.watch();
    let mut registered = metadata.broker_epoch_watch();
    let (r, c) = (replicas.clone(), cancel.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                changed = watch.changed() => if changed.is_err() { return },
                changed = registered.changed() => if changed.is_err() { return },
            }
            if registered.borrow_and_update().is_none() {
                continue;
            }
            let state = watch.borrow_and_update().clone();
            r.apply_metadata(state);
        }
    }));

    let (m, r, c) = (metadata.clone(), replicas.clone(), cancel.clone());
    tasks.push(tokio::spawn(async move {
        while !m.is_ready() {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        r.apply_metadata(m.state());
        r.delete_orphans();
    }));

    tasks.push(tokio::spawn(rill_broker::fetcher::run_fetchers(
        replicas.clone(),
        metadata.channels().clone(),
        rill_broker::fetcher::follower_fetch_wait(config.replica_lag_time_max),
        config.replica_throttle_bytes,
        cancel.clone(),
    )));

    // The leader's ISR changes go to the controller; one that failed is proposed again
    // a lag period later. A refusal is reported back: the high watermark stops waiting
    // for replicas the refused change would have added.
    let lag_max = config.replica_lag_time_max;
    let (m, r, c) = (metadata.clone(), replicas.clone(), cancel.clone());
    tasks.push(tokio::spawn(async move {
        let tick = (lag_max / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            let Some(broker_epoch) = m.broker_epoch() else {
                continue;
            };
            let changes = r.isr_changes(lag_max, broker_epoch);
            // Many partitions' changes (a follower that died or came back) cost one
            // request and one metadata entry per chunk, not one per partition.
            for chunk in changes.chunks(ISR_CHANGES_PER_REQUEST) {
                let (m, r, chunk) = (m.clone(), r.clone(), chunk.to_vec());
                tokio::spawn(async move {
                    let asked = chunk.len();
                    let first = chunk
                        .first()
                        .map(|c| format!("{}-{} ISR {:?}", c.topic, c.partition, c.isr));
                    let request = ControllerRequest::AlterPartitions(chunk.clone());
                    match m.submit(request).await {
                        Ok(ControllerReply::PartitionsAltered { results }) => {
                            let mut refused = Vec::new();
                            for (change, result) in chunk.iter().zip(&results) {
                                if let Err(why) = result {
                                    r.isr_change_refused(change);
                                    refused.push(why);
                                }
                            }
                            if let Some((code, message)) = refused.first() {
                                warn!(
                                    refused = refused.len(),
                                    asked, "ISR changes refused, the first: {code}: {message}"
                                );
                            }
                        }
                        Ok(other) => warn!("unexpected answer to ISR changes: {other:?}"),
                        Err(e) => {
                            warn!(
                                asked,
                                "ISR changes refused ({}, ...): {e}",
                                first.unwrap_or_default()
                            )
                        }
                    }
                });
            }
        }
    }));

    tasks.push(every(
        config.log_retention_check_interval,
        cancel.clone(),
        {
            let r = replicas.clone();
            move || r.enforce_retention()
        },
    ));
    tasks.push(every(Duration::from_secs(1), cancel.clone(), {
        let r = replicas.clone();
        move || r.checkpoint_partitions()
    }));

    if let FlushPolicy::Interval(interval) = replicas.flush_policy() {
        let (r, c) = (replicas, cancel);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                if let Err(e) = r.flush().await {
                    warn!("interval flush failed: {e}");
                }
            }
        }));
    }
    tasks
}

/// Runs `work` (blocking storage work) every `interval` until cancelled.
fn every(
    interval: Duration,
    cancel: CancellationToken,
    work: impl Fn() + Send + Sync + 'static,
) -> JoinHandle<()> {
    let work = Arc::new(work);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let w = work.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || w()).await {
                warn!("background storage task failed: {e}");
            }
        }
    })
}
