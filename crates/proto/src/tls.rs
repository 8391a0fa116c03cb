//! TLS for gRPC: how a node or a client opens channels (`Transport`: plaintext, or TLS
//! verified against the cluster's CA with its own certificate), and who is on the other
//! end of a call (the common name of the certificate the peer presented). Node
//! certificates are named `node-<id>` (principal `User:node-<id>`).

use std::sync::Arc;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Request;

/// The PEM files of one party: the CA every certificate of the cluster is signed by, and
/// (for nodes, and clients that authenticate by certificate) its own certificate and key.
#[derive(Clone)]
pub struct TlsFiles {
    pub ca_pem: Vec<u8>,
    /// Certificate chain and private key, PEM.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("identity", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsFiles {
    /// Reads the CA and, if given, a certificate and its key (all PEM).
    pub fn read(
        ca: &std::path::Path,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> std::io::Result<Self> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))
            })
        };
        Ok(Self {
            ca_pem: read(ca)?,
            identity: match identity {
                Some((cert, key)) => Some((read(cert)?, read(key)?)),
                None => None,
            },
        })
    }

    /// The gRPC server's TLS: this identity; a certificate a caller presents must be
    /// signed by the CA (a node's, or a client's: its common name is its principal). A
    /// caller may present none and authenticate with SCRAM instead (AuthService); the
    /// authentication layer refuses a call that did neither.
    pub fn server_config(&self) -> Option<tonic::transport::ServerTlsConfig> {
        let (cert, key) = self.identity.as_ref()?;
        Some(
            tonic::transport::ServerTlsConfig::new()
                .identity(Identity::from_pem(cert, key))
                .client_ca_root(Certificate::from_pem(&self.ca_pem))
                .client_auth_optional(true),
        )
    }
}

/// How channels are opened: plaintext, or TLS with the cluster's CA (and our identity).
#[derive(Clone, Default)]
pub enum Transport {
    #[default]
    Plain,
    Tls(Arc<ClientTlsConfig>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain => "Transport::Plain",
            Self::Tls(_) => "Transport::Tls",
        })
    }
}

impl Transport {
    pub fn tls(files: &TlsFiles) -> Self {
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&files.ca_pem));
        if let Some((cert, key)) = &files.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        Self::Tls(Arc::new(config))
    }

    /// The one way Rill opens a channel to a node: lazy (the node may not be up yet), no
    /// Nagle delay, short connect timeout, large flow-control windows; over TLS the node's
    /// certificate must be signed by the CA and name the host dialled.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, tonic::transport::Error> {
        let scheme = match self {
            Self::Plain => "http",
            Self::Tls(_) => "https",
        };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))?
            .connect_timeout(std::time::Duration::from_secs(1))
            .tcp_nodelay(true)
            .initial_stream_window_size(crate::STREAM_WINDOW_BYTES)
            .initial_connection_window_size(crate::CONNECTION_WINDOW_BYTES);
        match self {
            Self::Plain => Ok(endpoint),
            Self::Tls(config) => endpoint.tls_config(config.as_ref().clone()),
        }
    }
}

/// The common name of the certificate the caller presented over TLS, if any.
pub fn peer_common_name<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    common_name(certs.first()?.as_ref())
}

/// The first common name in a DER certificate's subject.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = cert.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_string)
}

/// Whether a certificate's common name is a node's (`node-<id>`).
pub fn is_node_name(common_name: &str) -> bool {
    common_name
        .strip_prefix("node-")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_node_dash_digits() {
        for name in ["node-1", "node-42"] {
            assert!(is_node_name(name), "{name}");
        }
        for name in ["node-", "node-1a", "admin", "xnode-1", "node-1 ", "Node-1"] {
            assert!(!is_node_name(name), "{name}");
        }
    }

    #[test]
    fn the_common_name_is_read_from_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "node-7");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()).as_deref(), Some("node-7"));
        assert_eq!(common_name(b"not a certificate"), None);
    }

    #[test]
    fn with_node_certificates_a_call_without_a_certificate_is_refused() {
        let auth = crate::NodeAuth::new(None, true);
        assert!(auth.is_enabled());
        let refused = auth.check(&Request::new(())).err();
        assert_eq!(
            refused.as_ref().and_then(crate::status_error_code),
            Some(rill_common::ErrorCode::ClusterAuthorizationFailed)
        );
    }
}
