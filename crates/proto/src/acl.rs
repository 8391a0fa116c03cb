//! ACL bindings between the gRPC messages (Kafka's names as strings) and the domain type.

use rill_common::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};

use crate::v1 as pb;

pub fn acl_to_pb(acl: &AclBinding) -> pb::AclBinding {
    pb::AclBinding {
        principal: acl.principal.clone(),
        resource_type: acl.resource_type.name().to_string(),
        resource_name: acl.resource_name.clone(),
        pattern_type: acl.pattern_type.name().to_string(),
        operation: acl.operation.name().to_string(),
        permission: acl.permission.name().to_string(),
    }
}

/// The binding a message names; the error says which field is not a known name.
pub fn acl_from_pb(acl: pb::AclBinding) -> Result<AclBinding, String> {
    let unknown = |what: &str, value: &str| format!("unknown {what} {value:?}");
    Ok(AclBinding {
        resource_type: ResourceType::from_name(&acl.resource_type)
            .ok_or_else(|| unknown("resource type", &acl.resource_type))?,
        pattern_type: PatternType::from_name(&acl.pattern_type)
            .ok_or_else(|| unknown("pattern type", &acl.pattern_type))?,
        operation: Operation::from_name(&acl.operation)
            .ok_or_else(|| unknown("operation", &acl.operation))?,
        permission: Permission::from_name(&acl.permission)
            .ok_or_else(|| unknown("permission", &acl.permission))?,
        principal: acl.principal,
        resource_name: acl.resource_name,
    })
}
