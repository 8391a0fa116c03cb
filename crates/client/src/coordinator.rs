//! The connection to a coordinator (of a group or of a transactional id): found with
//! FindCoordinator on any node, found again when it moves (NOT_COORDINATOR,
//! COORDINATOR_NOT_AVAILABLE, an unreachable node). Both coordinators live on the active
//! controller today; the client asks for each by its key all the same, as Kafka's do.

use std::sync::Mutex;
use std::time::Duration;

use crate::session::Channel;
use rill_common::ErrorCode;
use rill_proto::v1 as pb;
use rill_proto::v1::group_service_client::GroupServiceClient;
use rill_proto::v1::transaction_service_client::TransactionServiceClient;

use crate::{Bootstrap, ClientError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoordinatorKind {
    Group,
    Transaction,
}

pub(crate) struct CoordinatorChannel {
    bootstrap: Bootstrap,
    kind: CoordinatorKind,
    /// The group id or the transactional id.
    key: String,
    channel: Mutex<Option<Channel>>,
}

impl CoordinatorChannel {
    pub fn new(bootstrap: Bootstrap, kind: CoordinatorKind, key: String) -> Self {
        Self {
            bootstrap,
            kind,
            key,
            channel: Mutex::new(None),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn cached(&self) -> Option<Channel> {
        self.channel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn forget(&self) {
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn find(&self) -> Result<Channel, ClientError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let (kind, key) = (self.kind, self.key.clone());
        let found = self
            .bootstrap
            .with_channel(|c| {
                let key = key.clone();
                async move {
                    match kind {
                        CoordinatorKind::Group => {
                            let request = pb::FindCoordinatorRequest { group_id: key };
                            GroupServiceClient::new(c).find_coordinator(request).await
                        }
                        CoordinatorKind::Transaction => {
                            let request = pb::FindTxnCoordinatorRequest {
                                transactional_id: key,
                            };
                            TransactionServiceClient::new(c)
                                .find_coordinator(request)
                                .await
                        }
                    }
                }
            })
            .await?
            .into_inner();
        self.bootstrap.learn([found.addr.clone()]);
        let channel = self.bootstrap.channel_to(&found.addr)?;
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel.clone());
        Ok(channel)
    }

    /// One call to the coordinator, which `f` makes on its channel within `timeout`; a
    /// moved or unreachable coordinator is forgotten so the next call finds it again
    /// (the error is returned, retriable).
    pub async fn call<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, ClientError>
    where
        F: FnOnce(Channel, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channel = self.find().await?;
        match f(channel, timeout).await {
            Ok(r) => Ok(r.into_inner()),
            Err(status) => {
                let e = ClientError::from_status(&status);
                if matches!(e, ClientError::Unreachable { .. })
                    || matches!(
                        e.code(),
                        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
                    )
                {
                    self.forget();
                }
                Err(e)
            }
        }
    }
}

/// Retry backoff of coordinator calls: doubles from the minimum up to the maximum. The
/// minimum is short because CONCURRENT_TRANSACTIONS (the last transaction's markers are
/// still being written) usually clears within milliseconds, and the next transaction
/// of a producer waits on it.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(5);
const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(500);

impl CoordinatorChannel {
    /// `call` again while the answer is retriable (the coordinator moved, is loading, or
    /// says CONCURRENT_TRANSACTIONS) and `deadline` allows; each call gets `timeout`.
    pub async fn call_until<T, F, Fut>(
        &self,
        deadline: std::time::Instant,
        timeout: Duration,
        f: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Channel, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut backoff = RETRY_BACKOFF_MIN;
        loop {
            match self.call(timeout, &f).await {
                Err(e) if e.is_retriable() && std::time::Instant::now() + backoff < deadline => {
                    tracing::debug!(key = %self.key, "retrying a coordinator call: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                }
                other => return other,
            }
        }
    }
}
