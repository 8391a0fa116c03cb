//! Authorization as both protocol edges ask it: the node's `authorizer.enable` and
//! `super.users`, the ACLs of the metadata log, one answer. A denial is written to the
//! `rill::audit` log (principal, operation, resource) and counted; filtering (a topic list
//! shrunk to what a principal may describe) asks quietly. Nodes (`User:node-<id>`, the
//! principal of a node certificate) are never refused.

use rill_common::acl::{Authorizer, Operation, ResourceType};
use tracing::warn;

use crate::model::MetadataState;

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

#[derive(Debug, Clone, Default)]
pub struct AccessControl {
    enabled: bool,
    super_users: Vec<String>,
}

impl AccessControl {
    /// `authorizer.enable` and `super.users` (`User:admin;User:ops`).
    pub fn new(enabled: bool, super_users: Vec<String>) -> Self {
        Self {
            enabled,
            super_users,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `principal` may do `operation` on the resource; a refusal is audited.
    pub fn check(
        &self,
        state: &MetadataState,
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        let allowed = self.permits(state, principal, operation, resource_type, resource_name);
        if !allowed {
            warn!(target: "rill::audit", %principal, operation = operation.name(),
                resource_type = resource_type.name(), resource = %resource_name, "denied");
            metrics::counter!("rill_authorization_denied_total",
                "operation" => operation.name(), "resource_type" => resource_type.name())
            .increment(1);
        }
        allowed
    }

    /// `check` without the audit line (for filtering what a principal may see).
    pub fn permits(
        &self,
        state: &MetadataState,
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if !self.enabled || is_node(principal) {
            return true;
        }
        Authorizer {
            acls: &state.acls,
            super_users: &self.super_users,
        }
        .allows(principal, operation, resource_type, resource_name)
    }
}

fn is_node(principal: &str) -> bool {
    principal
        .strip_prefix("User:")
        .is_some_and(rill_proto::tls::is_node_name)
}
