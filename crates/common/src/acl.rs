//! Kafka's ACL model and the one decision both protocols ask: may this principal do this
//! operation on this resource? A binding names a principal (`User:alice`, or `User:*`
//! for everyone), a resource pattern (type, name, literal or prefixed; the literal name
//! `*` is every resource of the type), an operation and allow or deny. Deny wins; with no
//! matching allow the answer is no; super users are never asked. Pure: the caller brings
//! the bindings (from the metadata log) and the principal (from SASL or a certificate).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

impl ResourceType {
    pub const ALL: [ResourceType; 4] = [
        Self::Topic,
        Self::Group,
        Self::Cluster,
        Self::TransactionalId,
    ];

    /// The error a refused operation on this type of resource gets, as Kafka names it.
    pub fn authorization_failed(self) -> crate::ErrorCode {
        match self {
            Self::Topic => crate::ErrorCode::TopicAuthorizationFailed,
            Self::Group => crate::ErrorCode::GroupAuthorizationFailed,
            Self::Cluster => crate::ErrorCode::ClusterAuthorizationFailed,
            Self::TransactionalId => crate::ErrorCode::TransactionalIdAuthorizationFailed,
        }
    }

    /// Kafka's name (`TOPIC`, `GROUP`, `CLUSTER`, `TRANSACTIONAL_ID`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Topic => "TOPIC",
            Self::Group => "GROUP",
            Self::Cluster => "CLUSTER",
            Self::TransactionalId => "TRANSACTIONAL_ID",
        }
    }

    /// The name the cluster resource always has.
    pub const CLUSTER_NAME: &'static str = "kafka-cluster";

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Literal => "LITERAL",
            Self::Prefixed => "PREFIXED",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Literal, Self::Prefixed]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl Operation {
    pub const ALL: [Operation; 11] = [
        Self::All,
        Self::Read,
        Self::Write,
        Self::Create,
        Self::Delete,
        Self::Alter,
        Self::Describe,
        Self::ClusterAction,
        Self::DescribeConfigs,
        Self::AlterConfigs,
        Self::IdempotentWrite,
    ];

    /// Kafka's name (`READ`, `DESCRIBE_CONFIGS`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Create => "CREATE",
            Self::Delete => "DELETE",
            Self::Alter => "ALTER",
            Self::Describe => "DESCRIBE",
            Self::ClusterAction => "CLUSTER_ACTION",
            Self::DescribeConfigs => "DESCRIBE_CONFIGS",
            Self::AlterConfigs => "ALTER_CONFIGS",
            Self::IdempotentWrite => "IDEMPOTENT_WRITE",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_uppercase().replace('-', "_");
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Whether an ACL granting (or denying) `self` covers a request for `wanted`: ALL
    /// covers everything; as in Kafka, DESCRIBE comes with READ, WRITE, DELETE and ALTER,
    /// and DESCRIBE_CONFIGS with ALTER_CONFIGS. Implication applies to allows only.
    fn covers(self, wanted: Operation, permission: Permission) -> bool {
        if self == wanted || self == Self::All {
            return true;
        }
        permission == Permission::Allow
            && match wanted {
                Self::Describe => {
                    matches!(self, Self::Read | Self::Write | Self::Delete | Self::Alter)
                }
                Self::DescribeConfigs => self == Self::AlterConfigs,
                _ => false,
            }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Allow,
    Deny,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "ALLOW",
            Self::Deny => "DENY",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Allow, Self::Deny]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// `User:NAME`, or `User:*` for every principal.
    pub principal: String,
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    fn names_principal(&self, principal: &str) -> bool {
        self.principal == principal || self.principal == "User:*"
    }

    fn matches_resource(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == name || self.resource_name == "*",
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }
}

/// The bindings and super users a node decides with.
#[derive(Debug, Clone, Copy)]
pub struct Authorizer<'a> {
    pub acls: &'a std::collections::BTreeSet<AclBinding>,
    /// `super.users`: principals every request is allowed for.
    pub super_users: &'a [String],
}

impl Authorizer<'_> {
    /// Whether `principal` may do `operation` on the resource.
    pub fn allows(
        &self,
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let mut allowed = false;
        for acl in self.acls {
            if !acl.names_principal(principal)
                || !acl.matches_resource(resource_type, resource_name)
                || !acl.operation.covers(operation, acl.permission)
            {
                continue;
            }
            match acl.permission {
                Permission::Deny => return false,
                Permission::Allow => allowed = true,
            }
        }
        allowed
    }
}

/// Which bindings a delete or a describe names; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub principal: Option<String>,
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern_type: Option<PatternType>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.resource_type.is_none_or(|t| t == acl.resource_type)
            && self
                .resource_name
                .as_ref()
                .is_none_or(|n| *n == acl.resource_name)
            && self.pattern_type.is_none_or(|t| t == acl.pattern_type)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }
}

#[cfg(test)]
mod tests;
