use rill_client::NewTopic;
use serde_json::json;

use super::{parse_key_values, ClientArgs};

#[derive(clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(clap::Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long)]
        partitions: u32,
        #[arg(long)]
        replication_factor: u32,
        /// A topic config override, KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topic names.
    List,
    /// Show a topic's configs and partitions.
    Describe { name: String },
    /// Delete a topic.
    Delete { name: String },
    /// Grow a topic to a total number of partitions.
    AddPartitions {
        name: String,
        #[arg(long)]
        total: u32,
    },
    /// Move replicas (kafka-reassign-partitions): --plan FILE starts the moves it lists
    /// (JSON {"version":1,"partitions":[{"topic","partition","replicas"}]}), with
    /// --cancel goes back; without --plan, shows the moves in progress.
    Reassign {
        name: String,
        #[arg(long, value_name = "FILE", conflicts_with = "status")]
        plan: Option<std::path::PathBuf>,
        /// Cancel the plan's reassignments in progress (replicas go back).
        #[arg(long, requires = "plan")]
        cancel: bool,
        /// Show the moves in progress (the default without --plan).
        #[arg(long)]
        status: bool,
        /// Wait up to this many seconds for the moves to finish.
        #[arg(long, value_name = "SECONDS", value_parser = super::parse_seconds, requires = "plan")]
        wait: Option<std::time::Duration>,
    },
    /// Set config overrides; an empty value (KEY=) removes one.
    AlterConfig {
        name: String,
        #[arg(long = "config", value_name = "KEY=VALUE", required = true)]
        configs: Vec<String>,
    },
}

pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let out = &args.client;
    let admin = out.admin()?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let configs = parse_key_values(&configs)?;
            admin
                .create_topic(NewTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                    configs,
                })
                .await?;
            out.print(&json!({"name": name, "created": true}), || {
                format!("Created topic {name}.")
            })
        }
        TopicCommand::List => {
            let names = admin.list_topics().await?;
            out.print(&json!({ "topics": names }), || names.join("\n"))
        }
        TopicCommand::Describe { name } => {
            let topic = admin.describe_topic(&name).await?;
            out.print(&topic, || {
                let configs: Vec<String> = topic.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let mut lines = vec![format!(
                    "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                    topic.name,
                    topic.topic_id,
                    topic.partitions.len(),
                    topic.partitions.first().map_or(0, |p| p.replicas.len().saturating_sub(p.removing_replicas.len())),
                    configs.join(",")
                )];
                for p in &topic.partitions {
                    let mut line = format!(
                        "\tPartition: {}\tLeader: {}\tLeaderEpoch: {}\tReplicas: {}\tIsr: {}\tElr: {}\tHW: {}\tLSO: {}\tLEO: {}\tLogStart: {}",
                        p.partition,
                        p.leader.map_or("none".to_string(), |l| l.to_string()),
                        p.leader_epoch,
                        join(&p.replicas),
                        join(&p.isr),
                        join(&p.eligible_leader_replicas),
                        p.high_watermark,
                        p.last_stable_offset,
                        p.log_end_offset,
                        p.log_start_offset
                    );
                    if !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty() {
                        line.push_str(&format!(
                            "\tAdding: {}\tRemoving: {}",
                            join(&p.adding_replicas),
                            join(&p.removing_replicas)
                        ));
                    }
                    if let Some(why) = &p.offline_reason {
                        line.push_str(&format!("\tOffline: {why}"));
                    }
                    lines.push(line);
                }
                lines.join("\n")
            })
        }
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name).await?;
            out.print(&json!({"name": name, "deleted": true}), || {
                format!("Deleted topic {name}.")
            })
        }
        TopicCommand::AddPartitions { name, total } => {
            admin.create_partitions(&name, total).await?;
            out.print(&json!({"name": name, "partitions": total}), || {
                format!("Topic {name} now has {total} partitions.")
            })
        }
        TopicCommand::Reassign {
            name,
            plan,
            cancel,
            wait,
            ..
        } => super::reassign::topic_reassign(out, &name, plan.as_deref(), cancel, wait).await,
        TopicCommand::AlterConfig { name, configs } => {
            let configs = parse_key_values(&configs)?;
            admin.alter_configs(&name, configs.clone()).await?;
            out.print(&json!({"name": name, "configs": configs}), || {
                format!("Updated configs of topic {name}.")
            })
        }
    }
}

fn join(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}
