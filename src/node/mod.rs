//! `rill node`: assemble one node (metadata replica, gRPC services, HTTP endpoints) and
//! run it until SIGINT or SIGTERM, then shut down cleanly.

mod admin_acls;
mod admin_groups;
mod admin_reassign;
mod admin_service;
mod admin_users;
pub mod allocator;
mod broker_tasks;
pub mod config;
mod http;
mod producer_ids;
mod storage_watchdog;
mod tls;
mod txn_backends;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rill_broker::grpc::{BrokerServiceImpl, ProducerIdSource};
use rill_broker::log::{LogStorage, SledStorage};
use rill_broker::{FlushPolicy, ReplicaManager};
use rill_common::listeners::Listener;
use rill_coordinator::service::{
    GroupCoordinator, GroupServiceImpl, TransactionServiceImpl, TxnCoordinator,
};
use rill_coordinator::transaction::TxnConfig;
use rill_coordinator::GroupConfig;
use rill_metadata::access::Gate;
use rill_metadata::grpc::{
    AuthServiceImpl, Authentication, ControllerServiceImpl, RaftServiceImpl,
};
use rill_metadata::AdvertisedListeners;
use rill_metadata::{MetadataNode, MetadataNodeConfig, RaftTimings, StoreInfo};
use rill_proto::v1::admin_service_server::AdminServiceServer;
use rill_proto::v1::auth_service_server::AuthServiceServer;
use rill_proto::v1::broker_service_server::BrokerServiceServer;
use rill_proto::v1::controller_service_server::ControllerServiceServer;
use rill_proto::v1::group_service_server::GroupServiceServer;
use rill_proto::v1::raft_service_server::RaftServiceServer;
use rill_proto::v1::transaction_service_server::TransactionServiceServer;
use rill_proto::ListenerPorts;
use rill_proto::NodeAuth;
use rill_proto::MAX_MESSAGE_BYTES;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tracing::{info, info_span, warn, Instrument};

pub use config::{NodeArgs, NodeConfig};

pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let span = info_span!("node", node_id = config.node_id);
    if run_node(config).instrument(span).await? {
        return Err(storage_watchdog::restart_process());
    }
    Ok(())
}

/// Runs the node until a signal stops it (`false`) or it must restart to reopen its
/// stores after a storage failure (`true`).
async fn run_node(config: NodeConfig) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let cancel = CancellationToken::new();
    let storage = SledStorage::open_with_cache(
        &config.data_dir.join("partitions"),
        config.log_cache_capacity_bytes,
    )
    .context("opening the partition store")?;
    let identity = storage.identity();
    info!(store_id = %identity.store_id, clean_shutdown = identity.clean_shutdown, "opened the partition store");
    let flush = match config.log_flush_mode {
        config::FlushMode::Group => FlushPolicy::Group,
        config::FlushMode::Interval => FlushPolicy::Interval(config.log_flush_interval),
    };
    if !config.node_auth().is_enabled() {
        warn!(
            "no cluster.secret.file: anyone who reaches this node's gRPC port can call its \
             internal Raft and controller services (set cluster.secret.file or TLS)"
        );
    }
    if config.tls.is_none()
        && config
            .kafka
            .sasl_mechanisms
            .contains(&rill_kafka::SaslMechanism::Plain)
    {
        warn!("sasl.enabled.mechanisms has PLAIN: without TLS its passwords cross the network in the clear");
    }
    let metadata = MetadataNode::start(MetadataNodeConfig {
        node_id: config.node_id,
        advertise: config.advertise.clone(),
        voters: config.voters.clone(),
        data_dir: config.data_dir.join("metadata"),
        cache_capacity_bytes: config.metadata_cache_capacity_bytes,
        raft: RaftTimings::default(),
        broker_session_timeout: config.broker_session_timeout,
        broker_heartbeat_interval: config.broker_heartbeat_interval,
        request_timeout: Duration::from_secs(10),
        leader_rebalance_interval: config.leader_rebalance_interval,
        store: StoreInfo {
            store_id: identity.store_id,
            clean_shutdown: identity.clean_shutdown,
            acks_before_fsync: flush != FlushPolicy::Group,
        },
        listeners: AdvertisedListeners {
            kafka: advertised(&config.kafka_listeners),
            grpc: advertised(&config.grpc_listeners),
        },
        node_auth: config.node_auth(),
        transport: match &config.tls {
            Some(files) => rill_proto::Transport::tls(files),
            None => rill_proto::Transport::Plain,
        },
    })
    .await
    .context("starting the metadata replica")?;
    let storage = Arc::new(storage);
    // Partitions open once this incarnation registered (broker_tasks): the metadata
    // replayed from disk may name this broker leader at an epoch its previous
    // incarnation led, and writes accepted under it could differ from what the
    // followers already hold at the same epoch.
    let replicas = Arc::new(ReplicaManager::new(config.node_id, storage.clone(), flush));

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding gRPC listener {}", config.listen))?;
    let groups = Arc::new(GroupCoordinator::new(
        metadata.clone(),
        GroupConfig {
            min_session_timeout: config.group_min_session_timeout,
            max_session_timeout: config.group_max_session_timeout,
            initial_rebalance_delay: config.group_initial_rebalance_delay,
        },
    ));
    // One allocator for both protocols' idempotent producers.
    let producer_ids: Arc<dyn ProducerIdSource> =
        Arc::new(producer_ids::ProducerIds::new(metadata.clone()));
    let transactions = Arc::new(TxnCoordinator::new(
        metadata.clone(),
        groups.clone(),
        Arc::new(txn_backends::NodeTxnBackends {
            metadata: metadata.clone(),
            replicas: replicas.clone(),
            producer_ids: producer_ids.clone(),
            channels: metadata.channels().clone(),
        }),
        TxnConfig {
            max_timeout: config.transaction_max_timeout,
        },
    ));
    replicas.set_txn_verifier(Arc::new(txn_backends::NodeTxnVerifier {
        local: txn_backends::LocalTxnVerifier(transactions.clone()),
        metadata: metadata.clone(),
        channels: metadata.channels().clone(),
    }));
    let kafka_sockets = bind_all(&config.kafka_listeners, "Kafka").await?;
    let grpc_sockets = bind_all(&config.grpc_listeners, "gRPC").await?;
    let mut client_ports = Vec::new();
    for (name, socket) in &grpc_sockets {
        client_ports.push((socket.local_addr()?.port(), name.clone()));
    }
    let mut grpc_listeners = vec![listener];
    grpc_listeners.extend(grpc_sockets.into_iter().map(|(_, socket)| socket));
    let grpc = tokio::spawn(serve_grpc(
        GrpcBackends {
            metadata: metadata.clone(),
            replicas: replicas.clone(),
            groups: groups.clone(),
            transactions: transactions.clone(),
            producer_ids: producer_ids.clone(),
            client_listeners: Arc::new(ListenerPorts::new(client_ports)),
            node_auth: config.node_auth(),
            tls: config.tls.as_ref().and_then(|t| t.server_config()),
            access: config.access.clone(),
            scram_mechanisms: config
                .kafka
                .sasl_mechanisms
                .iter()
                .filter_map(|m| match m {
                    rill_kafka::SaslMechanism::Scram(m) => Some(*m),
                    rill_kafka::SaslMechanism::Plain => None,
                })
                .collect(),
            // With TLS on, a gRPC client shows a certificate or a session token. Without
            // TLS it may be anonymous, and the authorizer decides what that may do.
            authentication_required: config.tls.is_some(),
        },
        grpc_listeners,
        cancel.clone(),
    ));
    let kafka = Arc::new(rill_kafka::Backends {
        node_id: config.node_id,
        replicas: replicas.clone(),
        metadata: metadata.clone(),
        producer_ids,
        groups: groups.clone(),
        transactions: transactions.clone(),
        access: config.access.clone(),
        settings: rill_kafka::KafkaSettings {
            tls: match &config.tls {
                Some(files) => Some(tls::server_config(
                    files,
                    tls::ClientCertificates::Optional,
                    &[],
                )?),
                None => None,
            },
            ..config.kafka.clone()
        },
    });
    let metrics = match &config.metrics_listen {
        Some(addr) => Some(tokio::spawn(
            http::serve(
                addr.clone(),
                match &config.tls {
                    Some(files) => Some(tls::server_config(
                        files,
                        tls::ClientCertificates::NotAsked,
                        &[b"http/1.1"],
                    )?),
                    None => None,
                },
                metadata.clone(),
                replicas.clone(),
                cancel.clone(),
            )
            .await?,
        )),
        None => None,
    };
    let mut tasks = metadata.spawn_tasks(cancel.clone());
    tasks.push(tokio::spawn(groups.run(cancel.clone())));
    tasks.push(tokio::spawn(transactions.run(cancel.clone())));
    for (name, socket) in kafka_sockets {
        tasks.push(tokio::spawn(rill_kafka::serve(
            name,
            socket,
            kafka.clone(),
            cancel.clone(),
        )));
    }
    tasks.extend(broker_tasks::spawn(
        &config,
        metadata.clone(),
        replicas.clone(),
        cancel.clone(),
    ));
    let kafka_listeners: Vec<String> = config
        .kafka_listeners
        .iter()
        .map(|l| format!("{}://{} ({})", l.name, l.listen, l.advertised))
        .collect();
    info!(listen = %config.listen, advertise = %config.advertise, kafka = ?kafka_listeners, voter = metadata.is_voter(), "node started");

    let restart = tokio::select! {
        _ = shutdown_signal() => false,
        recovered = storage_watchdog::run(
            replicas.clone(),
            metadata.clone(),
            config.data_dir.clone(),
            cancel.clone(),
        ) => recovered,
    };
    info!("shutting down");
    cancel.cancel();
    for task in tasks {
        let _ = task.await;
    }
    // Whatever the flush policy, what was written is on disk before the process exits.
    replicas.checkpoint_partitions();
    if replicas.storage_health().is_failing() {
        // Reported when it failed; the next start checks what the store holds.
        info!("the partition store failed: no clean-shutdown mark");
    } else {
        match replicas.flush().await {
            Ok(()) => {
                if let Err(e) = storage.mark_clean_shutdown() {
                    tracing::error!("cannot record the clean shutdown of the partition store: {e}");
                }
            }
            Err(e) => tracing::error!("final flush of the partition store failed: {e}"),
        }
    }
    metadata.shutdown().await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    grpc.await.context("gRPC server task")??;
    info!("stopped");
    Ok(restart)
}

/// Binds each named listener, failing the start if one cannot be bound.
async fn bind_all(
    listeners: &[Listener],
    protocol: &str,
) -> anyhow::Result<Vec<(String, tokio::net::TcpListener)>> {
    let mut sockets = Vec::new();
    for l in listeners {
        let socket = tokio::net::TcpListener::bind(&l.listen)
            .await
            .with_context(|| format!("binding {protocol} listener {} on {}", l.name, l.listen))?;
        sockets.push((l.name.clone(), socket));
    }
    Ok(sockets)
}

fn advertised(listeners: &[Listener]) -> BTreeMap<String, String> {
    listeners
        .iter()
        .map(|l| (l.name.clone(), l.advertised.clone()))
        .collect()
}

/// What the gRPC services of a node call.
struct GrpcBackends {
    metadata: Arc<MetadataNode>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    transactions: Arc<TxnCoordinator>,
    producer_ids: Arc<dyn ProducerIdSource>,
    /// The extra client listeners, by local port.
    client_listeners: Arc<ListenerPorts>,
    /// Who may call the internal services (the cluster secret, node certificates).
    node_auth: NodeAuth,
    /// TLS on every gRPC listener (a certificate a caller presents must be of the
    /// cluster's CA).
    tls: Option<tonic::transport::ServerTlsConfig>,
    /// `authorizer.enable`, `super.users`.
    access: rill_metadata::access::AccessControl,
    /// The SCRAM mechanisms of `sasl.enabled.mechanisms`: AuthService offers them.
    scram_mechanisms: Vec<rill_common::scram::ScramMechanism>,
    /// TLS is on: an anonymous client call is refused.
    authentication_required: bool,
}

/// Serves every gRPC service on the main listener and the extra client listeners.
async fn serve_grpc(
    backends: GrpcBackends,
    listeners: Vec<tokio::net::TcpListener>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let GrpcBackends {
        metadata,
        replicas,
        groups,
        transactions,
        producer_ids,
        client_listeners,
        node_auth,
        tls,
        access,
        scram_mechanisms,
        authentication_required,
    } = backends;
    let gate = Gate::new(access, metadata.watch());
    let authentication =
        Authentication::new(metadata.watch(), node_auth.clone(), authentication_required);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AdminServiceServer<admin_service::AdminServiceImpl>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(rill_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls).context("the gRPC TLS settings")?;
    }
    server
        .tcp_nodelay(true)
        .initial_stream_window_size(rill_proto::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(rill_proto::CONNECTION_WINDOW_BYTES)
        .add_service(InterceptedService::new(
            RaftServiceServer::new(RaftServiceImpl::new(metadata.raft().clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            node_auth.require_node(),
        ))
        .add_service(InterceptedService::new(
            ControllerServiceServer::new(ControllerServiceImpl::new(metadata.clone())),
            node_auth.require_node(),
        ))
        .add_service(InterceptedService::new(
            BrokerServiceServer::new(BrokerServiceImpl::new(
                replicas.clone(),
                producer_ids,
                Arc::new(txn_backends::LocalTxnVerifier(transactions.clone())),
                node_auth,
                gate.clone(),
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
            authentication.clone(),
        ))
        .add_service(InterceptedService::new(
            GroupServiceServer::new(GroupServiceImpl::new(
                groups,
                client_listeners.clone(),
                gate.clone(),
            )),
            authentication.clone(),
        ))
        .add_service(InterceptedService::new(
            TransactionServiceServer::new(TransactionServiceImpl::new(
                transactions,
                client_listeners.clone(),
                gate.clone(),
            )),
            authentication.clone(),
        ))
        .add_service(InterceptedService::new(
            AdminServiceServer::new(admin_service::AdminServiceImpl::new(
                metadata.clone(),
                replicas,
                client_listeners,
                gate,
            )),
            authentication,
        ))
        .add_service(AuthServiceServer::new(AuthServiceImpl::new(
            metadata.watch(),
            scram_mechanisms,
        )))
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(
            futures::stream::select_all(
                listeners
                    .into_iter()
                    .map(|l| TcpIncoming::from(l).with_nodelay(Some(true))),
            ),
            cancel.cancelled(),
        )
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, only Ctrl-C through tokio's portable handler remains.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
