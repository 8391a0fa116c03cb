//! `rill user create NAME [--mechanism M]... | delete NAME | list`: SASL/SCRAM users.
//! The password is read from stdin (its first line), salted and hashed here; it is
//! never a flag (shell history, `ps`) and never sent.

use std::io::BufRead;

use anyhow::{bail, Context};
use rill_common::scram::ScramMechanism;

use super::ClientArgs;

#[derive(clap::Args)]
pub struct UserArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(clap::Subcommand)]
enum UserCommand {
    /// Creates a user, or replaces its password, with the password on stdin (first line).
    Create {
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512; both unless given.
        #[arg(long = "mechanism", value_parser = parse_mechanism)]
        mechanisms: Vec<ScramMechanism>,
    },
    /// Deletes a user (RESOURCE_NOT_FOUND if there is none).
    Delete { name: String },
    /// Users and their mechanisms (never a secret).
    List,
}

fn parse_mechanism(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(name).ok_or_else(|| {
        format!("UNSUPPORTED_SASL_MECHANISM: {name} (SCRAM-SHA-256 or SCRAM-SHA-512)")
    })
}

/// The password: stdin's first line without its line end.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("INVALID_REQUEST: no password on stdin");
    }
    Ok(password)
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let out = &args.client;
    let admin = out.admin()?;
    match args.command {
        UserCommand::Create { name, mechanisms } => {
            let mechanisms = if mechanisms.is_empty() {
                ScramMechanism::ALL.to_vec()
            } else {
                mechanisms
            };
            let password = read_password()?;
            admin.create_user(&name, &password, &mechanisms).await?;
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            let value = serde_json::json!({ "name": name, "mechanisms": names });
            out.print(&value, || format!("user {name}: {}", names.join(", ")))
        }
        UserCommand::Delete { name } => {
            admin.delete_user(&name).await?;
            out.print(&serde_json::json!({ "deleted": name }), || {
                format!("user {name} deleted")
            })
        }
        UserCommand::List => {
            let users = admin.list_users().await?;
            let value = serde_json::json!({ "users": users });
            out.print(&value, || {
                users
                    .iter()
                    .map(|u| {
                        let mechanisms: Vec<String> = u
                            .mechanisms
                            .iter()
                            .map(|m| format!("{} ({} iterations)", m.mechanism, m.iterations))
                            .collect();
                        format!("{}\t{}", u.name, mechanisms.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}
