//! `rill acl create|delete --principal User:NAME (--topic T | --group G |
//! --transactional-id X | --cluster) [--pattern literal|prefixed] --operation OP [--deny]`
//! and `rill acl list`: Kafka's ACL model, enforced by nodes with `authorizer.enable`.

use anyhow::anyhow;
use rill_common::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};

use super::ClientArgs;

#[derive(clap::Args)]
pub struct AclArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(clap::Subcommand)]
enum AclCommand {
    /// Adds an ACL.
    Create(BindingArgs),
    /// Removes the ACL equal to this one.
    Delete(BindingArgs),
    /// Every ACL.
    List,
}

#[derive(clap::Args)]
struct BindingArgs {
    /// `User:NAME`, or `User:*` for everyone.
    #[arg(long)]
    principal: String,
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    group: Option<String>,
    #[arg(long)]
    transactional_id: Option<String>,
    #[arg(long)]
    cluster: bool,
    /// `literal` (the name, or `*` for all) or `prefixed` (names starting with it).
    #[arg(long, default_value = "literal", value_parser = parse_pattern)]
    pattern: PatternType,
    /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS,
    /// CLUSTER_ACTION, IDEMPOTENT_WRITE or ALL.
    #[arg(long, value_parser = parse_operation)]
    operation: Operation,
    /// A DENY (it beats every ALLOW) instead of an ALLOW.
    #[arg(long)]
    deny: bool,
}

fn parse_pattern(s: &str) -> Result<PatternType, String> {
    PatternType::from_name(s)
        .ok_or_else(|| format!("INVALID_REQUEST: {s:?} is not literal or prefixed"))
}

fn parse_operation(s: &str) -> Result<Operation, String> {
    Operation::from_name(s).ok_or_else(|| format!("INVALID_REQUEST: unknown operation {s:?}"))
}

impl BindingArgs {
    fn binding(&self) -> anyhow::Result<AclBinding> {
        let (resource_type, resource_name) =
            match (&self.topic, &self.group, &self.transactional_id) {
                (Some(t), _, _) => (ResourceType::Topic, t.clone()),
                (_, Some(g), _) => (ResourceType::Group, g.clone()),
                (_, _, Some(x)) => (ResourceType::TransactionalId, x.clone()),
                _ if self.cluster => (
                    ResourceType::Cluster,
                    ResourceType::CLUSTER_NAME.to_string(),
                ),
                _ => return Err(anyhow!("INVALID_REQUEST: name a resource")),
            };
        Ok(AclBinding {
            principal: self.principal.clone(),
            resource_type,
            resource_name,
            pattern_type: self.pattern,
            operation: self.operation,
            permission: if self.deny {
                Permission::Deny
            } else {
                Permission::Allow
            },
        })
    }
}

fn json(acl: &AclBinding) -> serde_json::Value {
    serde_json::json!({
        "principal": acl.principal,
        "resource_type": acl.resource_type.name(),
        "resource_name": acl.resource_name,
        "pattern_type": acl.pattern_type.name(),
        "operation": acl.operation.name(),
        "permission": acl.permission.name(),
    })
}

fn human(acl: &AclBinding) -> String {
    format!(
        "{}\t{} {}\t{}:{}\t{}",
        acl.principal,
        acl.permission.name(),
        acl.operation.name(),
        acl.resource_type.name(),
        acl.resource_name,
        acl.pattern_type.name()
    )
}

pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    let out = &args.client;
    let admin = out.admin()?;
    match &args.command {
        AclCommand::Create(b) => {
            let acl = b.binding()?;
            admin.create_acls(std::slice::from_ref(&acl)).await?;
            out.print(&json(&acl), || format!("created: {}", human(&acl)))
        }
        AclCommand::Delete(b) => {
            let acl = b.binding()?;
            let deleted = admin.delete_acls(std::slice::from_ref(&acl)).await?;
            out.print(&serde_json::json!({ "deleted": deleted }), || {
                format!("deleted {deleted}")
            })
        }
        AclCommand::List => {
            let acls = admin.list_acls().await?;
            let value = serde_json::json!({ "acls": acls.iter().map(json).collect::<Vec<_>>() });
            out.print(&value, || {
                acls.iter().map(human).collect::<Vec<_>>().join("\n")
            })
        }
    }
}
