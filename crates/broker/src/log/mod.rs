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

const LOG_TREE: &str = "log/";
const META_TREE: &str = "meta/";
/// Keys of the Db's default tree.
const STORE_ID: &[u8] = b"store_id";
const CLEAN_SHUTDOWN: &[u8] = b"clean_shutdown";

/// All partitions of a node in one sled Db, a tree pair per partition, one flusher.
pub struct SledStorage {
    db: sled::Db,
    flusher: Flusher,
    identity: StoreIdentity,
}

impl SledStorage {
    /// Opens (or creates, with a new store id) the store, and takes its clean-shutdown
    /// marker: it is gone from disk before this returns.
    pub fn open(path: &Path) -> Result<Self, BrokerError> {
        let db = sled::Config::new().path(path).open()?;
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
        db.flush()?;
        let flusher = Flusher::new(db.clone());
        Ok(Self {
            db,
            flusher,
            identity: StoreIdentity {
                store_id,
                clean_shutdown,
            },
        })
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
        Ok(Box::new(SledBackend {
            log: self.db.open_tree(format!("{LOG_TREE}{name}"))?,
            meta: self.db.open_tree(format!("{META_TREE}{name}"))?,
        }))
    }

    fn delete(&self, key: &PartitionKey) -> Result<(), BrokerError> {
        let name = key.storage_name();
        self.db.drop_tree(format!("{LOG_TREE}{name}"))?;
        self.db.drop_tree(format!("{META_TREE}{name}"))?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<PartitionKey>, BrokerError> {
        Ok(self
            .db
            .tree_names()
            .iter()
            .filter_map(|n| {
                std::str::from_utf8(n)
                    .ok()?
                    .strip_prefix(LOG_TREE)
                    .and_then(PartitionKey::parse)
            })
            .collect())
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
