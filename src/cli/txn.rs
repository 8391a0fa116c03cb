//! `rill txn list | describe ID`: the transaction coordinator's view of transactional
//! ids (state, producer id and epoch, partitions of the open transaction).

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
    }
}
