//! Client subcommands. Every one takes `--bootstrap` and `--json`; errors are one line on
//! stderr naming the error code, with exit status 1.

pub mod acl;
pub mod broker;
pub mod cluster;
pub mod consume;
pub mod copy;
pub mod group;
pub mod produce;
pub mod reassign;
pub mod replicas;
pub mod topic;
pub mod txn;
pub mod user;
pub mod verify;

use std::path::PathBuf;

use rill_client::{AdminClient, Bootstrap, ClientError};
use rill_common::ErrorCode;
use serde::Serialize;

#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Nodes to contact: HOST:PORT[,HOST:PORT].
    #[arg(
        long,
        env = "RILL_BOOTSTRAP",
        default_value = "127.0.0.1:19291",
        global = true
    )]
    pub bootstrap: String,
    /// Machine-readable output: one JSON document (or one object per line for streams).
    #[arg(long, global = true)]
    pub json: bool,
    /// TLS: the CA that signs the cluster's certificates (PEM).
    #[arg(long, env = "RILL_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// TLS: this client's certificate (PEM; its common name is the principal).
    #[arg(long, env = "RILL_TLS_CERT", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: the key of --tls-cert (PEM).
    #[arg(long, env = "RILL_TLS_KEY", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// SCRAM: authenticate as this user (`rill user create`), the password in the
    /// environment variable RILL_PASSWORD (never on the command line).
    #[arg(long, env = "RILL_USERNAME", global = true)]
    pub username: Option<String>,
    /// SCRAM: the mechanism of --username (SCRAM-SHA-256 or SCRAM-SHA-512).
    #[arg(long, global = true, default_value = "SCRAM-SHA-512", value_parser = parse_scram_mechanism)]
    pub sasl_mechanism: rill_common::scram::ScramMechanism,
}

fn parse_scram_mechanism(name: &str) -> Result<rill_common::scram::ScramMechanism, String> {
    rill_common::scram::ScramMechanism::from_name(name).ok_or_else(|| {
        format!("UNSUPPORTED_SASL_MECHANISM: {name} (SCRAM-SHA-256 or SCRAM-SHA-512)")
    })
}

impl ClientArgs {
    /// The nodes, reached over TLS when `--tls-ca` is given.
    pub fn connect(&self) -> anyhow::Result<Bootstrap> {
        let transport = match &self.tls_ca {
            None => {
                if self.tls_cert.is_some() {
                    anyhow::bail!("INVALID_REQUEST: --tls-cert needs --tls-ca");
                }
                rill_proto::Transport::Plain
            }
            Some(ca) => {
                let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
                let files = rill_proto::tls::TlsFiles::read(ca, identity)
                    .map_err(|e| anyhow::anyhow!("INVALID_REQUEST: {e}"))?;
                rill_proto::Transport::tls(&files)
            }
        };
        let bootstrap = Bootstrap::with_transport(&self.bootstrap, transport)?;
        let Some(username) = &self.username else {
            return Ok(bootstrap);
        };
        let password = std::env::var("RILL_PASSWORD").map_err(|_| {
            anyhow::anyhow!("INVALID_REQUEST: --username needs the password in RILL_PASSWORD")
        })?;
        Ok(bootstrap.with_credentials(rill_client::Credentials {
            username: username.clone(),
            password,
            mechanism: self.sasl_mechanism,
        })?)
    }

    pub fn admin(&self) -> anyhow::Result<AdminClient> {
        Ok(AdminClient::new(self.connect()?))
    }

    /// Prints `value` as JSON, or `human` otherwise.
    pub fn print<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(value)?);
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{text}");
            }
        }
        Ok(())
    }
}

/// The one-line error message: `error: CODE: message`.
pub fn error_line(error: &anyhow::Error) -> String {
    if let Some(client) = error.downcast_ref::<ClientError>() {
        return format!("error: {client}");
    }
    let text = format!("{error:#}").replace('\n', " ");
    let has_code = text
        .split(':')
        .next()
        .is_some_and(|head| head.parse::<ErrorCode>().is_ok());
    if has_code {
        format!("error: {text}")
    } else {
        format!("error: {}: {text}", ErrorCode::InvalidRequest)
    }
}

/// Parses a duration in seconds (`--wait 300`).
pub fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<u64>()
        .map(std::time::Duration::from_secs)
        .map_err(|e| format!("{s:?} is not a number of seconds: {e}"))
}

/// Parses repeated `KEY=VALUE` arguments.
pub fn parse_key_values(
    items: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: expected KEY=VALUE, got {item:?}",
                        ErrorCode::InvalidConfig
                    )
                })
        })
        .collect()
}
