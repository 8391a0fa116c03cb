//! `rill dev`: a local cluster of `rill node` processes on loopback. Node i serves gRPC on
//! 127.0.0.1:(19290+i), Kafka on 127.0.0.1:(9091+i) and HTTP on 127.0.0.1:(19390+i).
//! Ctrl-C (or SIGTERM) stops them all.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tracing::{info, warn};

#[derive(clap::Args)]
pub struct DevArgs {
    /// How many nodes (all of them controllers).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Parent directory of the nodes' data directories.
    #[arg(long, default_value = "./rill-data")]
    data_dir: PathBuf,
}

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
    let node_args = |i: u16| -> Vec<String> {
        vec![
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
        ]
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
