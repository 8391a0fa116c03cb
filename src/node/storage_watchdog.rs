//! Failing storage: once the partition store (or the metadata store under Raft) fails,
//! the broker's heartbeats ask the controller to fence it, so its leaderships move and
//! it leaves every ISR at once; nothing it could not persist was acknowledged. sled
//! refuses every write after its first failed one, so the node probes its data directory
//! with a plain file and, once that takes a write and an fsync again, restarts itself to
//! reopen the stores; it then rejoins as a follower and catches up into the ISRs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rill_broker::ReplicaManager;
use rill_metadata::MetadataNode;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// What a probe writes: enough that a directory with only crumbs left fails it.
const PROBE_BYTES: usize = 1 << 20;

/// Waits for a storage failure, then until the data directory takes writes again;
/// `true` then (the node should restart), `false` if cancelled first.
pub async fn run(
    replicas: Arc<ReplicaManager>,
    metadata: Arc<MetadataNode>,
    data_dir: PathBuf,
    cancel: CancellationToken,
) -> bool {
    metrics::gauge!("rill_storage_failing").set(0.0);
    let failure = tokio::select! {
        _ = cancel.cancelled() => return false,
        failure = replicas.storage_health().failing() => failure,
        failure = raft_failure(&metadata) => {
            error!("the metadata store failed ({failure}): giving up leaderships and ISRs \
                until the data directory takes writes again");
            failure
        }
    };
    metadata.set_storage_failing(true);
    metrics::gauge!("rill_storage_failing").set(1.0);
    let mut probes = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
        probes += 1;
        let dir = data_dir.clone();
        match tokio::task::spawn_blocking(move || probe(&dir)).await {
            Ok(Ok(())) => {
                info!(%failure, probes, "the data directory takes writes again: restarting \
                    the node to reopen its stores");
                return true;
            }
            Ok(Err(e)) if probes % 30 == 1 => {
                warn!("the data directory still refuses writes: {e}");
            }
            _ => {}
        }
    }
}

/// Resolves when this node's Raft replica stopped for good.
async fn raft_failure(metadata: &MetadataNode) -> String {
    loop {
        if let Some(fatal) = metadata.raft_fatal() {
            return fatal;
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// Writes, fsyncs and removes a file in `dir`.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(".write-probe");
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    written
}

/// Replaces this process with a fresh start of the same command line.
pub fn restart_process() -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return anyhow::anyhow!("cannot find this program to restart it: {e}"),
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow::anyhow!("cannot restart the node: {error}")
}
