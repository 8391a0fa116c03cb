//! `rill certs`: a CA and the certificates a cluster's TLS needs, made with rcgen. Nodes
//! get `node-<id>` (their principal `User:node-<id>`) with the hosts they are dialled at
//! as subject alternative names, clients get their user name. `rill dev --secure` and
//! the tests use the same function.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

#[derive(clap::Args)]
pub struct CertsArgs {
    /// Where the PEM files go: ca.pem, ca-key.pem, node-<id>.pem, node-<id>-key.pem,
    /// <client>.pem, <client>-key.pem (keys readable by the owner only).
    #[arg(long)]
    dir: PathBuf,
    /// Node ids to make certificates for.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    nodes: Vec<u64>,
    /// Host names and addresses the nodes are dialled at (`{id}` stands for the node id).
    #[arg(long = "host", default_values = ["localhost", "127.0.0.1", "node{id}"])]
    hosts: Vec<String>,
    /// Client certificates to make (the common name is the user name).
    #[arg(long = "client", default_values = ["admin"])]
    clients: Vec<String>,
}

/// The PEM files `write_cluster_certs` made.
#[derive(Debug, Clone)]
pub struct ClusterCerts {
    pub dir: PathBuf,
}

impl ClusterCerts {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A node's or a client's certificate and key.
    pub fn pair(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}-key.pem")),
        )
    }
}

pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let certs = write_cluster_certs(&args.dir, &args.nodes, &args.hosts, &args.clients)?;
    println!(
        "{}",
        serde_json::json!({ "dir": certs.dir, "ca": certs.ca() })
    );
    Ok(())
}

/// Makes a CA and certificates for `nodes` (dialled at `hosts`) and `clients` in `dir`.
pub fn write_cluster_certs(
    dir: &Path,
    nodes: &[u64],
    hosts: &[String],
    clients: &[String],
) -> anyhow::Result<ClusterCerts> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Rill cluster CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;
    write_file(&dir.join("ca.pem"), &ca.pem(), false)?;
    write_file(&dir.join("ca-key.pem"), &ca_key.serialize_pem(), true)?;
    let issue = |name: &str, sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = usages;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        write_file(&dir.join(format!("{name}.pem")), &cert.pem(), false)?;
        write_file(
            &dir.join(format!("{name}-key.pem")),
            &key.serialize_pem(),
            true,
        )?;
        anyhow::Ok(())
    };
    for id in nodes {
        let sans = hosts
            .iter()
            .map(|h| h.replace("{id}", &id.to_string()))
            .collect();
        issue(
            &format!("node-{id}"),
            sans,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
    }
    for client in clients {
        issue(
            client,
            Vec::new(),
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )?;
    }
    Ok(ClusterCerts {
        dir: dir.to_path_buf(),
    })
}

/// Writes `text` to `path`, readable by its owner only when `secret` (keys, passwords).
pub fn write_file(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
