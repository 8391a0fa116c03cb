//! The HTTP listener: `/metrics` (Prometheus text), `/healthz` (the process serves) and
//! `/readyz` (part of the quorum, metadata caught up, broker registered).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusBuilder;
use rill_broker::ReplicaManager;
use rill_metadata::MetadataNode;
use tokio_util::sync::CancellationToken;

/// Binds the listener and returns the server task.
pub async fn serve(
    addr: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    metadata: Arc<MetadataNode>,
    replicas: Arc<ReplicaManager>,
    cancel: CancellationToken,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding metrics listener {addr}"))?;
    let ready = metadata.clone();
    let storage = replicas.clone();
    let gauges = Arc::new(Mutex::new(Gauges::new(metadata, replicas)));
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                gauges.lock().unwrap_or_else(|e| e.into_inner()).refresh();
                let rendered = handle.render();
                async move { rendered }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.is_ready()
                    && ready.raft_fatal().is_none()
                    && !storage.storage_health().is_failing();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        );
    Ok(async move {
        let stopped = cancel.clone().cancelled_owned();
        let served = match tls {
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
            Some(config) => {
                let listener = TlsListener {
                    tcp: listener,
                    tls: tokio_rustls::TlsAcceptor::from(config),
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
        };
        if let Err(e) = served {
            tracing::warn!("metrics listener stopped: {e}");
        }
    })
}

/// How long an HTTPS client has to finish its handshake (accepts wait meanwhile).
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The HTTP listener over TLS: each accepted connection is handshaken before axum sees
/// it; a failed or slow handshake drops that connection only.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = axum::serve::Listener::accept(&mut self.tcp).await;
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, self.tls.accept(stream)).await {
                Ok(Ok(stream)) => return (stream, peer),
                Ok(Err(e)) => tracing::debug!(%peer, "HTTPS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "HTTPS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn lag_gauge(topic: &str, partition: u32, follower: u64) -> metrics::Gauge {
    metrics::gauge!(
        "rill_follower_lag_records",
        "topic" => topic.to_string(),
        "partition" => partition.to_string(),
        "follower" => follower.to_string()
    )
}

fn lso_lag_gauge(topic: &str, partition: u32) -> metrics::Gauge {
    metrics::gauge!(
        "rill_partition_lso_lag_records",
        "topic" => topic.to_string(),
        "partition" => partition.to_string()
    )
}

fn group_lag_gauge(group: &str, topic: &str, partition: u32) -> metrics::Gauge {
    metrics::gauge!(
        "rill_group_lag",
        "group" => group.to_string(),
        "topic" => topic.to_string(),
        "partition" => partition.to_string()
    )
}

/// The gauges that are computed from the state (Raft, metadata, every partition this
/// broker leads) rather than updated where things happen: refreshed when `/metrics` is
/// scraped, so an idle broker spends nothing on them between scrapes.
struct Gauges {
    metadata: Arc<MetadataNode>,
    replicas: Arc<ReplicaManager>,
    // Lag series of partitions this broker no longer leads are set to 0, not left stale.
    lag_series: HashSet<(String, u32, u64)>,
    group_lag_series: HashSet<(String, String, u32)>,
    lso_lag_series: HashSet<(String, u32)>,
}

impl Gauges {
    fn new(metadata: Arc<MetadataNode>, replicas: Arc<ReplicaManager>) -> Self {
        Self {
            metadata,
            replicas,
            lag_series: HashSet::new(),
            group_lag_series: HashSet::new(),
            lso_lag_series: HashSet::new(),
        }
    }

    fn refresh(&mut self) {
        let (metadata, replicas) = (&self.metadata, &self.replicas);
        let info = metadata.controller_info();
        let state = metadata.state();
        metrics::gauge!("rill_raft_term").set(info.term as f64);
        metrics::gauge!("rill_raft_leader_id").set(info.leader_id.map_or(-1.0, |id| id as f64));
        metrics::gauge!("rill_raft_is_leader").set(if info.is_leader { 1.0 } else { 0.0 });
        metrics::gauge!("rill_raft_last_log_index").set(info.last_log_index as f64);
        metrics::gauge!("rill_raft_commit_index").set(info.committed_index as f64);
        metrics::gauge!("rill_raft_applied_index").set(info.last_applied as f64);
        metrics::gauge!("rill_brokers_alive").set(state.alive_brokers().len() as f64);
        metrics::gauge!("rill_brokers_fenced")
            .set((state.brokers.len() - state.alive_brokers().len()) as f64);
        metrics::gauge!("rill_topics").set(state.topics.len() as f64);
        metrics::gauge!("rill_node_ready").set(if metadata.is_ready() { 1.0 } else { 0.0 });
        let partitions = || state.topics.values().flat_map(|t| &t.partitions);
        let offline = partitions().filter(|p| p.leader.is_none()).count();
        metrics::gauge!("rill_offline_partitions").set(offline as f64);
        // Offline with no replica known to hold every committed record: only an
        // operator's unclean election brings these back.
        let no_eligible = partitions()
            .filter(|p| p.leader.is_none() && p.isr.is_empty() && p.elr.is_empty())
            .count();
        metrics::gauge!("rill_offline_partitions_without_eligible_replica").set(no_eligible as f64);
        let eligible: usize = partitions().map(|p| p.elr.len()).sum();
        metrics::gauge!("rill_eligible_leader_replicas").set(eligible as f64);

        let stats = replicas.replication_stats();
        metrics::gauge!("rill_leader_partitions").set(stats.leader_partitions as f64);
        metrics::gauge!("rill_under_replicated_partitions")
            .set(stats.under_replicated_partitions as f64);
        metrics::counter!("rill_leader_elections_won_total").absolute(stats.leaderships_gained);
        metrics::counter!("rill_isr_shrinks_total").absolute(stats.isr_shrinks);
        metrics::counter!("rill_isr_expands_total").absolute(stats.isr_expands);
        let mut seen = HashSet::new();
        for (topic, partition, follower, lag) in stats.follower_lag {
            lag_gauge(&topic, partition, follower).set(lag as f64);
            seen.insert((topic, partition, follower));
        }
        for (topic, partition, follower) in self.lag_series.difference(&seen) {
            lag_gauge(topic, *partition, *follower).set(0.0);
        }
        self.lag_series = seen;
        metrics::gauge!("rill_open_transactions").set(stats.open_transactions as f64);
        let mut lso_seen = HashSet::new();
        for (topic, partition, lag) in stats.lso_lag {
            lso_lag_gauge(&topic, partition).set(lag as f64);
            lso_seen.insert((topic, partition));
        }
        for (topic, partition) in self.lso_lag_series.difference(&lso_seen) {
            lso_lag_gauge(topic, *partition).set(0.0);
        }
        self.lso_lag_series = lso_seen;
        // Committed-offset lag, exported by each partition's leader (the one that knows
        // its high watermark), for groups of both protocols.
        let mut group_seen = HashSet::new();
        for (group, topics) in &state.offsets {
            for (topic, partitions) in topics {
                for (partition, committed) in partitions {
                    let Some(p) = replicas
                        .partition(topic, *partition)
                        .filter(|p| p.is_leader())
                    else {
                        continue;
                    };
                    let lag = p.high_watermark().saturating_sub(committed.offset);
                    group_lag_gauge(group, topic, *partition).set(lag as f64);
                    group_seen.insert((group.clone(), topic.clone(), *partition));
                }
            }
        }
        for (group, topic, partition) in self.group_lag_series.difference(&group_seen) {
            group_lag_gauge(group, topic, *partition).set(0.0);
        }
        self.group_lag_series = group_seen;
    }
}
