//! CreateAcls, DescribeAcls and DeleteAcls (kafka-acls.sh, AdminClient): Kafka's numeric
//! enums to and from `rill_common::acl`, on the controller's ACL requests. Creating and
//! deleting needs ALTER on the cluster, describing DESCRIBE. Only the host `*` exists.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rill_common::acl::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::ControllerRequest;

use super::{code, Context};

/// Kafka's `ANY` in filters.
const ANY: i8 = 1;

fn resource_type_code(t: ResourceType) -> i8 {
    match t {
        ResourceType::Topic => 2,
        ResourceType::Group => 3,
        ResourceType::Cluster => 4,
        ResourceType::TransactionalId => 5,
    }
}

fn pattern_code(p: PatternType) -> i8 {
    match p {
        PatternType::Literal => 3,
        PatternType::Prefixed => 4,
    }
}

fn operation_code(o: Operation) -> i8 {
    match o {
        Operation::All => 2,
        Operation::Read => 3,
        Operation::Write => 4,
        Operation::Create => 5,
        Operation::Delete => 6,
        Operation::Alter => 7,
        Operation::Describe => 8,
        Operation::ClusterAction => 9,
        Operation::DescribeConfigs => 10,
        Operation::AlterConfigs => 11,
        Operation::IdempotentWrite => 12,
    }
}

fn permission_code(p: Permission) -> i8 {
    match p {
        Permission::Deny => 2,
        Permission::Allow => 3,
    }
}

/// A code from the wire as one of ours (`None`: unknown, or not served).
fn decode<T: Copy>(all: &[T], to_code: fn(T) -> i8, wire: i8) -> Option<T> {
    all.iter().copied().find(|v| to_code(*v) == wire)
}

const PATTERNS: [PatternType; 2] = [PatternType::Literal, PatternType::Prefixed];
const PERMISSIONS: [Permission; 2] = [Permission::Allow, Permission::Deny];

/// A filter field: `ANY` is none; anything unknown is an error.
fn filter_field<T: Copy>(all: &[T], to_code: fn(T) -> i8, wire: i8) -> Result<Option<T>, ()> {
    if wire == ANY {
        return Ok(None);
    }
    decode(all, to_code, wire).map(Some).ok_or(())
}

fn host_is_any(host: Option<&StrBytes>) -> bool {
    host.is_none_or(|h| h.as_str() == "*")
}

fn invalid(message: &str) -> (i16, Option<StrBytes>) {
    (
        code(ErrorCode::InvalidRequest),
        Some(StrBytes::from_string(message.to_string())),
    )
}

pub(crate) async fn create_acls(
    ctx: &Context<'_>,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let authorized = ctx.allowed(
        Operation::Alter,
        ResourceType::Cluster,
        ResourceType::CLUSTER_NAME,
    );
    let mut results = Vec::new();
    for c in request.creations {
        let binding = (|| {
            if !authorized {
                return Err((code(ErrorCode::ClusterAuthorizationFailed), None));
            }
            if !host_is_any(Some(&c.host)) {
                return Err(invalid("only the host * is supported"));
            }
            Ok(AclBinding {
                principal: c.principal.to_string(),
                resource_type: decode(&ResourceType::ALL, resource_type_code, c.resource_type)
                    .ok_or_else(|| invalid("unknown resource type"))?,
                resource_name: c.resource_name.to_string(),
                pattern_type: decode(&PATTERNS, pattern_code, c.resource_pattern_type)
                    .ok_or_else(|| invalid("the pattern type is LITERAL or PREFIXED"))?,
                operation: decode(&Operation::ALL, operation_code, c.operation)
                    .ok_or_else(|| invalid("unknown operation"))?,
                permission: decode(&PERMISSIONS, permission_code, c.permission_type)
                    .ok_or_else(|| invalid("the permission is ALLOW or DENY"))?,
            })
        })();
        let result = match binding {
            Err((error, message)) => Err((error, message)),
            Ok(binding) => ctx
                .backends
                .metadata
                .submit(ControllerRequest::CreateAcls {
                    bindings: vec![binding],
                })
                .await
                .map(|_| ())
                .map_err(|e| (code(e.code()), Some(StrBytes::from_string(e.message())))),
        };
        results.push(match result {
            Ok(()) => AclCreationResult::default(),
            Err((error, message)) => AclCreationResult::default()
                .with_error_code(error)
                .with_error_message(message),
        });
    }
    CreateAclsResponse::default().with_results(results)
}

/// A Kafka filter as ours (`Err`: it names something we do not have).
#[allow(clippy::too_many_arguments)]
fn to_filter(
    resource_type: i8,
    resource_name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, ()> {
    if !host_is_any(host) {
        return Err(());
    }
    // MATCH (2) is "whatever would match this name": treated as ANY here.
    let pattern_type = if pattern_type == 2 { ANY } else { pattern_type };
    Ok(AclFilter {
        principal: principal.map(|p| p.to_string()),
        resource_type: filter_field(&ResourceType::ALL, resource_type_code, resource_type)?,
        resource_name: resource_name.map(|n| n.to_string()),
        pattern_type: filter_field(&PATTERNS, pattern_code, pattern_type)?,
        operation: filter_field(&Operation::ALL, operation_code, operation)?,
        permission: filter_field(&PERMISSIONS, permission_code, permission)?,
    })
}

pub(crate) fn describe_acls(
    ctx: &Context<'_>,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if !ctx.allowed(
        Operation::Describe,
        ResourceType::Cluster,
        ResourceType::CLUSTER_NAME,
    ) {
        return DescribeAclsResponse::default()
            .with_error_code(code(ErrorCode::ClusterAuthorizationFailed));
    }
    let Ok(filter) = to_filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    ) else {
        let (error, message) = invalid("a filter field is not served");
        return DescribeAclsResponse::default()
            .with_error_code(error)
            .with_error_message(message);
    };
    let state = ctx.backends.metadata.state();
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for acl in state.acls.iter().filter(|a| filter.matches(a)) {
        let description = AclDescription::default()
            .with_principal(StrBytes::from_string(acl.principal.clone()))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(operation_code(acl.operation))
            .with_permission_type(permission_code(acl.permission));
        let same = |r: &DescribeAclsResource| {
            r.resource_type == resource_type_code(acl.resource_type)
                && r.resource_name.as_str() == acl.resource_name
                && r.pattern_type == pattern_code(acl.pattern_type)
        };
        match resources.iter_mut().find(|r| same(r)) {
            Some(r) => r.acls.push(description),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(resource_type_code(acl.resource_type))
                    .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
                    .with_pattern_type(pattern_code(acl.pattern_type))
                    .with_acls(vec![description]),
            ),
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}

pub(crate) async fn delete_acls(
    ctx: &Context<'_>,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let authorized = ctx.allowed(
        Operation::Alter,
        ResourceType::Cluster,
        ResourceType::CLUSTER_NAME,
    );
    let state = ctx.backends.metadata.state();
    let mut results = Vec::new();
    let mut filters = Vec::new();
    for f in &request.filters {
        let filter = to_filter(
            f.resource_type_filter,
            f.resource_name_filter.as_ref(),
            f.pattern_type_filter,
            f.principal_filter.as_ref(),
            f.host_filter.as_ref(),
            f.operation,
            f.permission_type,
        );
        let result = match (authorized, filter) {
            (false, _) => DeleteAclsFilterResult::default()
                .with_error_code(code(ErrorCode::ClusterAuthorizationFailed)),
            (true, Err(())) => {
                let (error, message) = invalid("a filter field is not served");
                DeleteAclsFilterResult::default()
                    .with_error_code(error)
                    .with_error_message(message)
            }
            (true, Ok(filter)) => {
                let matching = state
                    .acls
                    .iter()
                    .filter(|a| filter.matches(a))
                    .map(|acl| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(resource_type_code(acl.resource_type))
                            .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
                            .with_pattern_type(pattern_code(acl.pattern_type))
                            .with_principal(StrBytes::from_string(acl.principal.clone()))
                            .with_host(StrBytes::from_static_str("*"))
                            .with_operation(operation_code(acl.operation))
                            .with_permission_type(permission_code(acl.permission))
                    })
                    .collect();
                filters.push(filter);
                DeleteAclsFilterResult::default().with_matching_acls(matching)
            }
        };
        results.push(result);
    }
    if !filters.is_empty() {
        if let Err(e) = ctx
            .backends
            .metadata
            .submit(ControllerRequest::DeleteAcls { filters })
            .await
        {
            for r in &mut results {
                if r.error_code == 0 {
                    r.error_code = code(e.code());
                    r.error_message = Some(StrBytes::from_string(e.message()));
                    r.matching_acls.clear();
                }
            }
        }
    }
    DeleteAclsResponse::default().with_filter_results(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_kafkas_numbers() {
        for t in ResourceType::ALL {
            assert_eq!(
                decode(
                    &ResourceType::ALL,
                    resource_type_code,
                    resource_type_code(t)
                ),
                Some(t)
            );
        }
        for o in Operation::ALL {
            assert_eq!(
                decode(&Operation::ALL, operation_code, operation_code(o)),
                Some(o)
            );
        }
        for p in PATTERNS {
            assert_eq!(decode(&PATTERNS, pattern_code, pattern_code(p)), Some(p));
        }
        for p in PERMISSIONS {
            assert_eq!(
                decode(&PERMISSIONS, permission_code, permission_code(p)),
                Some(p)
            );
        }
    }

    #[test]
    fn filters_take_any_and_refuse_what_is_not_served() {
        let any = to_filter(ANY, None, ANY, None, None, ANY, ANY).unwrap();
        assert_eq!(any, AclFilter::default());
        let matching = to_filter(2, None, 2, None, None, 3, 3).unwrap();
        assert_eq!(matching.resource_type, Some(ResourceType::Topic));
        assert_eq!(matching.pattern_type, None, "MATCH reads as ANY");
        let host = StrBytes::from_static_str("10.0.0.1");
        assert!(to_filter(ANY, None, ANY, None, Some(&host), ANY, ANY).is_err());
        assert!(
            to_filter(6, None, ANY, None, None, ANY, ANY).is_err(),
            "DELEGATION_TOKEN"
        );
    }
}
