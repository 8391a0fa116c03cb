//! Node-to-node authentication. Every call a node makes to another node's internal
//! services (Raft, ControllerService, follower fetches, transaction markers and
//! verifications) carries the cluster secret in `rill-cluster-secret`, and with TLS on
//! comes with the node's certificate (`node-<id>`); those services refuse a call without
//! them (CLUSTER_AUTHORIZATION_FAILED). Clients never see the secret. A node started with
//! neither accepts every caller and says so at start.

use std::sync::Arc;

use rill_common::ErrorCode;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// The metadata key the cluster secret travels in.
pub const CLUSTER_SECRET_KEY: &str = "rill-cluster-secret";

/// The shortest secret accepted (characters).
pub const CLUSTER_SECRET_MIN_LEN: usize = 16;

/// The secret the nodes of one cluster share (`cluster.secret.file`).
#[derive(Clone)]
pub struct ClusterSecret(Arc<AsciiMetadataValue>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    /// A secret from its text (surrounding whitespace ignored): at least
    /// [`CLUSTER_SECRET_MIN_LEN`] visible ASCII characters.
    pub fn new(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() < CLUSTER_SECRET_MIN_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "a cluster secret is at least {CLUSTER_SECRET_MIN_LEN} visible ASCII characters"
            ));
        }
        let value = AsciiMetadataValue::try_from(text).map_err(|e| e.to_string())?;
        Ok(Self(Arc::new(value)))
    }

    /// Makes a new secret file at `path` (64 hex characters from the OS's random source,
    /// readable by its owner only) unless one is there. Returns whether it made one.
    pub fn create_file(path: &std::path::Path) -> std::io::Result<bool> {
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        if path.exists() {
            return Ok(false);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut random = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
        let text: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        writeln!(file, "{text}")?;
        Ok(true)
    }

    /// Whether `presented` is this secret, in time independent of where they differ.
    fn matches(&self, presented: &[u8]) -> bool {
        let own = self.0.as_bytes();
        own.len() == presented.len()
            && own
                .iter()
                .zip(presented)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// What a node's own calls to other nodes carry (the secret, if the cluster has one), and
/// what its internal services ask of a caller (that secret, and with TLS on a node's
/// certificate).
#[derive(Debug, Clone, Default)]
pub struct NodeAuth {
    secret: Option<ClusterSecret>,
    node_certificates: bool,
}

impl NodeAuth {
    /// `node_certificates`: TLS is on, so a caller must also present a node certificate.
    pub fn new(secret: Option<ClusterSecret>, node_certificates: bool) -> Self {
        Self {
            secret,
            node_certificates,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.secret.is_some() || self.node_certificates
    }

    /// Fails unless `request` comes from a node of this cluster (always passes when the
    /// cluster has neither a secret nor TLS).
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let refused = || {
            crate::error_status(
                ErrorCode::ClusterAuthorizationFailed,
                "only the nodes of this cluster may call this service",
            )
        };
        if self.node_certificates
            && !crate::tls::peer_common_name(request)
                .is_some_and(|cn| crate::tls::is_node_name(&cn))
        {
            return Err(refused());
        }
        if let Some(secret) = &self.secret {
            let presented = request.metadata().get(CLUSTER_SECRET_KEY);
            if !presented.is_some_and(|v| secret.matches(v.as_bytes())) {
                return Err(refused());
            }
        }
        Ok(())
    }

    /// Whether `request` carries this cluster's secret (false when there is none).
    pub fn carries_secret<T>(&self, request: &Request<T>) -> bool {
        self.secret.as_ref().is_some_and(|secret| {
            request
                .metadata()
                .get(CLUSTER_SECRET_KEY)
                .is_some_and(|v| secret.matches(v.as_bytes()))
        })
    }

    /// A server-side interceptor that admits only the nodes of this cluster.
    pub fn require_node(&self) -> RequireNode {
        RequireNode(self.clone())
    }
}

impl tonic::service::Interceptor for NodeAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.secret {
            request
                .metadata_mut()
                .insert(CLUSTER_SECRET_KEY, secret.0.as_ref().clone());
        }
        Ok(request)
    }
}

/// Refuses calls from anyone but a node of this cluster (see [`NodeAuth::check`]).
#[derive(Debug, Clone)]
pub struct RequireNode(NodeAuth);

impl tonic::service::Interceptor for RequireNode {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.0.check(&request)?;
        Ok(request)
    }
}

/// A channel to another node whose calls carry the cluster secret.
pub type NodeChannel = InterceptedService<Channel, NodeAuth>;

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn only_calls_with_the_secret_pass_and_without_a_secret_everyone_does() {
        assert!(ClusterSecret::new("short").is_err());
        assert!(ClusterSecret::new("sixteen chars!! x").is_err(), "spaces");
        let Ok(secret) = ClusterSecret::new(" 0123456789abcdef0123\n") else {
            panic!("a valid secret");
        };
        let mut node = NodeAuth::new(Some(secret), false);
        let Ok(sent) = node.call(Request::new(())) else {
            panic!("the interceptor adds the secret");
        };
        assert!(node.check(&sent).is_ok());
        let outsider = Request::new(());
        let refused = node.check(&outsider).err();
        assert_eq!(
            refused.as_ref().and_then(crate::status_error_code),
            Some(ErrorCode::ClusterAuthorizationFailed)
        );
        let mut wrong = Request::new(());
        wrong.metadata_mut().insert(
            CLUSTER_SECRET_KEY,
            AsciiMetadataValue::from_static("0123456789abcdef0124"),
        );
        assert!(node.check(&wrong).is_err());
        assert!(NodeAuth::default().check(&outsider).is_ok());
    }
}
