//! `rill group list | describe G | reset-offsets G --topic T (--to-earliest|--to-latest|--to-offset N)`.

use anyhow::bail;
use rill_client::{Consumer, ConsumerConfig, OffsetReset};
use rill_common::ErrorCode;

use super::ClientArgs;

#[derive(clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(clap::Subcommand)]
enum GroupCommand {
    /// Every consumer group with its state.
    List,
    /// A group's state, generation, members with their assignments, and committed
    /// offsets with lag.
    Describe { group: String },
    /// Set a group's committed offsets for every partition of a topic (only while the
    /// group has no members).
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        #[arg(long, group = "target")]
        to_earliest: bool,
        #[arg(long, group = "target")]
        to_latest: bool,
        #[arg(long, group = "target")]
        to_offset: Option<u64>,
    },
}

pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let out = &args.client;
    let admin = out.admin()?;
    match &args.command {
        GroupCommand::List => {
            let groups = admin.list_groups().await?;
            out.print(&groups, || {
                groups
                    .iter()
                    .map(|g| format!("{}\t{}", g.group_id, g.state))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        GroupCommand::Describe { group } => {
            let d = admin.describe_group(group).await?;
            out.print(&d, || {
                let mut lines = vec![format!(
                    "Group: {}\tState: {}\tGeneration: {}\tProtocol: {}\tLeader: {}",
                    d.group_id, d.state, d.generation, d.protocol, d.leader
                )];
                for m in &d.members {
                    let assignment: Vec<String> = m
                        .assignment
                        .iter()
                        .map(|t| format!("{}{:?}", t.topic, t.partitions))
                        .collect();
                    lines.push(format!(
                        "\tMember: {}\tInstance: {}\tClient: {}\tAssignment: {}",
                        m.member_id,
                        m.instance_id.as_deref().unwrap_or("-"),
                        m.client_id,
                        assignment.join(" ")
                    ));
                }
                for o in &d.offsets {
                    lines.push(format!(
                        "\tTopic: {}\tPartition: {}\tCommitted: {}\tLogEnd: {}\tLag: {}",
                        o.topic, o.partition, o.committed, o.log_end_offset, o.lag
                    ));
                }
                lines.join("\n")
            })
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
        } => {
            let consumer = Consumer::new(out.connect()?, ConsumerConfig::default());
            let mut offsets = Vec::new();
            for tp in consumer.partitions_of(topic).await? {
                let earliest = consumer.list_offset(&tp, OffsetReset::Earliest).await?;
                let latest = consumer.list_offset(&tp, OffsetReset::Latest).await?;
                let offset = match (to_earliest, to_latest, to_offset) {
                    (true, _, _) => earliest,
                    (_, true, _) => latest,
                    // Kafka clamps a target outside the log to its nearest end.
                    (_, _, Some(n)) => (*n).clamp(earliest, latest),
                    _ => bail!(
                        "{}: give one of --to-earliest, --to-latest, --to-offset N",
                        ErrorCode::InvalidRequest
                    ),
                };
                offsets.push((tp.0, tp.1, offset));
            }
            admin.alter_group_offsets(group, &offsets).await?;
            let result: Vec<serde_json::Value> = offsets
                .iter()
                .map(|(t, p, o)| serde_json::json!({"topic": t, "partition": p, "offset": o}))
                .collect();
            out.print(&result, || {
                offsets
                    .iter()
                    .map(|(t, p, o)| format!("{t}\t{p}\t{o}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}
