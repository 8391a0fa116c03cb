//! `rill`: one binary for the node, the local dev cluster and the command-line client.

mod bench;
mod certs;
mod cli;
mod dev;
mod node;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rill",
    version,
    about = "Rill: a Kafka-style replicated commit log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node (controller voter if listed in --voters, else a learner broker).
    Node(Box<node::NodeArgs>),
    /// Run a local cluster of node processes on loopback; Ctrl-C stops them all.
    Dev(dev::DevArgs),
    /// Inspect the cluster.
    Cluster(cli::cluster::ClusterArgs),
    /// Brokers: decommission (move every replica off one).
    Broker(cli::broker::BrokerArgs),
    /// Create, inspect and change topics.
    Topic(cli::topic::TopicArgs),
    /// Produce stdin lines as records.
    Produce(cli::produce::ProduceArgs),
    /// Print records of a topic.
    Consume(cli::consume::ConsumeArgs),
    /// The exactly-once copier: input records and input offsets commit together.
    Copy(cli::copy::CopyArgs),
    /// Consumer groups: list, describe, reset offsets.
    Group(cli::group::GroupArgs),
    /// Transactions: list and describe transactional ids.
    Txn(cli::txn::TxnArgs),
    /// SASL/SCRAM users: create (password on stdin), delete, list.
    User(cli::user::UserArgs),
    /// ACLs: create, delete, list (enforced by nodes with authorizer.enable).
    Acl(cli::acl::AclArgs),
    /// A CA and TLS certificates for nodes (`node-<id>`) and clients.
    Certs(certs::CertsArgs),
    /// Every replica's offsets, epoch and a checksum of the range they should agree on.
    Replicas(cli::replicas::ReplicasArgs),
    /// Produce unique values, read everything back, print a JSON verdict.
    Verify(cli::verify::VerifyArgs),
    /// Benchmarks: progress on stderr, a JSON summary on stdout.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        // openraft logs every failed replication RPC to a down peer at ERROR (twice a
        // second); a dead peer is expected here and shows as a fenced broker instead.
        Command::Node(_) | Command::Dev(_) => "info,openraft=error,openraft::replication=off",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if matches!(cli.command, Command::Node(_)) {
        node::allocator::tune();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: UNKNOWN_SERVER_ERROR: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Node(args) => node::run(node::NodeConfig::resolve(*args)?).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Cluster(args) => cli::cluster::run(args).await,
            Command::Topic(args) => cli::topic::run(args).await,
            Command::Broker(args) => cli::broker::run(args).await,
            Command::Produce(args) => cli::produce::run(args).await,
            Command::Consume(args) => cli::consume::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Replicas(args) => cli::replicas::run(args).await,
            Command::Group(args) => cli::group::run(args).await,
            Command::Copy(args) => cli::copy::run(args).await,
            Command::Txn(args) => cli::txn::run(args).await,
            Command::User(args) => cli::user::run(args).await,
            Command::Certs(args) => certs::run(args),
            Command::Acl(args) => cli::acl::run(args).await,
            Command::Verify(args) => cli::verify::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
