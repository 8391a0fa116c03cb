//! The leader side of KIP-595 through the replica manager's public API: a follower fetch
//! whose last batch's epoch does not match the leader's log gets the diverging epoch and
//! no records; a matching one gets records and counts as the follower's progress.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rill_broker::divergence::Diverging;
use rill_broker::log::MemoryStorage;
use rill_broker::replica_manager::{FetchLimits, FetchPartitionRequest, Fetched};
use rill_broker::{Acks, FlushPolicy, ReplicaManager};
use rill_common::record::RecordBatchBuilder;
use rill_metadata::{MetadataState, PartitionState, Topic};

/// Broker 1 leads t-0 (replicas 1, 2, 3) at `leader_epoch`.
fn metadata(leader_epoch: u64) -> Arc<MetadataState> {
    let mut state = MetadataState::default();
    state.topics.insert(
        "t".into(),
        Topic {
            name: "t".into(),
            topic_id: "id-t".into(),
            configs: BTreeMap::from([("min.insync.replicas".to_string(), "1".to_string())]),
            partitions: vec![PartitionState {
                partition: 0,
                replicas: vec![1, 2, 3],
                leader: Some(1),
                leader_epoch,
                isr: vec![1],
                partition_epoch: leader_epoch,
                elr: Vec::new(),
                unclean_leader_epoch: None,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            }],
        },
    );
    Arc::new(state)
}

fn batch(records: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    for _ in 0..records {
        b.push(None, Some(b"v"), 1);
    }
    Bytes::from(b.build())
}

async fn follower_fetch(
    replicas: &ReplicaManager,
    fetch_offset: u64,
    last_fetched_epoch: Option<i32>,
) -> Fetched {
    let request = FetchPartitionRequest {
        topic: "t".into(),
        partition: 0,
        fetch_offset,
        max_bytes: 1 << 20,
        current_leader_epoch: Some(4),
        last_fetched_epoch,
        isolation: Default::default(),
    };
    let mut results = replicas
        .fetch(
            Some(2),
            &[request],
            FetchLimits {
                max_wait: Duration::ZERO,
                min_bytes: 0,
                max_bytes: 1 << 20,
            },
        )
        .await;
    match results.pop().map(|r| r.result) {
        Some(Ok(fetched)) => fetched,
        other => panic!("fetch failed: {other:?}"),
    }
}

#[tokio::test]
async fn a_follower_past_the_end_of_its_epoch_gets_the_diverging_epoch_and_no_records() {
    let replicas = ReplicaManager::new(
        1,
        Arc::new(MemoryStorage::default()),
        FlushPolicy::Interval(Duration::from_secs(60)),
    );
    // Epoch 3 writes offsets 0..4, epoch 4 (a new leadership of the same broker) 4..6.
    replicas.apply_metadata(metadata(3));
    let produced = replicas
        .produce("t", 0, Acks::Leader, batch(4), Duration::from_secs(1), None)
        .await;
    assert!(produced.is_ok(), "{produced:?}");
    replicas.apply_metadata(metadata(4));
    let produced = replicas
        .produce("t", 0, Acks::Leader, batch(2), Duration::from_secs(1), None)
        .await;
    assert!(produced.is_ok(), "{produced:?}");

    // The follower holds epoch 3 up to 5: one record more than epoch 3 has here.
    let diverged = follower_fetch(&replicas, 5, Some(3)).await;
    assert_eq!(diverged.diverging, Some(Diverging(Some((3, 4)))));
    assert!(diverged.batches.is_empty());

    // An epoch older than any this leader has: it can name none.
    let diverged = follower_fetch(&replicas, 4, Some(2)).await;
    assert_eq!(diverged.diverging, Some(Diverging(None)));

    // Matching: epoch 3 up to 4, or epoch 4 up to 6.
    let matching = follower_fetch(&replicas, 4, Some(3)).await;
    assert_eq!(matching.diverging, None);
    assert_eq!(matching.batches.len(), 1);
    let caught_up = follower_fetch(&replicas, 6, Some(4)).await;
    assert_eq!((caught_up.diverging, caught_up.batches.len()), (None, 0));
}
