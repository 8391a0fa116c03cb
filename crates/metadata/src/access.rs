//! Authorization as both protocol edges ask it: the node's `authorizer.enable` and
//! `super.users`, the ACLs of the metadata log, one answer. A denial is written to the
//! `rill::audit` log (principal, operation, resource) and counted; filtering (a topic list
//! shrunk to what a principal may describe) asks quietly. Nodes (`User:node-<id>`, the
//! principal of a node certificate) are never refused.
//!
//! On gRPC, the authentication layer (`grpc::Authentication`) puts a [`Caller`] on every
//! request and the services ask a [`Gate`].

use std::sync::Arc;

use rill_common::acl::{Authorizer, Operation, ResourceType};
use tracing::warn;

use crate::model::MetadataState;
use crate::store::StateWatch;

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The principal of a node that proved itself with the cluster secret (no TLS, so no
/// certificate names it). No user can be called `node` (see `controller::users`).
pub const CLUSTER_NODE: &str = "User:node";

/// Who made a gRPC call (`User:NAME`), as the authentication layer found it: a request
/// extension.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<str>);

/// The principal a TLS client certificate (DER) names: `User:` and its common name.
pub fn certificate_principal(der: &[u8]) -> Option<String> {
    rill_proto::tls::common_name(der).map(|name| format!("User:{name}"))
}

/// The principal a gRPC request was made by (`User:ANONYMOUS` if nobody said).
pub fn caller<T>(request: &tonic::Request<T>) -> &str {
    request
        .extensions()
        .get::<Caller>()
        .map_or(ANONYMOUS, |c| &c.0)
}

/// What a gRPC service asks before it serves a call: the node's [`AccessControl`] over
/// the metadata as this node has applied it.
#[derive(Clone)]
pub struct Gate {
    access: AccessControl,
    state: Option<StateWatch>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl Gate {
    pub fn new(access: AccessControl, state: StateWatch) -> Self {
        Self {
            access,
            state: Some(state),
        }
    }

    /// A gate that lets every call through (no authorizer; tests).
    pub fn open() -> Self {
        Self {
            access: AccessControl::default(),
            state: None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.access.is_enabled() && self.state.is_some()
    }

    /// Fails with the resource type's authorization error (TOPIC_AUTHORIZATION_FAILED,
    /// ...) unless the caller may do `operation` on the resource; a refusal is audited.
    pub fn require<T>(
        &self,
        request: &tonic::Request<T>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<(), tonic::Status> {
        if self.ask(request, operation, resource_type, name, true) {
            return Ok(());
        }
        Err(rill_proto::error_status(
            resource_type.authorization_failed(),
            &format!(
                "{} may not {} {} {name:?}",
                caller(request),
                operation.name(),
                resource_type.name()
            ),
        ))
    }

    /// READ on the group and on each topic: what committing offsets takes (a member's
    /// commit, a transaction's, an operator's reset).
    pub fn require_offset_commit<'a, T>(
        &self,
        request: &tonic::Request<T>,
        group_id: &str,
        topics: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), tonic::Status> {
        self.require(request, Operation::Read, ResourceType::Group, group_id)?;
        for topic in topics {
            self.require(request, Operation::Read, ResourceType::Topic, topic)?;
        }
        Ok(())
    }

    /// Whether the caller may do `operation` on the resource, audited if not.
    pub fn allowed<T>(
        &self,
        request: &tonic::Request<T>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.ask(request, operation, resource_type, name, true)
    }

    /// `allowed` without the audit line, for filtering what the caller may see.
    pub fn permits<T>(
        &self,
        request: &tonic::Request<T>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.ask(request, operation, resource_type, name, false)
    }

    /// Fails with CLUSTER_AUTHORIZATION_FAILED unless the caller may run an idempotent
    /// producer ([`AccessControl::may_write_idempotently`]).
    pub fn require_idempotent_write<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<(), tonic::Status> {
        let Some(state) = self.state.as_ref().filter(|_| self.access.is_enabled()) else {
            return Ok(());
        };
        let state = state.borrow().clone();
        if self.access.may_write_idempotently(&state, caller(request)) {
            return Ok(());
        }
        Err(rill_proto::error_status(
            rill_common::ErrorCode::ClusterAuthorizationFailed,
            &format!(
                "{} may not write idempotently (IDEMPOTENT_WRITE on the cluster, or WRITE on a topic)",
                caller(request)
            ),
        ))
    }

    fn ask<T>(
        &self,
        request: &tonic::Request<T>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
        audit: bool,
    ) -> bool {
        let Some(state) = self.state.as_ref().filter(|_| self.access.is_enabled()) else {
            return true;
        };
        let state = state.borrow().clone();
        let ask = if audit {
            AccessControl::check
        } else {
            AccessControl::permits
        };
        ask(
            &self.access,
            &state,
            caller(request),
            operation,
            resource_type,
            name,
        )
    }
}

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

    /// Whether `principal` may run an idempotent producer (as Kafka since KIP-679:
    /// IDEMPOTENT_WRITE on the cluster, or WRITE on some topic); a refusal is audited.
    pub fn may_write_idempotently(&self, state: &MetadataState, principal: &str) -> bool {
        let cluster = ResourceType::CLUSTER_NAME;
        self.permits(
            state,
            principal,
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            cluster,
        ) || state
            .topics
            .keys()
            .any(|t| self.permits(state, principal, Operation::Write, ResourceType::Topic, t))
            || self.check(
                state,
                principal,
                Operation::IdempotentWrite,
                ResourceType::Cluster,
                cluster,
            )
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
    principal == CLUSTER_NODE
        || principal
            .strip_prefix("User:")
            .is_some_and(rill_proto::tls::is_node_name)
}
