use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::error::{is_transport_failure, with_root_cause, ClientError};
use crate::session::{Channel, Credentials, Session};

/// The nodes a client talks to: the bootstrap list `HOST:PORT[,HOST:PORT]`, plus every
/// broker learned from metadata since (so losing the bootstrap node loses nothing).
/// Calls go to one node and move on to the next when a node cannot be reached.
#[derive(Clone)]
pub struct Bootstrap {
    nodes: Arc<RwLock<Vec<(String, Channel)>>>,
    current: Arc<AtomicUsize>,
    /// Plaintext, or TLS with the cluster's CA (and the client's certificate).
    transport: rill_proto::Transport,
    /// SCRAM credentials and the session token they got, if the client has them.
    session: Option<Arc<Session>>,
}

fn open(
    transport: &rill_proto::Transport,
    session: &Option<Arc<Session>>,
    addr: &str,
) -> Result<Channel, ClientError> {
    transport
        .endpoint(addr)
        .map(|e| {
            Channel::new(
                e.timeout(Duration::from_secs(30)).connect_lazy(),
                session.clone(),
            )
        })
        .map_err(|e| ClientError::InvalidArgument(format!("bad address {addr:?}: {e}")))
}

impl Bootstrap {
    /// Plaintext connections to the nodes in `list`.
    pub fn new(list: &str) -> Result<Self, ClientError> {
        Self::with_transport(list, rill_proto::Transport::Plain)
    }

    /// Connections to the nodes in `list` opened by `transport` (TLS, for instance).
    pub fn with_transport(
        list: &str,
        transport: rill_proto::Transport,
    ) -> Result<Self, ClientError> {
        let addrs: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if addrs.is_empty() {
            return Err(ClientError::InvalidArgument("empty bootstrap list".into()));
        }
        let nodes = addrs
            .into_iter()
            .map(|addr| open(&transport, &None, &addr).map(|c| (addr, c)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            nodes: Arc::new(RwLock::new(nodes)),
            current: Arc::new(AtomicUsize::new(0)),
            transport,
            session: None,
        })
    }

    /// Authenticates every call with SCRAM `credentials` (a session token got on the
    /// first call) instead of, or besides, a client certificate.
    pub fn with_credentials(mut self, credentials: Credentials) -> Result<Self, ClientError> {
        self.session = Some(Arc::new(Session::new(credentials)));
        let addrs: Vec<String> = self
            .nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(a, _)| a.clone())
            .collect();
        let nodes = addrs
            .into_iter()
            .map(|addr| open(&self.transport, &self.session, &addr).map(|c| (addr, c)))
            .collect::<Result<Vec<_>, _>>()?;
        self.nodes = Arc::new(RwLock::new(nodes));
        Ok(self)
    }

    /// A lazily connected channel to `addr`, opened the way this client opens them all.
    pub(crate) fn channel_to(&self, addr: &str) -> Result<Channel, ClientError> {
        open(&self.transport, &self.session, addr)
    }

    /// Adds node addresses learned from metadata.
    pub(crate) fn learn(&self, addrs: impl IntoIterator<Item = String>) {
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        for addr in addrs {
            if !nodes.iter().any(|(a, _)| *a == addr) {
                if let Ok(c) = open(&self.transport, &self.session, &addr) {
                    nodes.push((addr, c));
                }
            }
        }
    }

    /// Runs `call` against the current node, moving to the next on a transport failure
    /// until every node was tried once.
    pub(crate) async fn with_channel<T, F, Fut>(&self, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner()).clone();
        let n = nodes.len();
        let mut last_error = String::new();
        for attempt in 0..n {
            let index = (self.current.load(Ordering::Relaxed) + attempt) % n;
            match call(nodes[index].1.clone()).await {
                Ok(value) => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(status) if is_transport_failure(&status) => {
                    last_error = format!("{}: {}", nodes[index].0, with_root_cause(&status));
                }
                Err(status) => return Err(ClientError::from_status(&status)),
            }
        }
        Err(ClientError::Unreachable {
            addrs: nodes
                .iter()
                .map(|(a, _)| a.as_str())
                .collect::<Vec<_>>()
                .join(","),
            last_error,
        })
    }
}
