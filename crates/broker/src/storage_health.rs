//! Whether this node's partition store still takes writes. The first storage error (an
//! I/O error, a full disk) turns it to failing: one ERROR line, the node's heartbeat
//! then asks the controller to fence it (its leaderships move, it leaves every ISR) and
//! `/readyz` answers not ready. sled refuses every later write once one failed, so the
//! node reopens its stores (a restart) once its data directory takes writes again.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;
use tracing::error;

use crate::BrokerError;

pub struct StorageHealth {
    /// The first error since the store opened; `None` while healthy.
    failure: watch::Sender<Option<String>>,
    errors: AtomicU64,
}

impl Default for StorageHealth {
    fn default() -> Self {
        Self {
            failure: watch::channel(None).0,
            errors: AtomicU64::new(0),
        }
    }
}

impl StorageHealth {
    /// Records what a storage operation returned: a storage error marks the store
    /// failing (logged once), anything else changes nothing.
    pub fn observe<T>(&self, result: &Result<T, BrokerError>) {
        if let Err(BrokerError::Storage(message)) = result {
            self.failed(message);
        }
    }

    pub fn failed(&self, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("rill_storage_errors_total").increment(1);
        self.failure.send_if_modified(|failure| {
            if failure.is_some() {
                return false;
            }
            error!(
                "the partition store failed ({message}): giving up leaderships and ISRs \
                until the data directory takes writes again"
            );
            metrics::gauge!("rill_storage_failing").set(1.0);
            *failure = Some(message.to_string());
            true
        });
    }

    pub fn is_failing(&self) -> bool {
        self.failure.borrow().is_some()
    }

    /// The first failure, when it comes (at once if the store is failing already).
    pub async fn failing(&self) -> String {
        let mut watch = self.failure.subscribe();
        loop {
            if let Some(failure) = watch.borrow_and_update().clone() {
                return failure;
            }
            if watch.changed().await.is_err() {
                return String::new();
            }
        }
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_storage_error_marks_the_store_failing_and_others_do_not() {
        let health = StorageHealth::default();
        health.observe::<()>(&Err(BrokerError::NotLeader("moved".into())));
        health.observe(&Ok(1));
        assert!(!health.is_failing());
        health.observe::<()>(&Err(BrokerError::Storage("No space left on device".into())));
        health.observe::<()>(&Err(BrokerError::Storage("again".into())));
        assert!(health.is_failing());
        assert_eq!(health.errors(), 2);
    }
}
