//! `rill dev`: a local cluster of `rill node` processes on loopback. Node i serves gRPC on
//! 127.0.0.1:(19290+i), Kafka on 127.0.0.1:(9091+i) and HTTP on 127.0.0.1:(19390+i).
//! Ctrl-C (or SIGTERM) stops them all. `--secure` turns on TLS everywhere, SASL/SCRAM and
//! ACLs on Kafka, with certificates and an `admin` user (a super user) made on first use
//! under DATA_DIR/tls.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::certs::{write_cluster_certs, write_file, ClusterCerts};

#[derive(clap::Args)]
pub struct DevArgs {
    /// How many nodes (all of them controllers).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Parent directory of the nodes' data directories.
    #[arg(long, default_value = "./rill-data")]
    data_dir: PathBuf,
    /// TLS on every listener and between nodes, SASL/SCRAM on Kafka: a CA, node and admin
    /// certificates and an `admin` user (DATA_DIR/tls/admin.password), made on first use.
    #[arg(long)]
    secure: bool,
}

/// The SASL mechanisms a secure dev cluster enables.
const SECURE_MECHANISMS: &str = "SCRAM-SHA-512,SCRAM-SHA-256";

/// The nodes' shared `cluster.secret.file` under the data directory, made on first use
/// (readable by the owner only).
fn cluster_secret(data_dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let path = data_dir.join("cluster.secret");
    rill_proto::ClusterSecret::create_file(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > 9 {
        anyhow::bail!("INVALID_REQUEST: --nodes must be between 1 and 9");
    }
    let exe = std::env::current_exe().context("locating the rill binary")?;
    let grpc = |i: u16| format!("127.0.0.1:{}", 19290 + i);
    let kafka = |i: u16| format!("127.0.0.1:{}", 9091 + i);
    let secret = cluster_secret(&args.data_dir)?;
    let voters = (1..=args.nodes)
        .map(|i| format!("{i}={}", grpc(i)))
        .collect::<Vec<_>>()
        .join(",");
    let certs = match args.secure {
        true => Some(secure_files(&args.data_dir, args.nodes)?),
        false => None,
    };
    let node_args = |i: u16| -> Vec<String> {
        let mut node = vec![
            "node".into(),
            "--node-id".into(),
            i.to_string(),
            "--data-dir".into(),
            args.data_dir
                .join(format!("node-{i}"))
                .display()
                .to_string(),
            "--listen".into(),
            grpc(i),
            "--advertise".into(),
            grpc(i),
            "--voters".into(),
            voters.clone(),
            "--metrics-listen".into(),
            format!("127.0.0.1:{}", 19390 + i),
            "--kafka-listeners".into(),
            kafka(i),
            "--cluster-secret-file".into(),
            secret.display().to_string(),
        ];
        if let Some(certs) = &certs {
            let (cert, key) = certs.pair(&format!("node-{i}"));
            for (flag, path) in [
                ("--tls-ca-file", certs.ca()),
                ("--tls-cert-file", cert),
                ("--tls-key-file", key),
            ] {
                node.extend([flag.to_string(), path.display().to_string()]);
            }
            node.extend(["--sasl-enabled-mechanisms".into(), SECURE_MECHANISMS.into()]);
            // ACLs on: the admin user may do anything, others what `rill acl` grants.
            node.extend([
                "--authorizer-enable".into(),
                "true".into(),
                "--super-users".into(),
                "User:admin".into(),
            ]);
        }
        node
    };
    let mut children: Vec<Option<Child>> = Vec::new();
    for i in 1..=args.nodes {
        let child = Command::new(&exe)
            .args(node_args(i))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        children.push(Some(child));
    }
    info!(
        nodes = args.nodes,
        bootstrap = %(1..=args.nodes).map(grpc).collect::<Vec<_>>().join(","),
        kafka_bootstrap = %(1..=args.nodes).map(kafka).collect::<Vec<_>>().join(","),
        "dev cluster started; Ctrl-C stops it"
    );
    if let Some(certs) = &certs {
        let bootstrap = (1..=args.nodes).map(grpc).collect::<Vec<_>>().join(",");
        let kafka_bootstrap = (1..=args.nodes).map(kafka).collect::<Vec<_>>().join(",");
        create_admin_user(certs, &bootstrap).await?;
        print_secure_usage(certs, &bootstrap, &kafka_bootstrap);
    }

    // A node that dies (say, killed to watch a failover) is reported with the command that
    // restarts it; the others keep running until Ctrl-C.
    let signal = wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        for (i, slot) in children.iter_mut().enumerate() {
            if let Some(Ok(Some(status))) = slot.as_mut().map(Child::try_wait) {
                *slot = None;
                let n = i as u16 + 1;
                warn!(
                    "node {n} exited ({status}); restart it with: {} {}",
                    exe.display(),
                    node_args(n).join(" ")
                );
            }
        }
    }
    stop_all(children.into_iter().flatten().collect()).await;
    info!("dev cluster stopped");
    Ok(())
}

/// The certificates of a secure dev cluster (made once, kept across restarts).
fn secure_files(data_dir: &std::path::Path, nodes: u16) -> anyhow::Result<ClusterCerts> {
    let dir = data_dir.join("tls");
    let certs = ClusterCerts { dir: dir.clone() };
    let wanted = (1..=nodes).all(|i| certs.pair(&format!("node-{i}")).0.exists());
    if certs.ca().exists() && wanted {
        return Ok(certs);
    }
    let ids: Vec<u64> = (1..=u64::from(nodes)).collect();
    let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
    write_cluster_certs(&dir, &ids, &hosts, &["admin".to_string()])
}

/// Makes the `admin` user (password in DATA_DIR/tls/admin.password, made once) as soon
/// as the cluster answers; the admin certificate authenticates the call.
async fn create_admin_user(certs: &ClusterCerts, bootstrap: &str) -> anyhow::Result<()> {
    let password_file = certs.dir.join("admin.password");
    let password = match std::fs::read_to_string(&password_file) {
        Ok(text) => text.trim().to_string(),
        Err(_) => {
            let password = format!("{:032x}", rand::random::<u128>());
            write_file(&password_file, &format!("{password}\n"), true)?;
            password
        }
    };
    let (cert, key) = certs.pair("admin");
    let files = rill_proto::tls::TlsFiles::read(&certs.ca(), Some((&cert, &key)))?;
    let admin = rill_client::AdminClient::new(rill_client::Bootstrap::with_transport(
        bootstrap,
        rill_proto::Transport::tls(&files),
    )?);
    let mechanisms = rill_common::scram::ScramMechanism::ALL;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match admin.create_user("admin", &password, &mechanisms).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("creating the admin user: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("creating the admin user"),
        }
    }
}

fn print_secure_usage(certs: &ClusterCerts, bootstrap: &str, kafka_bootstrap: &str) {
    let dir = certs.dir.display();
    println!(
        "secure dev cluster: TLS on every listener and between nodes, SASL/SCRAM, ACLs on \
         both protocols (User:admin is a super user; `rill acl create` grants others).\n\
         rill CLI (the admin certificate):\n  \
         export RILL_BOOTSTRAP={bootstrap} RILL_TLS_CA={dir}/ca.pem \
         RILL_TLS_CERT={dir}/admin.pem RILL_TLS_KEY={dir}/admin-key.pem\n  \
         rill cluster describe\n\
         rill CLI as a user (SCRAM, no certificate):\n  \
         RILL_PASSWORD=$(cat {dir}/admin.password) rill cluster describe --username admin \
         --bootstrap {bootstrap} --tls-ca {dir}/ca.pem\n\
         Kafka clients (user admin):\n  \
         bootstrap.servers={kafka_bootstrap} security.protocol=SASL_SSL \
         sasl.mechanism=SCRAM-SHA-512 sasl.username=admin \
         sasl.password=$(cat {dir}/admin.password) ssl.ca.location={dir}/ca.pem\n\
         metrics: curl --cacert {dir}/ca.pem https://127.0.0.1:19391/metrics"
    );
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// SIGTERM every node, wait up to 10 s for a clean exit, then SIGKILL what remains.
async fn stop_all(children: Vec<Child>) {
    for child in &children {
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    for mut child in children {
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                warn!("a node did not stop within 10 s; killing it");
                let _ = child.kill().await;
            }
        }
    }
}
