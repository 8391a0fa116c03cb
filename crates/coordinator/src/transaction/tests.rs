//! The transaction state machine driven by events and a fake clock (milliseconds).

use super::*;

const TIMEOUT: Duration = Duration::from_secs(60);
const T0: u64 = 1_000_000;

fn config() -> TxnConfig {
    TxnConfig {
        max_timeout: Duration::from_secs(900),
    }
}

fn pid(producer_id: i64, epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch { producer_id, epoch }
}

fn tp(topic: &str, partition: u32) -> TopicPartition {
    (topic.to_string(), partition)
}

fn offset(partition: u32, offset: u64) -> OffsetCommit {
    OffsetCommit {
        topic: "in".into(),
        partition,
        offset,
        metadata: String::new(),
        leader_epoch: None,
    }
}

fn markers(out: &[TxnOutput]) -> Vec<Markers> {
    out.iter()
        .filter_map(|o| match o {
            TxnOutput::WriteMarkers(m) => Some(m.clone()),
            TxnOutput::Persist => None,
        })
        .collect()
}

/// A new transactional id, initialised by its producer: Empty at epoch 1.
fn initialised() -> Transaction {
    let mut out = Vec::new();
    let mut txn = Transaction::new("copier", 7, TIMEOUT, T0, &mut out);
    assert_eq!(out, vec![TxnOutput::Persist]);
    assert_eq!((txn.state(), txn.producer()), (TxnState::Empty, pid(7, 0)));
    let got = txn.init_producer_id(T0, &config(), TIMEOUT, None, None, &mut out);
    assert_eq!(got, Ok(pid(7, 1)));
    txn
}

/// Ongoing at epoch 1 with out-0, out-1 and the group "g".
fn ongoing() -> Transaction {
    let mut txn = initialised();
    let mut out = Vec::new();
    let added = txn.add_partitions(T0 + 10, pid(7, 1), &[tp("out", 0), tp("out", 1)], &mut out);
    assert_eq!(added, Ok(()));
    assert_eq!(txn.add_offsets(T0 + 20, pid(7, 1), "g", &mut out), Ok(()));
    assert_eq!(txn.state(), TxnState::Ongoing);
    assert_eq!(txn.describe().started_ms, Some(T0 + 10));
    txn
}

#[test]
fn a_timeout_above_the_maximum_or_zero_is_refused() {
    let mut txn = initialised();
    let mut out = Vec::new();
    for timeout in [Duration::ZERO, Duration::from_secs(901)] {
        let got = txn.init_producer_id(T0, &config(), timeout, None, None, &mut out);
        assert_eq!(got, Err(ErrorCode::InvalidTransactionTimeout));
    }
    assert!(out.is_empty());
}

#[test]
fn adding_begins_the_transaction_and_only_news_are_persisted() {
    let mut txn = ongoing();
    let mut out = Vec::new();
    assert_eq!(
        txn.add_partitions(T0 + 30, pid(7, 1), &[tp("out", 1)], &mut out),
        Ok(())
    );
    assert!(out.is_empty(), "nothing new: {out:?}");
    assert_eq!(
        txn.add_partitions(T0 + 30, pid(7, 1), &[tp("out", 2)], &mut out),
        Ok(())
    );
    assert_eq!(out, vec![TxnOutput::Persist]);
    assert_eq!(txn.describe().partitions.len(), 3);
    assert_eq!(txn.verify_partition(pid(7, 1), &tp("out", 2)), Ok(()));
    assert_eq!(
        txn.verify_partition(pid(7, 1), &tp("out", 9)),
        Err(ErrorCode::InvalidTxnState)
    );
}

#[test]
fn a_wrong_producer_id_or_an_old_epoch_is_refused() {
    let mut txn = ongoing();
    let mut out = Vec::new();
    assert_eq!(
        txn.add_partitions(T0, pid(8, 1), &[tp("out", 5)], &mut out),
        Err(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        txn.add_partitions(T0, pid(7, 0), &[tp("out", 5)], &mut out),
        Err(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        txn.end(T0, pid(7, 0), true, None, &mut out),
        Err(ErrorCode::ProducerFenced)
    );
    assert!(out.is_empty());
}

#[test]
fn commit_bumps_the_epoch_writes_markers_with_it_and_completes_when_they_are_written() {
    let mut txn = ongoing();
    let mut out = Vec::new();
    let offsets = vec![offset(0, 41), offset(1, 17)];
    assert_eq!(
        txn.add_offset_commits(T0 + 30, pid(7, 1), "g", offsets.clone(), &mut out),
        Ok(())
    );
    // A later offset of the same partition replaces the earlier one.
    assert_eq!(
        txn.add_offset_commits(T0 + 31, pid(7, 1), "g", vec![offset(0, 42)], &mut out),
        Ok(())
    );
    out.clear();
    assert_eq!(
        txn.end(T0 + 40, pid(7, 1), true, None, &mut out),
        Ok(pid(7, 2))
    );
    assert_eq!(txn.state(), TxnState::PrepareCommit);
    assert_eq!(
        out.first(),
        Some(&TxnOutput::Persist),
        "persisted before markers"
    );
    let m = markers(&out);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].producer, pid(7, 2));
    assert!(m[0].commit);
    assert_eq!(
        m[0].partitions,
        BTreeSet::from([tp("out", 0), tp("out", 1)])
    );
    assert_eq!(
        m[0].offsets,
        vec![("g".to_string(), vec![offset(1, 17), offset(0, 42)])]
    );

    // While markers are written the producer waits; its retried EndTxn gets the answer.
    assert_eq!(
        txn.add_partitions(T0 + 50, pid(7, 2), &[tp("out", 0)], &mut out),
        Err(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(
        txn.end(T0 + 50, pid(7, 2), true, None, &mut out),
        Err(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(
        txn.end(T0 + 50, pid(7, 1), true, None, &mut out),
        Ok(pid(7, 2))
    );
    assert_eq!(
        txn.end(T0 + 50, pid(7, 1), false, None, &mut out),
        Err(ErrorCode::InvalidTxnState)
    );

    // Markers of another epoch complete nothing; the right ones do.
    out.clear();
    assert!(!txn.markers_written(T0 + 60, pid(7, 1), &mut out));
    assert!(txn.markers_written(T0 + 60, pid(7, 2), &mut out));
    assert_eq!(out, vec![TxnOutput::Persist]);
    assert_eq!(txn.state(), TxnState::CompleteCommit);
    assert!(txn.describe().partitions.is_empty() && txn.describe().offsets.is_empty());
    assert!(txn.pending_markers().is_none());

    // The next transaction runs at the new epoch; the old one is fenced.
    assert_eq!(
        txn.add_partitions(T0 + 70, pid(7, 1), &[tp("out", 0)], &mut out),
        Err(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        txn.add_partitions(T0 + 70, pid(7, 2), &[tp("out", 0)], &mut out),
        Ok(())
    );
    assert_eq!(txn.describe().started_ms, Some(T0 + 70));
}

#[test]
fn abort_writes_abort_markers_without_the_offsets() {
    let mut txn = ongoing();
    let mut out = Vec::new();
    assert_eq!(
        txn.add_offset_commits(T0 + 30, pid(7, 1), "g", vec![offset(0, 5)], &mut out),
        Ok(())
    );
    out.clear();
    assert_eq!(
        txn.end(T0 + 40, pid(7, 1), false, None, &mut out),
        Ok(pid(7, 2))
    );
    let m = markers(&out);
    assert_eq!(txn.state(), TxnState::PrepareAbort);
    assert!(!m[0].commit && m[0].offsets.is_empty());
    assert!(txn.markers_written(T0 + 50, pid(7, 2), &mut out));
    assert_eq!(txn.state(), TxnState::CompleteAbort);
}

#[test]
fn an_empty_transaction_can_be_aborted_but_not_committed() {
    let mut txn = initialised();
    let mut out = Vec::new();
    assert_eq!(
        txn.end(T0, pid(7, 1), true, None, &mut out),
        Err(ErrorCode::InvalidTxnState)
    );
    assert_eq!(txn.end(T0, pid(7, 1), false, None, &mut out), Ok(pid(7, 2)));
    assert_eq!(txn.state(), TxnState::CompleteAbort);
    assert!(markers(&out).is_empty(), "nothing to mark: {out:?}");
}

#[test]
fn an_offsets_only_transaction_commits_its_offsets() {
    let mut txn = initialised();
    let mut out = Vec::new();
    assert_eq!(
        txn.add_offset_commits(T0, pid(7, 1), "g", vec![offset(0, 3)], &mut out),
        Err(ErrorCode::InvalidTxnState),
        "offsets of a group not added"
    );
    assert_eq!(txn.add_offsets(T0, pid(7, 1), "g", &mut out), Ok(()));
    assert_eq!(
        txn.add_offset_commits(T0, pid(7, 1), "g", vec![offset(0, 3)], &mut out),
        Ok(())
    );
    out.clear();
    assert_eq!(txn.end(T0, pid(7, 1), true, None, &mut out), Ok(pid(7, 2)));
    let m = markers(&out);
    assert!(m[0].partitions.is_empty());
    assert_eq!(m[0].offsets, vec![("g".to_string(), vec![offset(0, 3)])]);
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_open_transaction() {
    let mut txn = ongoing();
    let mut out = Vec::new();
    let got = txn.init_producer_id(T0 + 50, &config(), TIMEOUT, None, None, &mut out);
    assert_eq!(got, Err(ErrorCode::ConcurrentTransactions));
    assert_eq!(txn.state(), TxnState::PrepareEpochFence);
    let m = markers(&out);
    assert_eq!((m[0].producer, m[0].commit), (pid(7, 2), false));
    // The zombie can do nothing more.
    assert_eq!(
        txn.add_partitions(T0 + 60, pid(7, 1), &[tp("out", 3)], &mut out),
        Err(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        txn.end(T0 + 60, pid(7, 1), true, None, &mut out),
        Err(ErrorCode::ProducerFenced)
    );
    let got = txn.init_producer_id(T0 + 60, &config(), TIMEOUT, None, None, &mut out);
    assert_eq!(
        got,
        Err(ErrorCode::ConcurrentTransactions),
        "still aborting"
    );
    assert!(txn.markers_written(T0 + 70, pid(7, 2), &mut out));
    assert_eq!(txn.state(), TxnState::CompleteAbort);
    let got = txn.init_producer_id(T0 + 80, &config(), TIMEOUT, None, None, &mut out);
    assert_eq!(got, Ok(pid(7, 3)));
    assert_eq!(txn.state(), TxnState::Empty);
}

#[test]
fn an_open_transaction_expires_after_its_timeout_even_without_data() {
    let mut txn = initialised();
    let mut out = Vec::new();
    assert_eq!(txn.add_offsets(T0, pid(7, 1), "g", &mut out), Ok(()));
    out.clear();
    txn.tick(T0 + 60_000, &mut out);
    assert!(out.is_empty(), "not yet expired");
    txn.tick(T0 + 60_001, &mut out);
    assert_eq!(txn.state(), TxnState::PrepareEpochFence);
    assert_eq!(markers(&out).len(), 1);
    assert_eq!(
        txn.end(T0 + 60_002, pid(7, 1), true, None, &mut out),
        Err(ErrorCode::ProducerFenced)
    );
}

#[test]
fn a_producer_retrying_init_with_its_known_epoch_is_accepted_and_a_stranger_fenced() {
    let mut txn = initialised();
    let mut out = Vec::new();
    let known = Some(pid(7, 1));
    let got = txn.init_producer_id(T0, &config(), TIMEOUT, known, None, &mut out);
    assert_eq!(got, Ok(pid(7, 2)));
    let got = txn.init_producer_id(T0, &config(), TIMEOUT, Some(pid(7, 1)), None, &mut out);
    assert_eq!(got, Ok(pid(7, 3)), "the previous epoch is still known");
    let got = txn.init_producer_id(T0, &config(), TIMEOUT, Some(pid(9, 0)), None, &mut out);
    assert_eq!(got, Err(ErrorCode::ProducerFenced));
}

#[test]
fn an_exhausted_epoch_moves_to_a_fresh_producer_id_and_the_markers_close_the_old_one() {
    let mut txn = ongoing();
    let mut d = txn.describe().clone();
    d.producer.epoch = LAST_EPOCH - 1;
    let mut txn2 = Transaction::restore(d);
    assert!(txn2.needs_fresh_producer_id());
    let mut out = Vec::new();
    let old = pid(7, LAST_EPOCH - 1);
    assert_eq!(
        txn2.end(T0, old, true, None, &mut out),
        Err(ErrorCode::ConcurrentTransactions),
        "no fresh id given: nothing changes"
    );
    assert_eq!(txn2.state(), TxnState::Ongoing);
    assert_eq!(txn2.end(T0, old, true, Some(12), &mut out), Ok(pid(12, 0)));
    let m = markers(&out);
    assert_eq!(m[0].producer, pid(7, LAST_EPOCH));
    assert_eq!(
        txn2.end(T0, old, true, None, &mut out),
        Ok(pid(12, 0)),
        "a retry"
    );
    assert!(txn2.markers_written(T0, pid(7, LAST_EPOCH), &mut out));
    assert_eq!(txn2.producer(), pid(12, 0));
    txn = txn2;
    assert_eq!(
        txn.add_partitions(T0, pid(12, 0), &[tp("out", 0)], &mut out),
        Ok(())
    );
}

#[test]
fn a_restored_preparing_transaction_writes_its_markers_again() {
    let mut txn = ongoing();
    let mut out = Vec::new();
    assert_eq!(txn.end(T0, pid(7, 1), true, None, &mut out), Ok(pid(7, 2)));
    let restored = Transaction::restore(txn.describe().clone());
    assert_eq!(restored.pending_markers(), markers(&out).first().cloned());
    assert!(initialised().pending_markers().is_none());
    // After a rotation the markers still close the old producer id.
    let mut d = ongoing().describe().clone();
    d.producer.epoch = LAST_EPOCH - 1;
    let mut rotating = Transaction::restore(d);
    let old = pid(7, LAST_EPOCH - 1);
    assert_eq!(
        rotating.end(T0, old, false, Some(12), &mut out),
        Ok(pid(12, 0))
    );
    let restored = Transaction::restore(rotating.describe().clone());
    let pending = restored.pending_markers().map(|m| m.producer);
    assert_eq!(pending, Some(pid(7, LAST_EPOCH)));
}

#[test]
fn an_operator_can_abort_only_an_open_transaction() {
    let mut txn = initialised();
    let mut out = Vec::new();
    assert_eq!(
        txn.abort_by_operator(T0, &mut out),
        Err(ErrorCode::InvalidTxnState)
    );
    let mut txn = ongoing();
    assert_eq!(txn.abort_by_operator(T0, &mut out), Ok(()));
    assert_eq!(txn.state(), TxnState::PrepareEpochFence);
}

#[test]
fn an_end_keeping_the_epoch_marks_with_it_and_the_next_transaction_keeps_it() {
    let mut txn = ongoing();
    let mut out = Vec::new();
    assert_eq!(
        txn.end_keeping_epoch(T0 + 40, pid(7, 1), false, &mut out),
        Ok(pid(7, 1))
    );
    assert_eq!(txn.state(), TxnState::PrepareAbort);
    let m = markers(&out);
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].producer, m[0].commit), (pid(7, 1), false));
    assert_eq!(
        txn.end_keeping_epoch(T0 + 41, pid(7, 1), false, &mut out),
        Err(ErrorCode::ConcurrentTransactions),
        "a retry while markers are written waits"
    );
    assert!(txn.markers_written(T0 + 50, pid(7, 1), &mut out));
    assert_eq!(txn.state(), TxnState::CompleteAbort);
    assert_eq!(
        txn.end_keeping_epoch(T0 + 51, pid(7, 1), false, &mut out),
        Ok(pid(7, 1)),
        "a retry after completion gets the same answer"
    );
    assert_eq!(
        txn.end_keeping_epoch(T0 + 51, pid(7, 1), true, &mut out),
        Err(ErrorCode::InvalidTxnState)
    );
    out.clear();
    assert_eq!(
        txn.add_partitions(T0 + 60, pid(7, 1), &[tp("out", 0)], &mut out),
        Ok(())
    );
    assert_eq!(txn.state(), TxnState::Ongoing);
    assert_eq!(
        txn.end_keeping_epoch(T0 + 70, pid(7, 0), true, &mut out),
        Err(ErrorCode::ProducerFenced)
    );
}
