use std::sync::Arc;

/// Serializes every fsync of one sled `Db`: sled 0.34.7 deadlocks on concurrent flushes
/// (sled issue 1308), and the log store and state machine run on different tasks.
#[derive(Clone)]
pub struct Flusher {
    db: sled::Db,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Flusher {
    pub fn new(db: sled::Db) -> Self {
        Self {
            db,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Returns once every write made to the Db before the call is on disk.
    pub async fn flush(&self) -> std::io::Result<()> {
        let _guard = self.lock.lock().await;
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(join) => Err(std::io::Error::other(join)),
        }
    }
}
