//! One conformance suite for every [`LogStorage`]: each check runs against the in-memory
//! and the sled storage.

use std::ops::ControlFlow;

use bytes::Bytes;
use rill_common::record::{self, BatchHeader, RecordBatchBuilder};

use super::*;

fn batch(values: &[&str]) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new();
    for v in values {
        b.push(None, Some(v.as_bytes()), 1_000);
    }
    b.build()
}

fn values(batches: &[Bytes]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let h = BatchHeader::validate(b).unwrap_or_else(|e| panic!("served a bad batch: {e}"));
            h.records(b).unwrap_or_default()
        })
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

fn key(n: u32) -> PartitionKey {
    PartitionKey {
        topic_id: "topic-id".into(),
        partition: n,
    }
}

fn open(storage: &dyn LogStorage, n: u32) -> PartitionLog {
    storage
        .open(&key(n))
        .unwrap_or_else(|e| panic!("open: {e}"))
        .0
}

fn append(log: &PartitionLog, values: &[&str], epoch: i32) -> BatchHeader {
    log.append_as_leader(&mut batch(values), epoch)
        .unwrap_or_else(|e| panic!("append: {e}"))
}

fn appends_assign_dense_offsets_and_stamp_the_epoch(storage: &dyn LogStorage) {
    let log = open(storage, 0);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let a = append(&log, &["a", "b", "c"], 1);
    let b = append(&log, &["d"], 1);
    assert_eq!((a.base_offset, a.last_offset(), b.base_offset), (0, 2, 3));
    assert_eq!(log.log_end_offset(), 4);
    let read = log.read(0, u64::MAX, 1 << 20).unwrap_or_default();
    assert_eq!(values(&read), ["a", "b", "c", "d"]);
    for batch in &read {
        assert_eq!(
            BatchHeader::parse(batch)
                .map(|h| h.partition_leader_epoch)
                .ok(),
            Some(1)
        );
    }
}

fn reads_start_at_the_batch_holding_the_offset_and_respect_limits(storage: &dyn LogStorage) {
    let log = open(storage, 1);
    append(&log, &["a", "b"], 0);
    append(&log, &["c", "d"], 0);
    append(&log, &["e"], 0);
    assert_eq!(
        values(&log.read(3, u64::MAX, 1 << 20).unwrap_or_default()),
        ["c", "d", "e"]
    );
    // `below` stops at a batch boundary (the high watermark).
    assert_eq!(
        values(&log.read(0, 4, 1 << 20).unwrap_or_default()),
        ["a", "b", "c", "d"]
    );
    // A tiny byte limit still returns one whole batch.
    assert_eq!(
        values(&log.read(0, u64::MAX, 1).unwrap_or_default()),
        ["a", "b"]
    );
    assert!(log.read(5, u64::MAX, 100).unwrap_or_default().is_empty());
    let err = log.read(6, u64::MAX, 100).err().map(|e| e.code());
    assert_eq!(err, Some(rill_common::ErrorCode::OffsetOutOfRange));
}

fn truncation_removes_a_suffix_at_batch_boundaries(storage: &dyn LogStorage) {
    let log = open(storage, 2);
    append(&log, &["a", "b"], 1);
    append(&log, &["c", "d"], 2);
    append(&log, &["e"], 3);
    assert!(log.truncate_to(3).is_ok());
    assert_eq!(log.log_end_offset(), 2, "the batch holding offset 3 goes");
    assert_eq!(log.epoch_entries(), vec![(1, 0)]);
    assert_eq!(
        values(&log.read(0, u64::MAX, 1 << 20).unwrap_or_default()),
        ["a", "b"]
    );
    let h = append(&log, &["x"], 4);
    assert_eq!(h.base_offset, 2);
}

/// More batches than one removal applies at once (the sled backend removes in parts):
/// truncation and prefix deletion still leave exactly the rest, and other partitions'
/// batches are untouched.
fn removals_larger_than_one_part_leave_exactly_the_rest(storage: &dyn LogStorage) {
    let log = open(storage, 12);
    let neighbour = open(storage, 13);
    append(&neighbour, &["n"], 1);
    for _ in 0..10_000 {
        append(&log, &["v"], 1);
    }
    assert!(log.truncate_to(9_000).is_ok());
    assert!(log.delete_before(4_500).is_ok());
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (4_500, 9_000)
    );
    let reopened = open(storage, 12);
    assert_eq!(
        (reopened.log_start_offset(), reopened.log_end_offset()),
        (4_500, 9_000)
    );
    assert_eq!(
        reopened
            .read(4_500, u64::MAX, 1 << 20)
            .map(|b| b.len())
            .ok(),
        Some(4_500)
    );
    assert_eq!(
        values(
            &open(storage, 13)
                .read(0, u64::MAX, 1 << 20)
                .unwrap_or_default()
        ),
        ["n"]
    );
}

/// Batches larger than a stored part (the sled backend splits them) read back whole,
/// from any offset, after truncation, prefix deletion, reopening and replacement.
fn large_batches_read_back_whole(storage: &dyn LogStorage) {
    let big: Vec<String> = (0..5).map(|i| i.to_string().repeat(9_000)).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    let log = open(storage, 14);
    append(&log, &big[..3], 1);
    append(&log, &["small"], 1);
    append(&log, &big[3..], 2);
    let all: Vec<&str> = big[..3]
        .iter()
        .copied()
        .chain(["small"])
        .chain(big[3..].iter().copied())
        .collect();
    assert_eq!(
        values(&log.read(1, u64::MAX, 1 << 20).unwrap_or_default()),
        all
    );
    assert_eq!(
        values(&log.read(5, u64::MAX, 1 << 20).unwrap_or_default()),
        big[3..]
    );
    let log = open(storage, 14);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(
        values(&log.read(0, u64::MAX, 1 << 20).unwrap_or_default()),
        all
    );
    assert!(log.truncate_to(5).is_ok());
    assert!(log.delete_before(3).is_ok());
    let log = open(storage, 14);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 4));
    assert_eq!(
        values(&log.read(3, u64::MAX, 1 << 20).unwrap_or_default()),
        ["small"]
    );

    let backend = storage
        .open_backend(&key(14))
        .unwrap_or_else(|e| panic!("{e}"));
    let large = vec![7u8; 20_000];
    assert!(backend.insert(9, large.clone()).is_ok());
    assert_eq!(backend.floor(10).ok().flatten(), Some((9, large)));
    assert!(backend.insert(9, vec![1, 2, 3]).is_ok());
    assert_eq!(backend.floor(10).ok().flatten(), Some((9, vec![1, 2, 3])));
    let mut seen = Vec::new();
    let scanned = backend.scan(0, &mut |at, stored| {
        seen.push((at, stored.len()));
        ControlFlow::Continue(())
    });
    assert!(scanned.is_ok());
    assert_eq!(
        seen.last(),
        Some(&(9, 3)),
        "no part of the larger batch is left"
    );
}

fn deleting_a_prefix_moves_the_log_start(storage: &dyn LogStorage) {
    let log = open(storage, 3);
    append(&log, &["a", "b"], 1);
    append(&log, &["c"], 2);
    append(&log, &["d"], 2);
    let size = log.size_bytes();
    assert!(log.delete_before(3).is_ok());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 4));
    assert!(log.size_bytes() < size);
    assert_eq!(
        values(&log.read(3, u64::MAX, 1 << 20).unwrap_or_default()),
        ["d"]
    );
    assert!(log.read(0, u64::MAX, 1 << 20).is_err());
    assert_eq!(log.epoch_entries(), vec![(2, 3)]);
}

fn the_epoch_cache_answers_end_offsets(storage: &dyn LogStorage) {
    let log = open(storage, 4);
    append(&log, &["a", "b"], 1);
    append(&log, &["c"], 1);
    append(&log, &["d"], 3);
    assert_eq!(log.epoch_entries(), vec![(1, 0), (3, 3)]);
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 3)));
    assert_eq!(
        log.end_offset_for_epoch(2),
        Some((1, 3)),
        "epoch 2 never wrote: epoch 1's end"
    );
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 4)));
    assert_eq!(log.end_offset_for_epoch(9), Some((3, 4)));
    assert_eq!(log.end_offset_for_epoch(0), None);
    assert_eq!(log.latest_epoch(), Some(3));
}

fn state_survives_reopening(storage: &dyn LogStorage) {
    {
        let log = open(storage, 5);
        append(&log, &["a"], 1);
        append(&log, &["b", "c"], 2);
        assert!(log.delete_before(1).is_ok());
        assert!(log.checkpoint_high_watermark(3).is_ok());
    }
    let log = open(storage, 5);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1, 3));
    assert_eq!(log.epoch_entries(), vec![(2, 1)]);
    assert_eq!(log.high_watermark_checkpoint().ok(), Some(3));
    assert_eq!(
        values(&log.read(1, u64::MAX, 1 << 20).unwrap_or_default()),
        ["b", "c"]
    );
}

fn recovery_cuts_a_corrupt_or_torn_tail(storage: &dyn LogStorage) {
    {
        let log = open(storage, 6);
        append(&log, &["a"], 1);
        append(&log, &["b"], 1);
        append(&log, &["c"], 2);
    }
    // Corrupt the middle of the second batch and add a batch after a gap.
    let backend = storage
        .open_backend(&key(6))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stored = backend
        .floor(1)
        .ok()
        .flatten()
        .map(|(_, v)| v)
        .unwrap_or_default();
    let mid = stored.len() / 2;
    stored[mid] ^= 0xff;
    assert!(backend.insert(1, stored).is_ok());
    let (log, recovery) = storage.open(&key(6)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recovery.truncated_at, Some(1));
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(
        log.epoch_entries(),
        vec![(1, 0)],
        "epoch 2 started past the new end"
    );
    assert_eq!(
        values(&log.read(0, u64::MAX, 1 << 20).unwrap_or_default()),
        ["a"]
    );

    // A torn tail: a batch stored at a key that leaves a gap.
    let mut gap = batch(&["z"]);
    record::set_base_offset(&mut gap, 5);
    assert!(backend.insert(5, record::encode_stored(&gap)).is_ok());
    let (log, recovery) = storage.open(&key(6)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recovery.truncated_at, Some(5));
    assert_eq!(log.log_end_offset(), 1);
}

fn replicated_appends_keep_offsets_and_must_be_contiguous(storage: &dyn LogStorage) {
    let leader = open(storage, 7);
    append(&leader, &["a", "b"], 4);
    append(&leader, &["c"], 5);
    let follower = open(storage, 8);
    for b in leader.read(0, u64::MAX, 1 << 20).unwrap_or_default() {
        assert!(follower.append_replicated(&b).is_ok());
    }
    assert_eq!(follower.log_end_offset(), 3);
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    let again = leader.read(0, u64::MAX, 1).unwrap_or_default();
    assert!(
        follower.append_replicated(&again[0]).is_err(),
        "offset 0 is not the log end"
    );
}

fn deleting_a_partition_forgets_it(storage: &dyn LogStorage) {
    let log = open(storage, 9);
    append(&log, &["a"], 1);
    drop(log);
    assert!(storage.list().unwrap_or_default().contains(&key(9)));
    assert!(storage.delete(&key(9)).is_ok());
    assert!(!storage.list().unwrap_or_default().contains(&key(9)));
    let log = open(storage, 9);
    assert_eq!(log.log_end_offset(), 0);
}

fn a_producer_snapshot_survives_reopening_and_goes_when_it_no_longer_fits(
    storage: &dyn LogStorage,
) {
    {
        let log = open(storage, 10);
        append(&log, &["a", "b"], 1);
        append(&log, &["c"], 1);
        assert!(log.put_producer_snapshot(3, b"table at 3").is_ok());
    }
    let log = open(storage, 10);
    assert_eq!(
        log.producer_snapshot().ok().flatten(),
        Some((3, b"table at 3".to_vec()))
    );
    assert!(log.truncate_to(5).is_ok());
    assert!(
        log.producer_snapshot().is_ok_and(|s| s.is_some()),
        "nothing cut"
    );
    assert!(log.truncate_to(2).is_ok());
    assert!(
        log.producer_snapshot().is_ok_and(|s| s.is_none()),
        "a snapshot past the cut goes"
    );
    append(&log, &["x", "y"], 2);
    assert!(
        log.producer_snapshot().is_ok_and(|s| s.is_none()),
        "and does not come back when the log grows past it again"
    );
    assert!(log.put_producer_snapshot(1, b"old").is_ok());
    assert!(log.delete_before(2).is_ok());
    assert!(
        log.producer_snapshot().is_ok_and(|s| s.is_none()),
        "retention deleted batches the snapshot has not seen"
    );
}

fn run_suite(storage: &dyn LogStorage) {
    appends_assign_dense_offsets_and_stamp_the_epoch(storage);
    reads_start_at_the_batch_holding_the_offset_and_respect_limits(storage);
    truncation_removes_a_suffix_at_batch_boundaries(storage);
    removals_larger_than_one_part_leave_exactly_the_rest(storage);
    large_batches_read_back_whole(storage);
    deleting_a_prefix_moves_the_log_start(storage);
    the_epoch_cache_answers_end_offsets(storage);
    state_survives_reopening(storage);
    recovery_cuts_a_corrupt_or_torn_tail(storage);
    replicated_appends_keep_offsets_and_must_be_contiguous(storage);
    deleting_a_partition_forgets_it(storage);
    a_producer_snapshot_survives_reopening_and_goes_when_it_no_longer_fits(storage);
}

#[test]
fn memory_storage_conforms() {
    run_suite(&MemoryStorage::default());
}

#[test]
fn sled_storage_conforms() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let storage = SledStorage::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    run_suite(&storage);
}

#[test]
fn sled_storage_survives_closing_and_reopening_the_db() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let storage = SledStorage::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let log = open(&storage, 0);
        append(&log, &["a", "b"], 3);
        let rt = tokio::runtime::Builder::new_current_thread().build();
        if let (Ok(rt), Some(flusher)) = (rt, storage.flusher()) {
            assert!(rt.block_on(flusher.flush()).is_ok());
        }
    }
    let storage = reopen(dir.path());
    let log = open(&storage, 0);
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.epoch_entries(), vec![(3, 0)]);
}

/// Opens the sled store at `path`, waiting for a dropped handle's background thread to
/// release the Db's lock (sled releases it asynchronously).
fn reopen(path: &std::path::Path) -> SledStorage {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledStorage::open(path) {
            Ok(storage) => return storage,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_sled_store_keeps_its_id_and_reports_how_it_was_closed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = {
        let storage = reopen(dir.path());
        storage.identity()
    };
    assert!(first.clean_shutdown, "a new store lost nothing");
    // Dropped without the marker: an unclean shutdown.
    let storage = reopen(dir.path());
    assert_eq!(storage.identity().store_id, first.store_id);
    assert!(!storage.identity().clean_shutdown);
    assert!(storage.mark_clean_shutdown().is_ok());
    drop(storage);
    let storage = reopen(dir.path());
    assert_eq!(storage.identity().store_id, first.store_id);
    assert!(storage.identity().clean_shutdown);
    drop(storage);
    // The marker is taken by the open that reported it.
    let storage = reopen(dir.path());
    assert!(!storage.identity().clean_shutdown);
    drop(storage);
    // A wiped directory is a new store.
    std::fs::remove_dir_all(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let storage = reopen(dir.path());
    assert_ne!(storage.identity().store_id, first.store_id);
}

#[test]
fn a_store_of_the_old_layout_is_moved_into_the_shared_trees() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Write two partitions in the shared layout, then rewrite the Db as the old layout
    // had it: one `log/<name>` and one `meta/<name>` tree per partition, keys unprefixed.
    {
        let storage = SledStorage::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        for n in [0, 1] {
            let log = open(&storage, n);
            append(&log, &["a", "b"], 3);
            append(&log, &[if n == 0 { "c" } else { "d" }], 4);
        }
        for n in [0, 1] {
            let name = key(n).storage_name();
            let prefix = storage
                .prefix(&name, false)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no prefix"));
            for (old, shared) in [
                (OLD_LOG_PREFIX, &storage.log),
                (OLD_META_PREFIX, &storage.meta),
            ] {
                let tree = storage
                    .db
                    .open_tree(format!("{old}{name}"))
                    .unwrap_or_else(|e| panic!("{e}"));
                for item in shared.scan_prefix(prefix) {
                    let (k, v) = item.unwrap_or_else(|e| panic!("{e}"));
                    assert!(tree.insert(&k[8..], v).is_ok());
                }
                assert!(backend::remove_keys(shared, shared.scan_prefix(prefix)).is_ok());
            }
            assert!(storage.directory.remove(&name).is_ok());
        }
        assert!(storage.db.flush().is_ok());
        assert!(storage.list().unwrap_or_default().is_empty());
    }
    let storage = reopen(dir.path());
    let mut listed = storage.list().unwrap_or_default();
    listed.sort();
    assert_eq!(listed, vec![key(0), key(1)]);
    for (n, last) in [(0, "c"), (1, "d")] {
        let log = open(&storage, n);
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.epoch_entries(), vec![(3, 0), (4, 2)]);
        assert_eq!(
            values(&log.read(0, u64::MAX, 1 << 20).unwrap_or_default()),
            ["a", "b", last]
        );
    }
    let old_trees = storage
        .db
        .tree_names()
        .iter()
        .filter(|n| {
            n.starts_with(OLD_LOG_PREFIX.as_bytes()) || n.starts_with(OLD_META_PREFIX.as_bytes())
        })
        .count();
    assert_eq!(old_trees, 0, "the old trees are dropped");
}

#[test]
fn a_thousand_partitions_cost_a_small_data_directory() {
    fn size(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => size(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let storage = SledStorage::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        for n in 0..1000 {
            let log = open(&storage, n);
            append(&log, &["a"], 1);
        }
        assert!(storage.db.flush().is_ok());
    }
    // With a tree pair per partition this was 72 MiB (and 1.2 GiB at 4,000).
    let bytes = size(dir.path());
    assert!(bytes < 16 << 20, "{bytes} bytes for 1,000 partitions");
}
