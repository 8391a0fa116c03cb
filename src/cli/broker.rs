use super::ClientArgs;

#[derive(clap::Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: BrokerCommand,
}

#[derive(clap::Subcommand)]
enum BrokerCommand {
    /// Move every replica off a broker (no new one is placed on it); once the moves are
    /// done it can be stopped with nothing under-replicated. --cancel makes it
    /// placeable again.
    Decommission {
        broker_id: u64,
        #[arg(long)]
        cancel: bool,
        /// Wait up to this many seconds for the moves to finish.
        #[arg(long, value_name = "SECONDS", value_parser = super::parse_seconds, conflicts_with = "cancel")]
        wait: Option<std::time::Duration>,
    },
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let admin = args.client.admin()?;
    match args.command {
        BrokerCommand::Decommission {
            broker_id,
            cancel,
            wait,
        } => {
            let moves = admin.decommission_broker(broker_id, cancel).await?;
            if cancel {
                return args.client.print(&moves, || {
                    format!("Broker {broker_id} takes new replicas again.")
                });
            }
            super::reassign::report_planned(&args.client, &moves, true)?;
            if let Some(timeout) = wait {
                let started = super::reassign::started(&moves.results);
                super::reassign::wait_for(&admin, &started, timeout).await?;
            }
            Ok(())
        }
    }
}
