//! ACLs: the controller checks bindings before they are written; a delete names the exact
//! bindings its filters match on the controller's state, so applying it is deterministic.

use rill_common::acl::{AclBinding, AclFilter, ResourceType};
use rill_common::ErrorCode;

use crate::model::{MetadataCommand, MetadataState};
use crate::MetadataError;

pub fn plan_create_acls(bindings: Vec<AclBinding>) -> Result<MetadataCommand, MetadataError> {
    if bindings.is_empty() {
        return Err(invalid("no ACL to create".into()));
    }
    for acl in &bindings {
        check(acl)?;
    }
    Ok(MetadataCommand::CreateAcls { bindings })
}

pub fn plan_delete_acls(
    state: &MetadataState,
    filters: &[AclFilter],
) -> Result<MetadataCommand, MetadataError> {
    let bindings = state
        .acls
        .iter()
        .filter(|acl| filters.iter().any(|f| f.matches(acl)))
        .cloned()
        .collect();
    Ok(MetadataCommand::DeleteAcls { bindings })
}

/// A principal is `User:NAME` (or `User:*`); a resource has a name; the cluster is
/// `kafka-cluster`, as Kafka names it.
fn check(acl: &AclBinding) -> Result<(), MetadataError> {
    let name = acl.principal.strip_prefix("User:").unwrap_or_default();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "principal {:?} is not User:NAME",
            acl.principal
        )));
    }
    if acl.resource_name.is_empty() {
        return Err(invalid("an ACL names a resource".into()));
    }
    if acl.resource_type == ResourceType::Cluster && acl.resource_name != ResourceType::CLUSTER_NAME
    {
        return Err(invalid(format!(
            "the cluster resource is named {}",
            ResourceType::CLUSTER_NAME
        )));
    }
    Ok(())
}

fn invalid(message: String) -> MetadataError {
    MetadataError::rejected(ErrorCode::InvalidRequest, message)
}

#[cfg(test)]
mod tests {
    use rill_common::acl::{Operation, PatternType, Permission};

    use super::*;

    fn acl(principal: &str, resource_type: ResourceType, name: &str) -> AclBinding {
        AclBinding {
            principal: principal.into(),
            resource_type,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn acls_are_created_once_and_deleted_by_filter() {
        let mut state = MetadataState::default();
        let a = acl("User:alice", ResourceType::Topic, "t");
        let b = acl("User:bob", ResourceType::Group, "g");
        let create = plan_create_acls(vec![a.clone(), b.clone(), a.clone()]).unwrap();
        state.apply(create, 1).unwrap();
        assert_eq!(state.acls.len(), 2, "a binding is stored once");
        let by_alice = AclFilter {
            principal: Some("User:alice".into()),
            ..Default::default()
        };
        let delete = plan_delete_acls(&state, &[by_alice]).unwrap();
        assert_eq!(state.apply(delete, 2).unwrap(), Some(1));
        assert_eq!(state.acls.iter().collect::<Vec<_>>(), vec![&b]);
    }

    #[test]
    fn bad_bindings_are_refused_with_a_code() {
        for bad in [
            acl("alice", ResourceType::Topic, "t"),
            acl("User:", ResourceType::Topic, "t"),
            acl("User:alice", ResourceType::Topic, ""),
            acl("User:alice", ResourceType::Cluster, "mine"),
        ] {
            let e = plan_create_acls(vec![bad.clone()]).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRequest, "{bad:?}");
        }
        assert!(plan_create_acls(vec![]).is_err());
        assert!(
            plan_create_acls(vec![acl("User:*", ResourceType::Cluster, "kafka-cluster")]).is_ok()
        );
    }
}
