//! Partition logs: [`PartitionLog`] holds the rules, [`LogBackend`] the bytes, and a
//! [`LogStorage`] opens and deletes the logs of one node (sled Db or memory).

mod aborted;
mod backend;
#[cfg(test)]
mod conformance;
mod partition_log;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use backend::{LogBackend, MemoryBackend, SledBackend};
pub use partition_log::{PartitionLog, Recovery};
use rill_metadata::store::Flusher;

use crate::BrokerError;

/// Identifies a partition's storage. The topic id (not the name) keys it, so a topic
/// deleted and created again under the same name starts from an empty log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic_id: String,
    pub partition: u32,
}

impl PartitionKey {
    fn storage_name(&self) -> String {
        format!("{}/{}", self.topic_id, self.partition)
    }

    fn parse(name: &str) -> Option<Self> {
        let (topic_id, partition) = name.rsplit_once('/')?;
        Some(Self {
            topic_id: topic_id.to_string(),
            partition: partition.parse().ok()?,
        })
    }
}

/// Who a node's partition store is (KIP-858's directory id) and how it was last closed
/// (KIP-966's unclean-shutdown detection); the broker registers with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdentity {
    /// Created with the store and kept for its life: a new or emptied store has a new id.
    pub store_id: String,
    /// The store was closed cleanly (`mark_clean_shutdown`) before this open, or is new.
    pub clean_shutdown: bool,
}

/// Opens, lists and deletes a node's partition logs.
pub trait LogStorage: Send + Sync {
    /// The store's identity as of this open.
    fn identity(&self) -> StoreIdentity;
    /// Records a clean shutdown: call last, after the final flush; the next open reports
    /// it (and clears it, so a crash after that open is not mistaken for one).
    fn mark_clean_shutdown(&self) -> Result<(), BrokerError>;
    fn open_backend(&self, key: &PartitionKey) -> Result<Box<dyn LogBackend>, BrokerError>;
    fn delete(&self, key: &PartitionKey) -> Result<(), BrokerError>;
    fn list(&self) -> Result<Vec<PartitionKey>, BrokerError>;
    /// The group-commit flusher, if writes need an fsync to be durable.
    fn flusher(&self) -> Option<Flusher>;

    fn open(&self, key: &PartitionKey) -> Result<(PartitionLog, Recovery), BrokerError> {
        PartitionLog::open(self.open_backend(key)?)
    }
}

/// The trees of a partitions Db: every partition's batches, every partition's state, and
/// the directory (storage name -> the partition's 8-byte store id, the prefix of its keys).
const LOG_TREE: &str = "log";
const META_TREE: &str = "meta";
const DIRECTORY_TREE: &str = "partitions";
/// Before the shared trees, each partition had a tree pair `log/<name>`, `meta/<name>`.
const OLD_LOG_PREFIX: &str = "log/";
const OLD_META_PREFIX: &str = "meta/";
/// Keys of the Db's default tree.
const STORE_ID: &[u8] = b"store_id";
const CLEAN_SHUTDOWN: &[u8] = b"clean_shutdown";

/// All partitions of a node in one sled Db: two shared trees keyed by partition, one
/// flusher.
pub struct SledStorage {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    directory: sled::Tree,
    flusher: Flusher,
    identity: StoreIdentity,
}

/// The partition store's page cache unless `log.cache.capacity.bytes` says otherwise
/// (sled's own default, 1 GiB, let a node's memory grow with the data it wrote).
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 64 << 20;

impl SledStorage {
    /// [`SledStorage::open_with_cache`] with the default page cache.
    pub fn open(path: &Path) -> Result<Self, BrokerError> {
        Self::open_with_cache(path, DEFAULT_CACHE_CAPACITY_BYTES)
    }

    /// Opens (or creates, with a new store id) the store, and takes its clean-shutdown
    /// marker: it is gone from disk before this returns. A store of the old layout (a
    /// tree pair per partition) is moved into the shared trees first.
    pub fn open_with_cache(path: &Path, cache_capacity_bytes: u64) -> Result<Self, BrokerError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .open()?;
        let (store_id, created) = match db.get(STORE_ID)? {
            Some(id) => (String::from_utf8_lossy(&id).into_owned(), false),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                db.insert(STORE_ID, id.as_bytes())?;
                (id, true)
            }
        };
        // A new store lost nothing: it counts as cleanly closed.
        let clean_shutdown = db.remove(CLEAN_SHUTDOWN)?.is_some() || created;
        let storage = Self {
            log: db.open_tree(LOG_TREE)?,
            meta: db.open_tree(META_TREE)?,
            directory: db.open_tree(DIRECTORY_TREE)?,
            flusher: Flusher::new(db.clone()),
            identity: StoreIdentity {
                store_id,
                clean_shutdown,
            },
            db,
        };
        storage.move_old_layout()?;
        storage.db.flush()?;
        Ok(storage)
    }

    /// The store id of the partition named `name`, made if `create` and it has none.
    fn prefix(&self, name: &str, create: bool) -> Result<Option<[u8; 8]>, BrokerError> {
        if let Some(id) = self.directory.get(name)? {
            let id: [u8; 8] = id.as_ref().try_into().map_err(|_| {
                BrokerError::Storage(format!(
                    "partition {name} has a store id of {} bytes",
                    id.len()
                ))
            })?;
            return Ok(Some(id));
        }
        if !create {
            return Ok(None);
        }
        let id = self.db.generate_id()?.to_be_bytes();
        // Two opens of one new partition at once: the first to write wins.
        match self
            .directory
            .compare_and_swap(name, None::<&[u8]>, Some(&id[..]))?
        {
            Ok(()) => Ok(Some(id)),
            Err(_) => self.prefix(name, false),
        }
    }

    /// Moves every partition of the old layout (`log/<name>`, `meta/<name>` trees) into
    /// the shared trees, then drops its trees. Copies are idempotent: a move cut short by
    /// a crash is done again from the start at the next open.
    fn move_old_layout(&self) -> Result<(), BrokerError> {
        let old: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter_map(|n| {
                std::str::from_utf8(n)
                    .ok()?
                    .strip_prefix(OLD_LOG_PREFIX)
                    .map(String::from)
            })
            .collect();
        for name in old {
            let Some(prefix) = self.prefix(&name, true)? else {
                continue;
            };
            for (old_tree, shared) in [(OLD_LOG_PREFIX, &self.log), (OLD_META_PREFIX, &self.meta)] {
                let tree = self.db.open_tree(format!("{old_tree}{name}"))?;
                for item in tree.iter() {
                    let (k, v) = item?;
                    shared.insert([&prefix[..], &k].concat(), v)?;
                }
            }
            self.db.flush()?;
            self.db.drop_tree(format!("{OLD_META_PREFIX}{name}"))?;
            self.db.drop_tree(format!("{OLD_LOG_PREFIX}{name}"))?;
            tracing::info!(partition = %name, "moved a partition into the shared trees");
        }
        Ok(())
    }
}

impl LogStorage for SledStorage {
    fn identity(&self) -> StoreIdentity {
        self.identity.clone()
    }

    fn mark_clean_shutdown(&self) -> Result<(), BrokerError> {
        self.db.insert(CLEAN_SHUTDOWN, &[1u8])?;
        self.db.flush()?;
        Ok(())
    }

    fn open_backend(&self, key: &PartitionKey) -> Result<Box<dyn LogBackend>, BrokerError> {
        let name = key.storage_name();
        let prefix = self
            .prefix(&name, true)?
            .ok_or_else(|| BrokerError::Storage(format!("partition {name} has no store id")))?;
        Ok(Box::new(SledBackend {
            log: self.log.clone(),
            meta: self.meta.clone(),
            prefix,
        }))
    }

    /// Removes the partition's entries, then its directory entry (a crash in between
    /// leaves it listed, and it is deleted again).
    fn delete(&self, key: &PartitionKey) -> Result<(), BrokerError> {
        let name = key.storage_name();
        let Some(prefix) = self.prefix(&name, false)? else {
            return Ok(());
        };
        for tree in [&self.log, &self.meta] {
            backend::remove_keys(tree, tree.scan_prefix(prefix))?;
        }
        self.directory.remove(name)?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<PartitionKey>, BrokerError> {
        let mut keys = Vec::new();
        for item in self.directory.iter() {
            let (name, _) = item?;
            if let Some(key) = std::str::from_utf8(&name)
                .ok()
                .and_then(PartitionKey::parse)
            {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    fn flusher(&self) -> Option<Flusher> {
        Some(self.flusher.clone())
    }
}

/// Partitions in memory (tests, and a reference for the sled storage).
pub struct MemoryStorage {
    partitions: Mutex<HashMap<PartitionKey, Arc<MemoryBackend>>>,
    store_id: String,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self {
            partitions: Mutex::default(),
            store_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

impl LogStorage for MemoryStorage {
    fn identity(&self) -> StoreIdentity {
        StoreIdentity {
            store_id: self.store_id.clone(),
            clean_shutdown: true,
        }
    }

    fn mark_clean_shutdown(&self) -> Result<(), BrokerError> {
        Ok(())
    }

    fn open_backend(&self, key: &PartitionKey) -> Result<Box<dyn LogBackend>, BrokerError> {
        let mut partitions = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(partitions.entry(key.clone()).or_default().clone()))
    }

    fn delete(&self, key: &PartitionKey) -> Result<(), BrokerError> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }

    fn list(&self) -> Result<Vec<PartitionKey>, BrokerError> {
        Ok(self
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect())
    }

    fn flusher(&self) -> Option<Flusher> {
        None
    }
}
