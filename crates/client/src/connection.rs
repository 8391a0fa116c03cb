use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;

use crate::error::{is_transport_failure, ClientError};

/// The bootstrap list: `HOST:PORT[,HOST:PORT]`. Calls go to one node and move on to the
/// next when a node cannot be reached.
#[derive(Clone)]
pub struct Bootstrap {
    addrs: Arc<Vec<String>>,
    channels: Arc<Vec<Channel>>,
    current: Arc<AtomicUsize>,
}

impl Bootstrap {
    pub fn new(list: &str) -> Result<Self, ClientError> {
        let addrs: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if addrs.is_empty() {
            return Err(ClientError::InvalidArgument("empty bootstrap list".into()));
        }
        let channels = addrs
            .iter()
            .map(|addr| {
                rill_proto::endpoint(addr)
                    .map(|e| e.timeout(Duration::from_secs(30)).connect_lazy())
                    .map_err(|e| ClientError::InvalidArgument(format!("bad address {addr:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            addrs: Arc::new(addrs),
            channels: Arc::new(channels),
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `call` against the current node, moving to the next on a transport failure
    /// until every node was tried once.
    pub(crate) async fn with_channel<T, F, Fut>(&self, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let n = self.channels.len();
        let mut last_error = String::new();
        for attempt in 0..n {
            let index = (self.current.load(Ordering::Relaxed) + attempt) % n;
            match call(self.channels[index].clone()).await {
                Ok(value) => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(status) if is_transport_failure(&status) => {
                    last_error = format!("{}: {}", self.addrs[index], status.message());
                }
                Err(status) => return Err(ClientError::from_status(&status)),
            }
        }
        Err(ClientError::Unreachable {
            addrs: self.addrs.join(","),
            last_error,
        })
    }
}
