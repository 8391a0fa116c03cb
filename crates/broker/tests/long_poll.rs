//! Long-polling waits on the partitions it asks for: a consumer fetch waiting on `a` is
//! answered by a write to `a`, not by one to `b`, and an acks=all write is acknowledged
//! when its partition's high watermark reaches it; a follower's poll ends when the
//! high watermark it would learn moves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rill_broker::log::MemoryStorage;
use rill_broker::replica_manager::{FetchLimits, FetchPartitionRequest};
use rill_broker::{Acks, FlushPolicy, ReplicaManager};
use rill_common::record::RecordBatchBuilder;
use rill_metadata::{MetadataState, PartitionState, Topic};

/// Broker 1 leads `a`-0 and `b`-0, replicas [1, 2], with `isr`.
fn metadata(isr: &[u64]) -> Arc<MetadataState> {
    metadata_with(&[1, 2], isr)
}

/// Broker 1 leads `a`-0 and `b`-0 on `replicas`, with `isr`.
fn metadata_with(replicas: &[u64], isr: &[u64]) -> Arc<MetadataState> {
    let mut state = MetadataState::default();
    for name in ["a", "b"] {
        state.topics.insert(
            name.into(),
            Topic {
                name: name.into(),
                topic_id: format!("id-{name}"),
                configs: BTreeMap::from([("min.insync.replicas".to_string(), "1".to_string())]),
                partitions: vec![PartitionState {
                    partition: 0,
                    replicas: replicas.to_vec(),
                    leader: Some(1),
                    leader_epoch: 1,
                    isr: isr.to_vec(),
                    partition_epoch: 1,
                    elr: Vec::new(),
                    unclean_leader_epoch: None,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                }],
            },
        );
    }
    Arc::new(state)
}

fn batch() -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.push(None, Some(b"v"), 1);
    Bytes::from(b.build())
}

fn request(topic: &str, fetch_offset: u64) -> FetchPartitionRequest {
    FetchPartitionRequest {
        topic: topic.into(),
        partition: 0,
        fetch_offset,
        max_bytes: 1 << 20,
        current_leader_epoch: None,
        last_fetched_epoch: None,
        isolation: Default::default(),
    }
}

fn manager() -> Arc<ReplicaManager> {
    Arc::new(ReplicaManager::new(
        1,
        Arc::new(MemoryStorage::default()),
        FlushPolicy::Interval(Duration::from_secs(60)),
    ))
}

const LONG: FetchLimits = FetchLimits {
    max_wait: Duration::from_secs(60),
    min_bytes: 1,
    max_bytes: 1 << 20,
};

#[tokio::test]
async fn a_fetch_waits_for_its_own_partition_and_wakes_on_it() {
    let replicas = manager();
    replicas.apply_metadata(metadata(&[1]));
    let waiting = {
        let replicas = replicas.clone();
        tokio::spawn(async move { replicas.fetch(None, &[request("a", 0)], LONG).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let produced = replicas
        .produce("b", 0, Acks::Leader, batch(), Duration::from_secs(1), None)
        .await;
    assert!(produced.is_ok(), "{produced:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "a write to b does not answer a fetch of a"
    );
    let produced = replicas
        .produce("a", 0, Acks::Leader, batch(), Duration::from_secs(1), None)
        .await;
    assert!(produced.is_ok(), "{produced:?}");
    let results = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap_or_else(|_| panic!("the write to a did not wake its fetch"))
        .unwrap_or_else(|e| panic!("{e}"));
    let fetched = results.into_iter().next().map(|r| r.result);
    assert!(
        matches!(&fetched, Some(Ok(f)) if f.batches.len() == 1),
        "{fetched:?}"
    );
}

#[tokio::test]
async fn an_acks_all_write_is_acknowledged_when_the_follower_fetches_past_it() {
    let replicas = manager();
    replicas.apply_metadata(metadata(&[1, 2]));
    let writing = {
        let replicas = replicas.clone();
        tokio::spawn(async move {
            replicas
                .produce("a", 0, Acks::All, batch(), Duration::from_secs(30), None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writing.is_finished(), "broker 2 has not fetched it yet");
    // Broker 2 fetches from offset 1: it holds offset 0, so the high watermark moves.
    let limits = FetchLimits {
        max_wait: Duration::ZERO,
        ..LONG
    };
    replicas.fetch(Some(2), &[request("a", 1)], limits).await;
    let produced = tokio::time::timeout(Duration::from_secs(10), writing)
        .await
        .unwrap_or_else(|_| panic!("the follower's progress did not acknowledge the write"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(produced.is_ok(), "{produced:?}");
}

#[tokio::test]
async fn a_followers_poll_ends_when_the_high_watermark_moves() {
    let replicas = manager();
    replicas.apply_metadata(metadata_with(&[1, 2, 3], &[1, 2, 3]));
    let produced = replicas
        .produce("a", 0, Acks::Leader, batch(), Duration::from_secs(1), None)
        .await;
    assert!(produced.is_ok(), "{produced:?}");
    // Broker 3 holds offset 0 and waits at the log end; broker 2 has not fetched yet.
    let waiting = {
        let replicas = replicas.clone();
        tokio::spawn(async move { replicas.fetch(Some(3), &[request("a", 1)], LONG).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "nothing new for broker 3 yet");
    // Broker 2 catches up: the high watermark moves to 1, and broker 3 must learn it
    // now rather than at the end of its poll.
    let limits = FetchLimits {
        max_wait: Duration::ZERO,
        ..LONG
    };
    replicas.fetch(Some(2), &[request("a", 1)], limits).await;
    let results = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap_or_else(|_| panic!("the high watermark's move did not end broker 3's poll"))
        .unwrap_or_else(|e| panic!("{e}"));
    let high_watermark = results
        .into_iter()
        .next()
        .and_then(|r| r.result.ok())
        .map(|f| f.offsets.high_watermark);
    assert_eq!(high_watermark, Some(1));
}
