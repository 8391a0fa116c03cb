//! Group commit of offset commits: commits checked by the coordinator queue here, and
//! whoever finds no write in flight writes everything queued (up to `MAX_BATCH`
//! commits) as one metadata log entry. While one entry is being made durable the next
//! batch gathers, so N members committing each second cost a few entries per second,
//! not N, and the coordinator's lock is not held across the write. Commits are written
//! in the order they were queued (a group's later commit wins).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use rill_metadata::OffsetCommit;
use tokio::sync::oneshot;

use crate::error::CoordinatorError;

/// The most commits one log entry carries.
pub(crate) const MAX_BATCH: usize = 2_000;

/// One group's offsets, as written.
pub(crate) type GroupOffsets = (String, Vec<OffsetCommit>);

struct Pending {
    commit: GroupOffsets,
    reply: oneshot::Sender<Result<(), CoordinatorError>>,
}

#[derive(Default)]
pub(crate) struct CommitBatcher {
    /// Bounded by the requests waiting on it: each waits for its own entry.
    queue: Mutex<VecDeque<Pending>>,
    /// Held by the task writing a batch, so one batch is in flight at a time.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl CommitBatcher {
    /// Queues `commit` and returns once a log entry holding it is written (or failed).
    /// `write` writes one batch; the caller that writes may carry others' commits. The
    /// write runs in a task of its own, so a caller that gives up (a cancelled request)
    /// never abandons the commits of others it carried.
    pub(crate) async fn commit<W, F>(
        &self,
        commit: GroupOffsets,
        write: W,
    ) -> Result<(), CoordinatorError>
    where
        W: Fn(Vec<GroupOffsets>) -> F,
        F: Future<Output = Result<(), CoordinatorError>> + Send + 'static,
    {
        let (reply, mut answer) = oneshot::channel();
        self.lock_queue().push_back(Pending { commit, reply });
        loop {
            let writing = self.writer.clone().lock_owned().await;
            // Written by the batch before ours?
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(CoordinatorError::new(
                        rill_common::ErrorCode::UnknownServerError,
                        "an offset commit batch was dropped",
                    ))
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch: Vec<Pending> = {
                let mut queue = self.lock_queue();
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            let (commits, replies): (Vec<GroupOffsets>, Vec<_>) =
                batch.into_iter().map(|p| (p.commit, p.reply)).unzip();
            if commits.is_empty() {
                continue;
            }
            let written = write(commits);
            tokio::spawn(async move {
                let result = written.await;
                for reply in replies {
                    let _ = reply.send(result.clone());
                }
                drop(writing);
            });
            // Ours was in this batch, or waits for the next writer (maybe us): the lock
            // comes back once the batch is answered.
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn offsets(offset: u64) -> Vec<OffsetCommit> {
        vec![OffsetCommit {
            topic: "t".into(),
            partition: 0,
            offset,
            metadata: String::new(),
            leader_epoch: None,
        }]
    }

    #[tokio::test]
    async fn commits_arriving_during_a_write_share_the_next_entry() {
        let batcher = Arc::new(CommitBatcher::default());
        let writes = Arc::new(Mutex::new(Vec::<Vec<GroupOffsets>>::new()));
        let write = {
            let writes = writes.clone();
            move |batch: Vec<GroupOffsets>| {
                let writes = writes.clone();
                async move {
                    // A durable write takes a while; more commits queue meanwhile.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    writes.lock().unwrap_or_else(|e| e.into_inner()).push(batch);
                    Ok(())
                }
            }
        };
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (batcher, write) = (batcher.clone(), write.clone());
            tasks.push(tokio::spawn(async move {
                batcher.commit((format!("g{i}"), offsets(i)), write).await
            }));
            if i == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        for t in tasks {
            assert_eq!(t.await.ok(), Some(Ok(())));
        }
        let writes = writes.lock().unwrap_or_else(|e| e.into_inner());
        let written: usize = writes.iter().map(Vec::len).sum();
        assert_eq!(written, 200, "every commit written once");
        assert!(writes.len() <= 3, "200 commits in {} entries", writes.len());
        assert_eq!(writes[0].len(), 1, "the first commit is written alone");
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_commit_in_it_and_the_next_batch_goes_on() {
        let batcher = Arc::new(CommitBatcher::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let write = {
            let calls = calls.clone();
            move |_batch: Vec<GroupOffsets>| {
                let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
                async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if first {
                        Err(CoordinatorError::new(
                            rill_common::ErrorCode::NotCoordinator,
                            "lost the lead",
                        ))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        let first = {
            let (batcher, write) = (batcher.clone(), write.clone());
            tokio::spawn(async move { batcher.commit(("a".into(), offsets(1)), write).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = batcher.commit(("b".into(), offsets(2)), write).await;
        let first = first.await.ok().map(|r| r.map_err(|e| e.code()));
        assert_eq!(first, Some(Err(rill_common::ErrorCode::NotCoordinator)));
        assert_eq!(second, Ok(()));
    }

    #[tokio::test]
    async fn a_writer_that_gives_up_still_answers_the_commits_it_carried() {
        let batcher = Arc::new(CommitBatcher::default());
        let writes = Arc::new(AtomicUsize::new(0));
        let write = {
            let writes = writes.clone();
            move |batch: Vec<GroupOffsets>| {
                let writes = writes.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    writes.fetch_add(batch.len(), Ordering::SeqCst);
                    Ok(())
                }
            }
        };
        let commit = |group: &'static str, offset: u64| {
            let (batcher, write) = (batcher.clone(), write.clone());
            tokio::spawn(
                async move { batcher.commit((group.into(), offsets(offset)), write).await },
            )
        };
        // `a` is written alone; `b` and `c` queue meanwhile, and `b`'s caller writes both.
        let a = commit("a", 1);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = commit("b", 2);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let c = commit("c", 3);
        // `b`'s request is cancelled while its write (carrying `c`) is under way.
        tokio::time::sleep(Duration::from_millis(60)).await;
        b.abort();
        assert!(matches!(a.await, Ok(Ok(()))));
        let c = tokio::time::timeout(Duration::from_secs(5), c).await;
        assert!(
            matches!(c, Ok(Ok(Ok(())))),
            "the commit carried by a cancelled writer is answered: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(writes.load(Ordering::SeqCst), 3, "every commit was written");
    }
}
