//! Partition logs: [`PartitionLog`] holds the rules, [`LogBackend`] the bytes, and a
//! [`LogStorage`] opens and deletes the logs of one node (sled Db or memory).

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

/// Opens, lists and deletes a node's partition logs.
pub trait LogStorage: Send + Sync {
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

/// All partitions of a node in one sled Db, a tree pair per partition, one flusher.
pub struct SledStorage {
    db: sled::Db,
    flusher: Flusher,
}

impl SledStorage {
    pub fn open(path: &Path) -> Result<Self, BrokerError> {
        let db = sled::Config::new().path(path).open()?;
        let flusher = Flusher::new(db.clone());
        Ok(Self { db, flusher })
    }
}

impl LogStorage for SledStorage {
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
#[derive(Default)]
pub struct MemoryStorage {
    partitions: Mutex<HashMap<PartitionKey, Arc<MemoryBackend>>>,
}

impl LogStorage for MemoryStorage {
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
