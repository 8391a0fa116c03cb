//! The rustls server settings of the Kafka and HTTP listeners, from the node's
//! `tls.*` files (gRPC takes tonic's own, `TlsFiles::server_config`). rustls runs on ring.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use rill_proto::tls::TlsFiles;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Who must show a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificates {
    /// A client may present one signed by the cluster's CA (Kafka: SASL_SSL clients
    /// authenticate with SASL instead); one from another CA is refused.
    Optional,
    /// Nobody is asked (the HTTP listener: metrics scrapers and probes).
    NotAsked,
}

pub fn server_config(
    files: &TlsFiles,
    clients: ClientCertificates,
    alpn: &[&[u8]],
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert_pem, key_pem) = files
        .identity
        .as_ref()
        .ok_or_else(|| anyhow!("INVALID_CONFIG: TLS needs tls.cert.file and tls.key.file"))?;
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("INVALID_CONFIG: tls.cert.file: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| anyhow!("INVALID_CONFIG: tls.key.file: {e}"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match clients {
        ClientCertificates::NotAsked => builder.with_no_client_auth(),
        ClientCertificates::Optional => {
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(&files.ca_pem) {
                let ca = ca.map_err(|e| anyhow!("INVALID_CONFIG: tls.ca.file: {e}"))?;
                roots
                    .add(ca)
                    .map_err(|e| anyhow!("INVALID_CONFIG: tls.ca.file: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| anyhow!("INVALID_CONFIG: tls.ca.file: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("INVALID_CONFIG: tls.cert.file / tls.key.file: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
