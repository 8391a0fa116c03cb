//! `rill txn list | describe ID`: the transaction coordinator's view of transactional
//! ids (state, producer id and epoch, partitions of the open transaction);
//! `rill txn producers | abort`: a partition leader's producers, and the abort of a
//! hanging transaction there.

use rill_client::TransactionDescription;

use super::ClientArgs;

#[derive(clap::Args)]
pub struct TxnArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(clap::Subcommand)]
enum TxnCommand {
    /// Every transactional id with its state.
    List,
    /// One transactional id: state, producer id and epoch, timeout, the partitions and
    /// groups of its open transaction and when it began.
    Describe { transactional_id: String },
    /// The producers a partition's leader remembers, with where each one's open
    /// transaction began (to find a hanging transaction).
    Producers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: u32,
    },
    /// Aborts a hanging transaction: one open in the partition that no coordinator runs
    /// (refused with INVALID_TXN_STATE for a transaction its coordinator will end).
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: u32,
        #[arg(long)]
        producer_id: i64,
    },
}

fn human(d: &TransactionDescription) -> String {
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|p| format!("{}-{}", p.topic, p.partition))
        .collect();
    format!(
        "{}\t{}\tproducer {} epoch {}\ttimeout {} ms\tpartitions [{}]\tstarted {}",
        d.transactional_id,
        d.state,
        d.producer_id,
        d.producer_epoch,
        d.timeout_ms,
        partitions.join(", "),
        d.started_ms.map_or("-".into(), |ms| ms.to_string()),
    )
}

pub async fn run(args: TxnArgs) -> anyhow::Result<()> {
    let out = &args.client;
    let admin = out.admin()?;
    match &args.command {
        TxnCommand::List => {
            let transactions = admin.list_transactions().await?;
            let value = serde_json::json!({ "transactions": transactions });
            out.print(&value, || {
                transactions
                    .iter()
                    .map(human)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TxnCommand::Describe { transactional_id } => {
            let d = admin.describe_transaction(transactional_id).await?;
            out.print(&d, || human(&d))
        }
        TxnCommand::Producers { topic, partition } => {
            let producers = admin.describe_producers(topic, *partition).await?;
            let value = serde_json::json!({ "producers": producers });
            out.print(&value, || {
                producers
                    .iter()
                    .map(|p| {
                        format!(
                            "producer {} epoch {}\tlast sequence {}\topen transaction from {}",
                            p.producer_id,
                            p.producer_epoch,
                            p.last_sequence,
                            p.open_transaction_start
                                .map_or("-".into(), |o| o.to_string())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TxnCommand::Abort {
            topic,
            partition,
            producer_id,
        } => {
            admin
                .abort_transaction(topic, *partition, *producer_id)
                .await?;
            let value = serde_json::json!({ "aborted": true });
            out.print(&value, || {
                format!("Aborted the transaction of producer {producer_id} in {topic}-{partition}.")
            })
        }
    }
}
