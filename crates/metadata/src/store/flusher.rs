use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An fsync slower than this is logged: acknowledgements wait for it.
const SLOW_FSYNC: std::time::Duration = std::time::Duration::from_millis(500);

/// Group commit for one sled `Db`, and the only place that fsyncs it: sled 0.34.7
/// deadlocks on concurrent flushes (sled issue 1308).
///
/// A writer calls [`Flusher::flush`] after its write. It takes a ticket, then waits for
/// the flush lock; whoever holds the lock fsyncs everything written up to the newest
/// ticket, so writers that queued behind it find their write already covered and return
/// without another fsync. No background task is needed.
#[derive(Clone)]
pub struct Flusher {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    lock: tokio::sync::Mutex<()>,
    /// Tickets handed out; a ticket is taken after the writer's write.
    tickets: AtomicU64,
    /// Every ticket up to this one is on disk.
    durable: AtomicU64,
    flushes: AtomicU64,
}

impl Flusher {
    pub fn new(db: sled::Db) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                lock: tokio::sync::Mutex::new(()),
                tickets: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
            }),
        }
    }

    /// Returns once every write made to the Db before the call is on disk.
    pub async fn flush(&self) -> std::io::Result<()> {
        let inner = &self.inner;
        let ticket = inner.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = inner.lock.lock().await;
        if inner.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every write whose ticket is at most `covered` happened before this load.
        let covered = inner.tickets.load(Ordering::SeqCst);
        let db = inner.db.clone();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || db.flush()).await;
        if started.elapsed() > SLOW_FSYNC {
            tracing::warn!(took = ?started.elapsed(), "slow fsync");
        }
        match result {
            Ok(Ok(_)) => {
                inner.durable.fetch_max(covered, Ordering::SeqCst);
                inner.flushes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(join) => Err(std::io::Error::other(join)),
        }
    }

    /// How many fsyncs ran (one per group of writers).
    pub fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_fsyncs_and_every_write_is_covered() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = sled::Config::new()
            .path(dir.path())
            .open()
            .unwrap_or_else(|e| panic!("{e}"));
        let flusher = Flusher::new(db.clone());
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let (db, flusher) = (db.clone(), flusher.clone());
            tasks.push(tokio::spawn(async move {
                db.insert(i.to_be_bytes(), vec![1u8; 100])
                    .map_err(std::io::Error::other)?;
                flusher.flush().await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await, Ok(Ok(()))));
        }
        assert!(flusher.flush_count() >= 1);
        assert!(
            flusher.flush_count() < 64,
            "writers share fsyncs: {}",
            flusher.flush_count()
        );
        assert_eq!(db.len(), 64);
    }
}
