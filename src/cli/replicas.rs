//! `rill replicas TOPIC PARTITION`: every replica's log end, high watermark, leader epoch
//! and a checksum of the range all of them should agree on.

use rill_client::describe_replicas;

use super::ClientArgs;

#[derive(clap::Args)]
pub struct ReplicasArgs {
    #[command(flatten)]
    client: ClientArgs,
    topic: String,
    partition: u32,
}

pub async fn run(args: ReplicasArgs) -> anyhow::Result<()> {
    let d = describe_replicas(args.client.connect()?, &args.topic, args.partition).await?;
    args.client.print(&d, || {
        let mut lines = vec![format!(
            "Topic: {}\tPartition: {}\tLeader: {}",
            d.topic,
            d.partition,
            d.leader.map_or("none".into(), |l| l.to_string())
        )];
        for r in &d.replicas {
            lines.push(match &r.error {
                Some(e) => format!("\tBroker: {}\tunreachable: {e}", r.broker),
                None => format!(
                    "\tBroker: {}\tLEO: {}\tHW: {}\tLeaderEpoch: {}\tChecksum: {} (up to {})",
                    r.broker,
                    r.log_end_offset,
                    r.high_watermark,
                    r.leader_epoch,
                    r.checksum,
                    r.checked_up_to
                ),
            });
        }
        lines.join("\n")
    })
}
