//! `rill node` settings: flag > environment > config file > default. The config file is
//! Kafka's properties format (`key=value` lines, `#` comments) with Kafka-style keys.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use rill_common::listeners::{parse_listeners, Listener};

/// Flags of `rill node`; each also reads its `RILL_*` environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NodeArgs {
    /// This node's id (file key: node.id).
    #[arg(long, env = "RILL_NODE_ID")]
    pub node_id: Option<u64>,
    /// Directory for this node's data (file key: data.dir).
    #[arg(long, env = "RILL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address (file key: listen).
    #[arg(long, env = "RILL_LISTEN")]
    pub listen: Option<String>,
    /// Address other nodes and clients use to reach this node (file key: advertise).
    #[arg(long, env = "RILL_ADVERTISE")]
    pub advertise: Option<String>,
    /// The controllers: "1=HOST:PORT,2=HOST:PORT,3=HOST:PORT" (file key: voters).
    #[arg(long, env = "RILL_VOTERS")]
    pub voters: Option<String>,
    /// HTTP listen address for /metrics, /healthz, /readyz (file key: metrics.listen).
    #[arg(long, env = "RILL_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// A properties file with any of these settings.
    #[arg(long, env = "RILL_CONFIG")]
    pub config: Option<PathBuf>,
    /// broker.session.timeout.ms: a broker silent this long is fenced.
    #[arg(long, env = "RILL_BROKER_SESSION_TIMEOUT_MS")]
    pub broker_session_timeout_ms: Option<u64>,
    /// broker.heartbeat.interval.ms
    #[arg(long, env = "RILL_BROKER_HEARTBEAT_INTERVAL_MS")]
    pub broker_heartbeat_interval_ms: Option<u64>,
    /// replica.lag.time.max.ms: a follower not caught up this long leaves the ISR.
    #[arg(long, env = "RILL_REPLICA_LAG_TIME_MAX_MS")]
    pub replica_lag_time_max_ms: Option<u64>,
    /// replica.throttle.bytes: bytes per second this broker fetches, over all leaders, for
    /// the replicas a reassignment adds to it (0: unthrottled). Default 50 MiB.
    #[arg(long, env = "RILL_REPLICA_THROTTLE_BYTES")]
    pub replica_throttle_bytes: Option<u64>,
    /// group.min.session.timeout.ms
    #[arg(long, env = "RILL_GROUP_MIN_SESSION_TIMEOUT_MS")]
    pub group_min_session_timeout_ms: Option<u64>,
    /// group.max.session.timeout.ms
    #[arg(long, env = "RILL_GROUP_MAX_SESSION_TIMEOUT_MS")]
    pub group_max_session_timeout_ms: Option<u64>,
    /// group.initial.rebalance.delay.ms: how long an empty group's first rebalance waits
    /// for more members (renewed by each one, up to the rebalance timeout).
    #[arg(long, env = "RILL_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// transaction.max.timeout.ms: the longest transaction.timeout.ms a producer may ask.
    #[arg(long, env = "RILL_TRANSACTION_MAX_TIMEOUT_MS")]
    pub transaction_max_timeout_ms: Option<u64>,
    /// cluster.secret.file: a file holding the secret the nodes of this cluster share
    /// (at least 16 visible ASCII characters). Node-to-node calls carry it and the
    /// internal services (Raft, controller, follower fetch, transaction markers) refuse
    /// calls without it. Without one those services accept anyone (a warning says so).
    #[arg(long, env = "RILL_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// sasl.enabled.mechanisms: SCRAM-SHA-256, SCRAM-SHA-512, PLAIN (comma-separated).
    /// When set, a Kafka client must authenticate as a user (`rill user create`) with one
    /// of them before anything but ApiVersions is served.
    #[arg(long, env = "RILL_SASL_ENABLED_MECHANISMS")]
    pub sasl_enabled_mechanisms: Option<String>,
    /// authorizer.enable: Kafka and gRPC requests are checked against the ACLs (`rill
    /// acl`); a principal may do only what an ACL allows it (super users everything).
    #[arg(long, env = "RILL_AUTHORIZER_ENABLE")]
    pub authorizer_enable: Option<bool>,
    /// super.users: principals that bypass the ACLs (`User:admin;User:ops`).
    #[arg(long, env = "RILL_SUPER_USERS")]
    pub super_users: Option<String>,
    /// tls.cert.file: this node's certificate (PEM, common name `node-<id>`, the hosts it
    /// is dialled at as subject alternative names). With tls.key.file and tls.ca.file it
    /// turns TLS on for every listener and between nodes.
    #[arg(long, env = "RILL_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// tls.key.file: the private key of tls.cert.file (PEM).
    #[arg(long, env = "RILL_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// tls.ca.file: the CA that signs the certificates of the cluster's nodes and clients.
    #[arg(long, env = "RILL_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// log.flush.mode: `group` (ack after fsync) or `interval`.
    #[arg(long, env = "RILL_LOG_FLUSH_MODE")]
    pub log_flush_mode: Option<FlushMode>,
    /// log.flush.interval.ms (with log.flush.mode=interval)
    #[arg(long, env = "RILL_LOG_FLUSH_INTERVAL_MS")]
    pub log_flush_interval_ms: Option<u64>,
    /// log.cache.capacity.bytes: the partition store's page cache (sled); with
    /// metadata.cache.capacity.bytes most of what a node's memory grows with.
    #[arg(long, env = "RILL_LOG_CACHE_CAPACITY_BYTES")]
    pub log_cache_capacity_bytes: Option<u64>,
    /// metadata.cache.capacity.bytes: the metadata store's page cache (sled).
    #[arg(long, env = "RILL_METADATA_CACHE_CAPACITY_BYTES")]
    pub metadata_cache_capacity_bytes: Option<u64>,
    /// log.retention.check.interval.ms: how often retention runs.
    #[arg(long, env = "RILL_LOG_RETENTION_CHECK_INTERVAL_MS")]
    pub log_retention_check_interval_ms: Option<u64>,
    /// auto.leader.rebalance.enable: move leadership back to preferred replicas.
    #[arg(long, env = "RILL_AUTO_LEADER_REBALANCE_ENABLE")]
    pub auto_leader_rebalance_enable: Option<bool>,
    /// leader.imbalance.check.interval.seconds: how often that runs.
    #[arg(long, env = "RILL_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS")]
    pub leader_imbalance_check_interval_seconds: Option<u64>,
    /// Kafka protocol listeners: NAME://HOST:PORT[,NAME://HOST:PORT] or one HOST:PORT
    /// (file key: kafka.listeners). None: no Kafka listener.
    #[arg(long, env = "RILL_KAFKA_LISTENERS")]
    pub kafka_listeners: Option<String>,
    /// The address each Kafka listener advertises, same form (file key:
    /// kafka.advertised.listeners). Default: its bind address.
    #[arg(long, env = "RILL_KAFKA_ADVERTISED_LISTENERS")]
    pub kafka_advertised_listeners: Option<String>,
    /// Extra gRPC listeners for clients, NAME://HOST:PORT[,...] (file key: grpc.listeners):
    /// a client is told the brokers' addresses on the listener it came through.
    #[arg(long, env = "RILL_GRPC_LISTENERS")]
    pub grpc_listeners: Option<String>,
    /// The address each extra gRPC listener advertises (file key: grpc.advertised.listeners).
    #[arg(long, env = "RILL_GRPC_ADVERTISED_LISTENERS")]
    pub grpc_advertised_listeners: Option<String>,
    /// auto.create.topics.enable: a Kafka client's Metadata request creates unknown topics.
    #[arg(long, env = "RILL_AUTO_CREATE_TOPICS_ENABLE")]
    pub auto_create_topics_enable: Option<bool>,
    /// num.partitions of an auto-created topic.
    #[arg(long, env = "RILL_NUM_PARTITIONS")]
    pub num_partitions: Option<u32>,
    /// default.replication.factor of an auto-created topic (capped at the alive brokers).
    #[arg(long, env = "RILL_DEFAULT_REPLICATION_FACTOR")]
    pub default_replication_factor: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlushMode {
    Group,
    Interval,
}

impl FromStr for FlushMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "group" => Ok(Self::Group),
            "interval" => Ok(Self::Interval),
            other => bail!("log.flush.mode must be group or interval, got {other:?}"),
        }
    }
}

/// The resolved settings of one node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    pub listen: String,
    pub advertise: String,
    pub voters: BTreeMap<u64, String>,
    pub metrics_listen: Option<String>,
    pub broker_session_timeout: Duration,
    pub broker_heartbeat_interval: Duration,
    pub replica_lag_time_max: Duration,
    /// `replica.throttle.bytes`: the follower fetch rate of replicas being added.
    pub replica_throttle_bytes: u64,
    pub group_min_session_timeout: Duration,
    pub group_max_session_timeout: Duration,
    pub group_initial_rebalance_delay: Duration,
    pub transaction_max_timeout: Duration,
    /// The cluster secret node-to-node calls carry (`cluster.secret.file`).
    pub cluster_secret: Option<rill_proto::ClusterSecret>,
    /// TLS on every listener and between nodes (`tls.cert.file`, `tls.key.file`,
    /// `tls.ca.file`).
    pub tls: Option<rill_proto::tls::TlsFiles>,
    /// `authorizer.enable` and `super.users`.
    pub access: rill_metadata::access::AccessControl,
    pub log_flush_mode: FlushMode,
    pub log_flush_interval: Duration,
    /// The partition store's page cache (`log.cache.capacity.bytes`).
    pub log_cache_capacity_bytes: u64,
    /// The metadata store's page cache (`metadata.cache.capacity.bytes`).
    pub metadata_cache_capacity_bytes: u64,
    pub log_retention_check_interval: Duration,
    /// `None` when `auto.leader.rebalance.enable` is false.
    pub leader_rebalance_interval: Option<Duration>,
    pub kafka_listeners: Vec<Listener>,
    /// Extra gRPC listeners for clients (each advertises its own address); the
    /// `listen` / `advertise` pair is the one nodes use among themselves.
    pub grpc_listeners: Vec<Listener>,
    pub kafka: rill_kafka::KafkaSettings,
}

/// Parses "1=HOST:PORT,2=HOST:PORT".
pub fn parse_voters(s: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut voters = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("voter {item:?} is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("voter id in {item:?}"))?;
        if voters.insert(id, addr.trim().to_string()).is_some() {
            bail!("voter {id} listed twice");
        }
    }
    if voters.is_empty() {
        bail!("the voters list is empty");
    }
    Ok(voters)
}

fn parse_properties(text: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("line {}: expected key=value, got {line:?}", n + 1))?;
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

const KNOWN_KEYS: &[&str] = &[
    "log.cache.capacity.bytes",
    "metadata.cache.capacity.bytes",
    "cluster.secret.file",
    "sasl.enabled.mechanisms",
    "authorizer.enable",
    "super.users",
    "tls.cert.file",
    "tls.key.file",
    "tls.ca.file",
    "grpc.listeners",
    "grpc.advertised.listeners",
    "kafka.listeners",
    "kafka.advertised.listeners",
    "auto.create.topics.enable",
    "num.partitions",
    "default.replication.factor",
    "log.retention.check.interval.ms",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "node.id",
    "data.dir",
    "listen",
    "advertise",
    "voters",
    "metrics.listen",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "replica.lag.time.max.ms",
    "replica.throttle.bytes",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.initial.rebalance.delay.ms",
    "transaction.max.timeout.ms",
    "log.flush.mode",
    "log.flush.interval.ms",
];

struct Layers {
    file: HashMap<String, String>,
}

impl Layers {
    /// The flag/env value if set, else the file's, else `None`.
    fn get<T: FromStr>(&self, flag: Option<T>, key: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        if flag.is_some() {
            return Ok(flag);
        }
        match self.file.get(key) {
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e| anyhow!("config file: {key}={v:?}: {e}")),
            None => Ok(None),
        }
    }

    fn millis(&self, flag: Option<u64>, key: &str, default: u64) -> anyhow::Result<Duration> {
        Ok(Duration::from_millis(
            self.get(flag, key)?.unwrap_or(default),
        ))
    }
}

/// TLS is on with all three of `tls.ca.file`, `tls.cert.file` and `tls.key.file`, off with
/// none of them.
fn tls_files(
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> anyhow::Result<Option<rill_proto::tls::TlsFiles>> {
    match (ca, cert, key) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => {
            let files = rill_proto::tls::TlsFiles::read(&ca, Some((&cert, &key)))
                .map_err(|e| anyhow!("INVALID_CONFIG: {e}"))?;
            Ok(Some(files))
        }
        _ => bail!("INVALID_CONFIG: TLS needs all of tls.ca.file, tls.cert.file and tls.key.file"),
    }
}

impl NodeConfig {
    /// Who this node's internal services admit, and what its own calls carry.
    pub fn node_auth(&self) -> rill_proto::NodeAuth {
        rill_proto::NodeAuth::new(self.cluster_secret.clone(), self.tls.is_some())
    }
}

/// `sasl.enabled.mechanisms`: names separated by commas (empty: SASL off).
fn sasl_mechanisms(list: &str) -> anyhow::Result<Vec<rill_kafka::SaslMechanism>> {
    let mut mechanisms = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mechanism = rill_kafka::SaslMechanism::from_name(name).ok_or_else(|| {
            anyhow!(
                "INVALID_CONFIG: sasl.enabled.mechanisms: {name:?} is not SCRAM-SHA-256, \
                 SCRAM-SHA-512 or PLAIN"
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    Ok(mechanisms)
}

impl NodeConfig {
    pub fn resolve(args: NodeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                parse_properties(&text)?
            }
            None => HashMap::new(),
        };
        if let Some(unknown) = file.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            bail!("config file: unknown key {unknown:?}");
        }
        let layers = Layers { file };
        let node_id: u64 = layers.get(args.node_id, "node.id")?.ok_or_else(|| {
            anyhow!("--node-id (or RILL_NODE_ID, or node.id in the config file) is required")
        })?;
        let listen: String = layers
            .get(args.listen, "listen")?
            .unwrap_or_else(|| "127.0.0.1:19291".into());
        let advertise: String = layers
            .get(args.advertise, "advertise")?
            .unwrap_or_else(|| listen.clone());
        let voters = match layers.get::<String>(args.voters, "voters")? {
            Some(v) => parse_voters(&v)?,
            None => BTreeMap::from([(node_id, advertise.clone())]),
        };
        let default_host = advertise
            .rsplit_once(':')
            .map_or(advertise.as_str(), |(host, _)| host)
            .to_string();
        let named =
            |list: Option<String>, advertised: Option<String>| -> anyhow::Result<Vec<Listener>> {
                match list {
                    Some(list) => Ok(parse_listeners(
                        &list,
                        advertised.as_deref(),
                        &default_host,
                    )?),
                    None => Ok(Vec::new()),
                }
            };
        let kafka_listeners = named(
            layers.get(args.kafka_listeners, "kafka.listeners")?,
            layers.get(
                args.kafka_advertised_listeners,
                "kafka.advertised.listeners",
            )?,
        )?;
        let grpc_listeners = named(
            layers.get(args.grpc_listeners, "grpc.listeners")?,
            layers.get(args.grpc_advertised_listeners, "grpc.advertised.listeners")?,
        )?;
        let kafka = rill_kafka::KafkaSettings {
            auto_create_topics: layers
                .get(args.auto_create_topics_enable, "auto.create.topics.enable")?
                .unwrap_or(true),
            num_partitions: layers
                .get(args.num_partitions, "num.partitions")?
                .unwrap_or(1),
            default_replication_factor: layers
                .get(
                    args.default_replication_factor,
                    "default.replication.factor",
                )?
                .unwrap_or(3),
            sasl_mechanisms: sasl_mechanisms(
                layers
                    .get(args.sasl_enabled_mechanisms, "sasl.enabled.mechanisms")?
                    .as_deref()
                    .unwrap_or(""),
            )?,
            ..Default::default()
        };
        let data_dir = layers
            .get(args.data_dir, "data.dir")?
            .unwrap_or_else(|| PathBuf::from(format!("./rill-data/node-{node_id}")));
        let config = Self {
            node_id,
            data_dir,
            metrics_listen: layers.get(args.metrics_listen, "metrics.listen")?,
            broker_session_timeout: layers.millis(
                args.broker_session_timeout_ms,
                "broker.session.timeout.ms",
                3_000,
            )?,
            broker_heartbeat_interval: layers.millis(
                args.broker_heartbeat_interval_ms,
                "broker.heartbeat.interval.ms",
                250,
            )?,
            replica_lag_time_max: layers.millis(
                args.replica_lag_time_max_ms,
                "replica.lag.time.max.ms",
                10_000,
            )?,
            replica_throttle_bytes: layers
                .get(args.replica_throttle_bytes, "replica.throttle.bytes")?
                .unwrap_or(50 << 20),
            group_min_session_timeout: layers.millis(
                args.group_min_session_timeout_ms,
                "group.min.session.timeout.ms",
                1_000,
            )?,
            group_max_session_timeout: layers.millis(
                args.group_max_session_timeout_ms,
                "group.max.session.timeout.ms",
                300_000,
            )?,
            group_initial_rebalance_delay: layers.millis(
                args.group_initial_rebalance_delay_ms,
                "group.initial.rebalance.delay.ms",
                3_000,
            )?,
            transaction_max_timeout: layers.millis(
                args.transaction_max_timeout_ms,
                "transaction.max.timeout.ms",
                900_000,
            )?,
            cluster_secret: match layers
                .get::<PathBuf>(args.cluster_secret_file, "cluster.secret.file")?
            {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| {
                        format!("reading cluster.secret.file {}", path.display())
                    })?;
                    Some(rill_proto::ClusterSecret::new(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "INVALID_CONFIG: cluster.secret.file {}: {e}",
                            path.display()
                        )
                    })?)
                }
            },
            access: rill_metadata::access::AccessControl::new(
                layers
                    .get(args.authorizer_enable, "authorizer.enable")?
                    .unwrap_or(false),
                layers
                    .get(args.super_users, "super.users")?
                    .unwrap_or_default()
                    .split(';')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            tls: tls_files(
                layers.get(args.tls_ca_file, "tls.ca.file")?,
                layers.get(args.tls_cert_file, "tls.cert.file")?,
                layers.get(args.tls_key_file, "tls.key.file")?,
            )?,
            log_flush_mode: layers
                .get(args.log_flush_mode, "log.flush.mode")?
                .unwrap_or(FlushMode::Group),
            log_flush_interval: layers.millis(
                args.log_flush_interval_ms,
                "log.flush.interval.ms",
                1_000,
            )?,
            log_cache_capacity_bytes: layers
                .get(args.log_cache_capacity_bytes, "log.cache.capacity.bytes")?
                .unwrap_or(rill_broker::log::DEFAULT_CACHE_CAPACITY_BYTES),
            metadata_cache_capacity_bytes: layers
                .get(
                    args.metadata_cache_capacity_bytes,
                    "metadata.cache.capacity.bytes",
                )?
                .unwrap_or(rill_metadata::store::DEFAULT_CACHE_CAPACITY_BYTES),
            log_retention_check_interval: layers.millis(
                args.log_retention_check_interval_ms,
                "log.retention.check.interval.ms",
                5_000,
            )?,
            leader_rebalance_interval: {
                let enabled = layers
                    .get(
                        args.auto_leader_rebalance_enable,
                        "auto.leader.rebalance.enable",
                    )?
                    .unwrap_or(true);
                let seconds = layers
                    .get(
                        args.leader_imbalance_check_interval_seconds,
                        "leader.imbalance.check.interval.seconds",
                    )?
                    .unwrap_or(300u64);
                (enabled && seconds > 0).then(|| Duration::from_secs(seconds))
            },
            listen,
            advertise,
            voters,
            kafka_listeners,
            grpc_listeners,
            kafka,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.access.is_enabled() && !self.node_auth().is_enabled() {
            bail!(
                "INVALID_CONFIG: authorizer.enable needs cluster.secret.file or TLS: without \
                 them the nodes' own calls cannot be told from a client's"
            );
        }
        if self.broker_heartbeat_interval.is_zero()
            || self.broker_heartbeat_interval >= self.broker_session_timeout
        {
            bail!(
                "broker.heartbeat.interval.ms must be positive and below broker.session.timeout.ms"
            );
        }
        if self.group_min_session_timeout > self.group_max_session_timeout {
            bail!("group.min.session.timeout.ms exceeds group.max.session.timeout.ms");
        }
        if let Some(addr) = self.voters.get(&self.node_id) {
            if addr != &self.advertise {
                bail!(
                    "node {} is a voter at {addr} but advertises {}; they must match",
                    self.node_id,
                    self.advertise
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("node.properties");
        std::fs::write(
            &path,
            "# a node\nnode.id=2\nlisten=127.0.0.1:7000\nbroker.session.timeout.ms=5000\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = NodeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:8000".into()),
            ..Default::default()
        };
        let config = NodeConfig::resolve(args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.node_id, 2);
        assert_eq!(config.listen, "127.0.0.1:8000");
        assert_eq!(config.advertise, "127.0.0.1:8000");
        assert_eq!(config.broker_session_timeout, Duration::from_millis(5000));
        assert_eq!(config.broker_heartbeat_interval, Duration::from_millis(250));
        assert_eq!(
            config.voters,
            BTreeMap::from([(2, "127.0.0.1:8000".to_string())])
        );
    }

    #[test]
    fn every_setting_is_a_key_of_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let secret = dir.path().join("cluster.secret");
        std::fs::write(&secret, "0123456789abcdef0123").unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("node.properties");
        std::fs::write(
            &path,
            format!(
                "node.id=1\nlog.cache.capacity.bytes=1048576\nmetadata.cache.capacity.bytes=524288\n\
                 cluster.secret.file={}\nsasl.enabled.mechanisms=SCRAM-SHA-512\n\
                 authorizer.enable=true\nsuper.users=User:admin\n",
                secret.display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = NodeArgs {
            config: Some(path),
            ..Default::default()
        };
        let config = NodeConfig::resolve(args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                config.log_cache_capacity_bytes,
                config.metadata_cache_capacity_bytes
            ),
            (1 << 20, 512 << 10)
        );
        assert!(config.access.is_enabled());
        assert!(config.cluster_secret.is_some());
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(parse_voters("1=a:1,1=b:2").is_err());
        assert!(parse_voters("x=a:1").is_err());
        assert!(parse_voters("").is_err());
        assert!(NodeConfig::resolve(NodeArgs::default()).is_err());
        let bad_heartbeat = NodeArgs {
            node_id: Some(1),
            broker_heartbeat_interval_ms: Some(5000),
            ..Default::default()
        };
        assert!(NodeConfig::resolve(bad_heartbeat).is_err());
        // ACLs without TLS or a cluster secret could not tell a node from a client.
        let open_authorizer = NodeArgs {
            node_id: Some(1),
            authorizer_enable: Some(true),
            ..Default::default()
        };
        let refused = NodeConfig::resolve(open_authorizer)
            .err()
            .map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("authorizer.enable needs")),
            "{refused:?}"
        );
    }
}
