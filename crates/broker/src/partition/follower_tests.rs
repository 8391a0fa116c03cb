//! A replica's follower side and the leader's high watermark rule, fed events directly:
//! answers of a deposed leader, truncation requests below the high watermark, and the
//! strict min-ISR high watermark (KIP-966), and the ISR the leader proposes (the high
//! watermark over the maximal ISR).

use std::time::Duration;

use rill_common::record::{self, RecordBatchBuilder};

use super::*;
use crate::log::{LogStorage, MemoryStorage};

fn role(leader: BrokerId, leader_epoch: i32, isr: &[BrokerId], min_isr: usize) -> Role {
    test_role(leader, leader_epoch, &[1, 2, 3], isr, min_isr)
}

/// Broker `me`'s replica of t-0 with the role given.
fn replica(me: BrokerId, role: Role) -> Partition {
    let key = PartitionKey {
        topic_id: "t".into(),
        partition: 0,
    };
    let (log, _) = MemoryStorage::default()
        .open(&key)
        .unwrap_or_else(|e| panic!("{e}"));
    Partition::new("t".into(), key, me, log, role)
}

/// A batch of `records` records as a leader stamped it: at `base_offset`, in `epoch`.
fn leader_batch(base_offset: u64, epoch: i32, records: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new();
    for _ in 0..records {
        b.push(None, Some(b"v"), 1);
    }
    let mut batch = b.build();
    record::set_base_offset(&mut batch, base_offset);
    record::set_partition_leader_epoch(&mut batch, epoch);
    batch
}

fn following(p: &Partition) -> Leadership {
    p.following().unwrap_or_else(|| panic!("not following"))
}

/// Broker `me`, following `leader` at epoch 3 (ISR 1, 2, 3, min ISR 2), fetched
/// `records` records and flushed them, and heard of `high_watermark`.
fn follower_that_fetched(
    me: BrokerId,
    leader: BrokerId,
    records: usize,
    high_watermark: u64,
) -> Partition {
    let p = replica(me, role(leader, 3, &[1, 2, 3], 2));
    let from = following(&p);
    assert_eq!(
        p.append_fetched(from, &leader_batch(0, 3, records)).ok(),
        Some(true)
    );
    p.mark_fetched_durable(from, records as u64);
    p.follow_high_watermark(from, high_watermark);
    p
}

#[test]
fn a_deposed_leaders_late_answer_is_dropped() {
    let p = replica(2, role(1, 3, &[1, 2, 3], 2));
    let old = following(&p);
    assert_eq!(
        p.append_fetched(old, &leader_batch(0, 3, 2)).ok(),
        Some(true)
    );
    // Leader 3 takes over at epoch 4 while a fetch to leader 1 is in flight.
    p.set_role(role(3, 4, &[2, 3], 2));
    assert_eq!(
        p.append_fetched(old, &leader_batch(2, 3, 2)).ok(),
        Some(false),
        "a batch of the deposed leader must not be appended after the role changed"
    );
    assert_eq!(p.truncate_following(old, 0).ok(), Some(false));
    p.follow_high_watermark(old, 2);
    assert_eq!((p.log().log_end_offset(), p.high_watermark()), (2, 0));
    let new = following(&p);
    assert_eq!(new.leader, 3);
    assert_eq!(
        p.append_fetched(new, &leader_batch(2, 4, 1)).ok(),
        Some(true)
    );
    p.follow_high_watermark(new, 3);
    assert_eq!((p.log().log_end_offset(), p.high_watermark()), (3, 3));
    assert_eq!(p.log().fetch_position(), (3, Some(4)));
}

#[test]
fn a_cut_below_the_high_watermark_is_refused_unless_an_unclean_election_came_after() {
    let p = replica(2, role(1, 3, &[1, 2, 3], 2));
    let from = following(&p);
    assert_eq!(
        p.append_fetched(from, &leader_batch(0, 3, 4)).ok(),
        Some(true)
    );
    p.follow_high_watermark(from, 4);
    // A divergent suffix above the high watermark goes.
    assert_eq!(
        p.append_fetched(from, &leader_batch(4, 3, 2)).ok(),
        Some(true)
    );
    assert_eq!(p.truncate_following(from, 4).ok(), Some(true));
    assert_eq!(p.log().log_end_offset(), 4);
    // A leader without the committed records (an emptied store) asks for everything.
    let refused = p.truncate_following(from, 0);
    assert!(matches!(
        refused,
        Err(BrokerError::TruncationRefused {
            target: 0,
            high_watermark: 4
        })
    ));
    assert_eq!(p.log().log_end_offset(), 4, "committed records kept");
    assert!(p.truncation_refused_by(from));
    // The operator elects leader 3 uncleanly at epoch 5: older data may go.
    let mut unclean = role(3, 5, &[3], 2);
    unclean.unclean_leader_epoch = Some(5);
    p.set_role(unclean);
    let from = following(&p);
    assert!(!p.truncation_refused_by(from));
    assert_eq!(p.truncate_following(from, 0).ok(), Some(true));
    assert_eq!((p.log().log_end_offset(), p.high_watermark()), (0, 0));
}

#[test]
fn the_high_watermark_stands_still_while_the_isr_is_below_min_isr() {
    let p = replica(1, role(1, 0, &[1], 2));
    let mut b = RecordBatchBuilder::new();
    b.push(None, Some(b"v"), 1);
    assert!(p.append_as_leader(&mut b.build(), false).is_ok());
    p.mark_durable(1);
    assert_eq!(p.high_watermark(), 0, "acks=1 alone commits nothing");
    // The ISR grows back to min.insync.replicas; the follower has the record.
    p.set_role(role(1, 0, &[1, 2], 2));
    p.record_follower_fetch(2, 1);
    assert_eq!(p.high_watermark(), 1);
}

#[test]
fn a_new_leader_counts_what_it_fetched_durably_toward_its_high_watermark() {
    // Broker 2 opened empty, fetched 3 records from leader 1 and flushed them; the
    // leader's high watermark reached only 1 before it died.
    let p = follower_that_fetched(2, 1, 3, 1);
    // Broker 2 leads at epoch 4 and broker 3, which has all 3 records, reports in.
    p.set_role(role(2, 4, &[2, 3], 2));
    p.record_follower_fetch(3, 3);
    assert_eq!(
        p.high_watermark(),
        3,
        "records acknowledged under the old leader commit without a new write"
    );
}

#[test]
fn a_deposed_leaders_flush_does_not_count_as_durable() {
    let p = replica(2, role(1, 3, &[1, 2, 3], 2));
    let old = following(&p);
    assert_eq!(
        p.append_fetched(old, &leader_batch(0, 3, 3)).ok(),
        Some(true)
    );
    // The role moves before the fetch's flush ends: the late mark is dropped.
    p.set_role(role(2, 4, &[2, 3], 2));
    p.mark_fetched_durable(old, 3);
    p.record_follower_fetch(3, 3);
    assert_eq!(
        p.high_watermark(),
        0,
        "nothing counted durable that was not"
    );
}

/// Leader 1 of t-0 (replicas 1, 2, 3) with `records` records appended and durable.
fn leader_with(isr: &[BrokerId], min_isr: usize, records: usize) -> Partition {
    let p = replica(1, role(1, 0, isr, min_isr));
    append_records(&p, records);
    p
}

fn append_records(p: &Partition, records: usize) {
    let mut b = RecordBatchBuilder::new();
    for _ in 0..records {
        b.push(None, Some(b"v"), 1);
    }
    assert!(p.append_as_leader(&mut b.build(), false).is_ok());
    p.mark_durable(p.log().log_end_offset());
}

fn with_partition_epoch(mut role: Role, partition_epoch: u64) -> Role {
    role.partition_epoch = partition_epoch;
    role
}

const LAG_MAX: Duration = Duration::from_secs(10);

#[test]
fn a_replica_proposed_for_the_isr_holds_the_high_watermark_until_the_metadata_moves_on() {
    let p = leader_with(&[1, 3], 2, 2);
    p.record_follower_fetch(3, 2);
    assert_eq!(p.high_watermark(), 2);
    // Broker 2 reaches the high watermark: the leader proposes it for the ISR.
    p.record_follower_fetch(2, 2);
    let proposal = p.isr_proposal(LAG_MAX, Instant::now()).map(|(_, isr)| isr);
    assert_eq!(proposal, Some(vec![1, 2, 3]));
    // More records reach broker 3 but not broker 2 while the proposal is in flight:
    // the controller may still write it, and then broker 2 could be elected.
    append_records(&p, 3);
    p.record_follower_fetch(3, 5);
    assert_eq!(
        p.high_watermark(),
        2,
        "the high watermark waits for a replica that may join the ISR"
    );
    assert_eq!(
        p.isr_proposal(LAG_MAX, Instant::now()),
        None,
        "one proposal per lag period"
    );
    // The metadata moved on without broker 2 (another write won the partition epoch):
    // the proposal can no longer be written.
    p.set_role(with_partition_epoch(role(1, 0, &[1, 3], 2), 1));
    assert_eq!(p.high_watermark(), 5);
}

#[test]
fn a_written_proposal_keeps_the_new_member_in_the_high_watermark() {
    let p = leader_with(&[1, 3], 2, 2);
    p.record_follower_fetch(3, 2);
    p.record_follower_fetch(2, 2);
    assert!(p.isr_proposal(LAG_MAX, Instant::now()).is_some());
    p.set_role(with_partition_epoch(role(1, 0, &[1, 2, 3], 2), 1));
    append_records(&p, 3);
    p.record_follower_fetch(3, 5);
    assert_eq!(p.high_watermark(), 2);
    p.record_follower_fetch(2, 5);
    assert_eq!(p.high_watermark(), 5);
}

#[test]
fn a_proposed_replica_that_falls_behind_is_voided_by_proposing_the_isr_again() {
    let p = leader_with(&[1], 1, 2);
    assert_eq!(p.high_watermark(), 2);
    p.record_follower_fetch(2, 2);
    let proposed_at = Instant::now();
    let proposal = p.isr_proposal(LAG_MAX, proposed_at).map(|(_, isr)| isr);
    assert_eq!(proposal, Some(vec![1, 2]));
    append_records(&p, 3);
    assert_eq!(p.high_watermark(), 2, "waits for broker 2");
    // Broker 2 stops fetching; a lag period later the leader asks for the ISR it has,
    // which moves the partition epoch past the proposal that added broker 2.
    let later = proposed_at + LAG_MAX + Duration::from_secs(1);
    let proposal = p.isr_proposal(LAG_MAX, later).map(|(_, isr)| isr);
    assert_eq!(proposal, Some(vec![1]));
    assert_eq!(p.high_watermark(), 2);
    p.set_role(with_partition_epoch(role(1, 0, &[1], 1), 1));
    assert_eq!(p.high_watermark(), 5);
    assert_eq!(
        p.isr_proposal(LAG_MAX, later),
        None,
        "nothing left to propose"
    );
}

#[test]
fn a_follower_that_stops_fetching_leaves_the_isr_after_the_lag_period() {
    let p = leader_with(&[1, 2, 3], 2, 2);
    p.record_follower_fetch(2, 2);
    p.record_follower_fetch(3, 2);
    let now = Instant::now();
    assert_eq!(p.isr_proposal(LAG_MAX, now), None);
    let later = now + LAG_MAX + Duration::from_secs(1);
    let proposal = p.isr_proposal(LAG_MAX, later).map(|(_, isr)| isr);
    assert_eq!(proposal, Some(vec![1]));
    assert_eq!(
        p.high_watermark(),
        2,
        "a removal waits for the metadata: the ISR there still holds 2 and 3"
    );
}

#[test]
fn a_refused_proposal_no_longer_holds_the_high_watermark_unless_an_earlier_one_is_in_doubt() {
    let p = leader_with(&[1], 1, 2);
    p.record_follower_fetch(2, 2);
    let first_at = Instant::now();
    assert!(p.isr_proposal(LAG_MAX, first_at).is_some());
    append_records(&p, 3);
    assert_eq!(p.high_watermark(), 2);
    // The controller refuses it (broker 2 is fenced): nothing was written.
    p.isr_proposal_refused(0);
    assert_eq!(p.high_watermark(), 5);
    assert_eq!(
        p.isr_proposal(LAG_MAX, first_at),
        None,
        "the next proposal waits out the lag period"
    );

    // Now a proposal gets no answer and a lag period later another one is refused:
    // the first may still be written, so the high watermark keeps waiting.
    let p = leader_with(&[1], 1, 2);
    p.record_follower_fetch(2, 2);
    assert!(p.isr_proposal(LAG_MAX, first_at).is_some());
    let second_at = first_at + LAG_MAX + Duration::from_secs(1);
    p.record_follower_fetch(2, 2);
    assert!(p.isr_proposal(LAG_MAX, second_at).is_some());
    append_records(&p, 3);
    p.isr_proposal_refused(0);
    assert_eq!(p.high_watermark(), 2);
}

#[test]
fn a_replica_joins_the_isr_only_once_it_holds_what_the_new_leader_started_its_epoch_with() {
    // Broker 1 fetched 5 records under leader 3, which acknowledged them all; broker 1
    // heard of a high watermark of 2 only, then became leader at epoch 4.
    let p = follower_that_fetched(1, 3, 5, 2);
    p.set_role(role(1, 4, &[1, 2], 2));
    // Broker 3 (out of the ISR) comes back holding 3 records: above the high watermark
    // but short of what leader 3 acknowledged.
    p.record_follower_fetch(3, 3);
    assert_eq!(p.isr_proposal(LAG_MAX, Instant::now()), None);
    p.record_follower_fetch(3, 5);
    let proposal = p.isr_proposal(LAG_MAX, Instant::now()).map(|(_, isr)| isr);
    assert_eq!(proposal, Some(vec![1, 2, 3]));
}
