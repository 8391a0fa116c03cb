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
                        "Broker {}\t{}\t{}\tepoch {}\tstore {}{}",
                        b.id,
                        b.addr,
                        b.state,
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
        ClusterCommand::ElectLeaders { topic, .. } => {
            let elected = admin.elect_leaders(topic.as_deref()).await?;
            let result = serde_json::json!({ "partitions_elected": elected });
            args.client.print(&result, || {
                format!("{elected} partition(s) got their preferred leader")
            })
        }
    }
}
