use super::ClientArgs;

#[derive(clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(clap::Subcommand)]
enum ClusterCommand {
    /// The cluster id, the controller quorum and every broker.
    Describe,
    /// Hand partitions back to their preferred (first) replica where it is in the ISR;
    /// with --unclean, bring one offline partition back with a replica that may lack
    /// committed records.
    ElectLeaders {
        /// Only this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
        /// Elect an alive replica of an offline partition even though it may lack
        /// committed records: those records are lost. Needs --topic and --partition.
        #[arg(long, requires_all = ["topic", "partition"])]
        unclean: bool,
        /// The partition of an unclean election.
        #[arg(long, requires = "unclean")]
        partition: Option<u32>,
    },
    /// Make a learner node (started outside --voters, caught up) a controller voter.
    AddVoter { node_id: u64 },
    /// Make a controller voter a learner again (it keeps following the metadata log).
    RemoveVoter { node_id: u64 },
    /// Propose moves that even replicas and preferred leaders over the alive brokers,
    /// moving as little as possible; --execute starts them.
    Rebalance {
        #[arg(long)]
        execute: bool,
        /// With --execute: wait up to this many seconds for the moves to finish.
        #[arg(long, value_name = "SECONDS", value_parser = super::parse_seconds, requires = "execute")]
        wait: Option<std::time::Duration>,
    },
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let admin = args.client.admin()?;
    match args.command {
        ClusterCommand::Describe => {
            let cluster = admin.describe_cluster().await?;
            args.client.print(&cluster, || {
                let c = &cluster.controller;
                let mut lines = vec![
                    format!("Cluster: {}", cluster.cluster_id),
                    format!(
                        "Controller: leader {} term {} voters {:?} learners {:?}",
                        c.leader_id.map_or("none".to_string(), |l| l.to_string()),
                        c.term,
                        c.voters,
                        c.learners
                    ),
                ];
                lines.extend(cluster.brokers.iter().map(|b| {
                    format!(
                        "Broker {}\t{}\t{}{}\tepoch {}\tstore {}{}",
                        b.id,
                        b.addr,
                        b.state,
                        if b.draining { " (draining)" } else { "" },
                        b.epoch,
                        b.store_id,
                        if b.clean_shutdown {
                            ""
                        } else {
                            " (unclean shutdown)"
                        }
                    )
                }));
                lines.join("\n")
            })
        }
        ClusterCommand::ElectLeaders {
            topic: Some(topic),
            unclean: true,
            partition: Some(partition),
        } => {
            let (leader, leader_epoch) = admin.elect_unclean_leader(&topic, partition).await?;
            let warning = format!(
                "{topic}-{partition} is led by broker {leader} (epoch {leader_epoch}) after an \
                 unclean election: committed records it lacked are lost, and replicas drop \
                 what it does not have"
            );
            let result = serde_json::json!({ "partitions_elected": 1, "unclean": true,
                "leader": leader, "leader_epoch": leader_epoch, "warning": warning });
            args.client.print(&result, || warning.clone())
        }
        ClusterCommand::AddVoter { node_id } | ClusterCommand::RemoveVoter { node_id } => {
            let remove = matches!(args.command, ClusterCommand::RemoveVoter { .. });
            let controller = admin.change_voters(node_id, remove).await?;
            args.client.print(&controller, || {
                format!(
                    "Controller voters {:?}, learners {:?}",
                    controller.voters, controller.learners
                )
            })
        }
        ClusterCommand::Rebalance { execute, wait } => {
            let moves = admin.rebalance(execute).await?;
            super::reassign::report_planned(&args.client, &moves, execute)?;
            if let Some(timeout) = wait {
                let started = super::reassign::started(&moves.results);
                super::reassign::wait_for(&admin, &started, timeout).await?;
            }
            Ok(())
        }
        ClusterCommand::ElectLeaders { topic, .. } => {
            let elected = admin.elect_leaders(topic.as_deref()).await?;
            let result = serde_json::json!({ "partitions_elected": elected });
            args.client.print(&result, || {
                format!("{elected} partition(s) got their preferred leader")
            })
        }
    }
}
