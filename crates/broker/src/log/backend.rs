//! Where a partition's batches and state live: an ordered map from base offset to the
//! stored batch, and a small map of partition state. Two implementations: sled (key
//! ranges of two trees all partitions of the node's partitions Db share) and memory.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::BrokerError;

/// A key and value of partition state.
pub type MetaEntry = (Vec<u8>, Vec<u8>);

/// The storage primitives a partition log needs. All keys are big-endian so the order
/// of the byte strings is the numeric order.
pub trait LogBackend: Send + Sync {
    /// Visits stored batches with base offset >= `from`, in order, until `visit` breaks.
    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<(), BrokerError>;
    /// The stored batch with the largest base offset <= `offset`.
    fn floor(&self, offset: u64) -> Result<Option<(u64, Vec<u8>)>, BrokerError>;
    fn insert(&self, base_offset: u64, stored: Vec<u8>) -> Result<(), BrokerError>;
    /// Removes every batch with base offset >= `from`.
    fn remove_from(&self, from: u64) -> Result<(), BrokerError>;
    /// Removes every batch with base offset < `before`.
    fn remove_before(&self, before: u64) -> Result<(), BrokerError>;
    fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BrokerError>;
    fn meta_put(&self, key: &[u8], value: &[u8]) -> Result<(), BrokerError>;
    fn meta_remove(&self, key: &[u8]) -> Result<(), BrokerError>;
    /// Every `(key, value)` of partition state whose key starts with `prefix`.
    fn meta_scan(&self, prefix: &[u8]) -> Result<Vec<MetaEntry>, BrokerError>;
}

/// A partition in a sled Db. Every partition of a node shares two trees, `log` (batches)
/// and `meta` (state); a partition's keys start with its 8-byte store id, so its entries
/// are one contiguous range of each tree. (A tree per partition made sled rewrite its
/// list of trees, which grows with every partition, at each new tree: the data directory
/// grew with the square of the partition count.)
pub struct SledBackend {
    pub(crate) log: sled::Tree,
    pub(crate) meta: sled::Tree,
    /// The partition's store id, big-endian: the prefix of all its keys.
    pub(crate) prefix: [u8; 8],
}

/// The most bytes of a batch one sled value holds; a larger batch is stored in parts.
/// sled 0.34's page cache is 256 LRU shards that each count their pages' accesses in
/// blocks of 64 and never evict a shard's last page, and a leaf holds up to 17 entries:
/// with whole batches (tens of KiB each) as values, a node kept most of what it wrote
/// in memory (live heap 176 MiB of sled leaves after 250 MB written, whatever
/// `log.cache.capacity.bytes` said; RSS settled at 226-231 MiB). In 16 KiB parts a leaf
/// is at most 272 KiB and the same run peaks at 145 MiB and settles at 131 (4 KiB parts:
/// the same memory, and `bench storage` 34k records/s against 38k; whole batches 70k).
const PART_BYTES: usize = 16384;

/// The key of the batch at `offset` of the partition with `prefix` (its first part).
fn log_key(prefix: &[u8; 8], offset: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(prefix);
    key[8..].copy_from_slice(&offset.to_be_bytes());
    key
}

/// The key of part `part` (1 or more) of the batch at `offset`: it sorts after the
/// batch's first part and before the next batch.
fn part_key(prefix: &[u8; 8], offset: u64, part: u16) -> [u8; 18] {
    let mut key = [0u8; 18];
    key[..16].copy_from_slice(&log_key(prefix, offset));
    key[16..].copy_from_slice(&part.to_be_bytes());
    key
}

fn offset_of(k: &[u8]) -> Result<u64, BrokerError> {
    let bytes: [u8; 8] = k
        .get(8..16)
        .and_then(|o| o.try_into().ok())
        .ok_or_else(|| BrokerError::Storage(format!("log key of {} bytes", k.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Whether a log key is a batch's first part (the later parts have a part number).
fn is_first_part(k: &[u8]) -> bool {
    k.len() == 16
}

impl SledBackend {
    /// The keys of this partition's batches from `from` on.
    fn batches_from(&self, from: u64) -> sled::Iter {
        self.log.range(
            log_key(&self.prefix, from).to_vec()
                ..=part_key(&self.prefix, u64::MAX, u16::MAX).to_vec(),
        )
    }

    /// The parts of the batch at `offset`: its first part and the keys after it.
    fn parts_of(&self, offset: u64) -> sled::Iter {
        self.log.range(
            log_key(&self.prefix, offset).to_vec()
                ..=part_key(&self.prefix, offset, u16::MAX).to_vec(),
        )
    }

    fn meta_key(&self, k: &[u8]) -> Vec<u8> {
        [&self.prefix[..], k].concat()
    }
}

/// Joins the parts `parts` yields (in key order) into the batches they store, visiting
/// each until `visit` breaks. A part without its first part is a torn write: it is
/// visited as an empty batch, which recovery cuts off like any unreadable batch.
fn visit_batches(
    parts: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
) -> Result<(), BrokerError> {
    let mut parts = parts.peekable();
    while let Some(item) = parts.next() {
        let (k, first) = item?;
        let offset = offset_of(&k)?;
        if !is_first_part(&k) {
            if visit(offset, &[]).is_break() {
                break;
            }
            continue;
        }
        let mut rest = Vec::new();
        while let Some(Ok((next, _))) = parts.peek() {
            if is_first_part(next) || offset_of(next)? != offset {
                break;
            }
            if let Some(item) = parts.next() {
                rest.push(item?.1);
            }
        }
        let flow = if rest.is_empty() {
            visit(offset, &first)
        } else {
            let mut whole = first.to_vec();
            for part in rest {
                whole.extend_from_slice(&part);
            }
            visit(offset, &whole)
        };
        if flow.is_break() {
            break;
        }
    }
    Ok(())
}

impl LogBackend for SledBackend {
    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<(), BrokerError> {
        visit_batches(self.batches_from(from), visit)
    }

    fn floor(&self, offset: u64) -> Result<Option<(u64, Vec<u8>)>, BrokerError> {
        let range =
            log_key(&self.prefix, 0).to_vec()..=part_key(&self.prefix, offset, u16::MAX).to_vec();
        let Some(item) = self.log.range(range).next_back() else {
            return Ok(None);
        };
        let base = offset_of(&item?.0)?;
        let mut found = None;
        visit_batches(self.parts_of(base), &mut |at, stored| {
            found = Some((at, stored.to_vec()));
            ControlFlow::Break(())
        })?;
        Ok(found)
    }

    /// Writes the batch's parts in one atomic sled batch, replacing any batch stored at
    /// `base_offset`.
    fn insert(&self, base_offset: u64, stored: Vec<u8>) -> Result<(), BrokerError> {
        if stored.len() <= PART_BYTES {
            // The common case of a small batch: one value, no stale parts to look for
            // unless a larger batch was stored here before.
            let stale = self
                .log
                .range(
                    part_key(&self.prefix, base_offset, 1)
                        ..=part_key(&self.prefix, base_offset, u16::MAX),
                )
                .next()
                .is_some();
            if !stale {
                self.log
                    .insert(log_key(&self.prefix, base_offset), stored)?;
                return Ok(());
            }
        }
        let mut batch = sled::Batch::default();
        for item in self.parts_of(base_offset) {
            batch.remove(item?.0);
        }
        for (n, part) in stored.chunks(PART_BYTES).enumerate() {
            match n {
                0 => batch.insert(&log_key(&self.prefix, base_offset)[..], part),
                n => {
                    let n = u16::try_from(n).map_err(|_| {
                        BrokerError::Storage(format!("a batch of {} bytes", stored.len()))
                    })?;
                    batch.insert(&part_key(&self.prefix, base_offset, n)[..], part)
                }
            }
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }

    /// Highest offsets first: a removal cut short by a crash (it is applied in parts,
    /// each of whole batches) leaves the log a prefix of itself, never a log with a hole.
    fn remove_from(&self, from: u64) -> Result<(), BrokerError> {
        remove_batches(&self.log, self.batches_from(from).rev())
    }

    /// Lowest offsets first, so a removal cut short leaves a suffix of the log.
    fn remove_before(&self, before: u64) -> Result<(), BrokerError> {
        let range = log_key(&self.prefix, 0)..log_key(&self.prefix, before);
        remove_batches(&self.log, self.log.range(range))
    }

    fn meta_get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, BrokerError> {
        Ok(self.meta.get(self.meta_key(k))?.map(|v| v.to_vec()))
    }

    fn meta_put(&self, k: &[u8], value: &[u8]) -> Result<(), BrokerError> {
        self.meta.insert(self.meta_key(k), value)?;
        Ok(())
    }

    fn meta_remove(&self, k: &[u8]) -> Result<(), BrokerError> {
        self.meta.remove(self.meta_key(k))?;
        Ok(())
    }

    fn meta_scan(&self, prefix: &[u8]) -> Result<Vec<MetaEntry>, BrokerError> {
        self.meta
            .scan_prefix(self.meta_key(prefix))
            .map(|item| {
                item.map(|(k, v)| (k[self.prefix.len()..].to_vec(), v.to_vec()))
                    .map_err(BrokerError::from)
            })
            .collect()
    }
}

/// The most keys one sled batch of a removal holds.
const REMOVE_BATCH: usize = 4096;

/// Removes the keys `range` yields, in batches of at most `REMOVE_BATCH` keys (a
/// partition's whole log can be a range).
pub(crate) fn remove_keys(
    tree: &sled::Tree,
    range: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
) -> Result<(), BrokerError> {
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in range {
        batch.remove(item?.0);
        in_batch += 1;
        if in_batch == REMOVE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// [`remove_keys`] for log keys: a sled batch ends only between two stored batches, so
/// a removal cut short never leaves part of one.
fn remove_batches(
    tree: &sled::Tree,
    range: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
) -> Result<(), BrokerError> {
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let mut last_offset = None;
    for item in range {
        let key = item?.0;
        let offset = offset_of(&key)?;
        if in_batch >= REMOVE_BATCH && last_offset != Some(offset) {
            tree.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
        batch.remove(key);
        in_batch += 1;
        last_offset = Some(offset);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// A partition in memory; shared through `Arc` so it survives a "reopen" in tests.
#[derive(Default)]
pub struct MemoryBackend {
    log: Mutex<BTreeMap<u64, Vec<u8>>>,
    meta: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogBackend for Arc<MemoryBackend> {
    fn scan(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<(), BrokerError> {
        // Copy the keys first so `visit` may take as long as it likes without the lock.
        let keys: Vec<u64> = lock(&self.log).range(from..).map(|(k, _)| *k).collect();
        for k in keys {
            let Some(v) = lock(&self.log).get(&k).cloned() else {
                continue;
            };
            if visit(k, &v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn floor(&self, offset: u64) -> Result<Option<(u64, Vec<u8>)>, BrokerError> {
        Ok(lock(&self.log)
            .range(..=offset)
            .next_back()
            .map(|(k, v)| (*k, v.clone())))
    }

    fn insert(&self, base_offset: u64, stored: Vec<u8>) -> Result<(), BrokerError> {
        lock(&self.log).insert(base_offset, stored);
        Ok(())
    }

    fn remove_from(&self, from: u64) -> Result<(), BrokerError> {
        lock(&self.log).split_off(&from);
        Ok(())
    }

    fn remove_before(&self, before: u64) -> Result<(), BrokerError> {
        let mut log = lock(&self.log);
        let rest = log.split_off(&before);
        *log = rest;
        Ok(())
    }

    fn meta_get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, BrokerError> {
        Ok(lock(&self.meta).get(k).cloned())
    }

    fn meta_put(&self, k: &[u8], value: &[u8]) -> Result<(), BrokerError> {
        lock(&self.meta).insert(k.to_vec(), value.to_vec());
        Ok(())
    }

    fn meta_remove(&self, k: &[u8]) -> Result<(), BrokerError> {
        lock(&self.meta).remove(k);
        Ok(())
    }

    fn meta_scan(&self, prefix: &[u8]) -> Result<Vec<MetaEntry>, BrokerError> {
        Ok(lock(&self.meta)
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
