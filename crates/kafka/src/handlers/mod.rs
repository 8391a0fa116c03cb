//! One file per API (or family of APIs). A handler translates a decoded request into
//! calls on the broker, the metadata node and the controller, and their results into a
//! response; the rules live in those crates, not here.

mod acls;
mod admin;
mod configs;
mod data;
mod group_admin;
mod groups;
mod membership;
mod metadata;
mod offsets;
mod reassignments;
pub(crate) mod sasl;
mod transactions;
mod txn_admin;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use rill_broker::grpc::ProducerIdSource;
use rill_broker::ReplicaManager;
use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_coordinator::service::{GroupCoordinator, TxnCoordinator};
use rill_metadata::MetadataNode;
use std::sync::Arc;

use crate::versions;

/// What the Kafka listener calls: the same broker, metadata and controller code the gRPC
/// services use.
pub struct Backends {
    pub node_id: u64,
    pub replicas: Arc<ReplicaManager>,
    pub metadata: Arc<MetadataNode>,
    pub producer_ids: Arc<dyn ProducerIdSource>,
    pub groups: Arc<GroupCoordinator>,
    pub transactions: Arc<TxnCoordinator>,
    pub settings: KafkaSettings,
    /// `authorizer.enable`, `super.users`: what each principal may do.
    pub access: rill_metadata::access::AccessControl,
}

/// Node settings that only Kafka clients see.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `auto.create.topics.enable`: a Metadata request for an unknown topic creates it.
    pub auto_create_topics: bool,
    /// `num.partitions` of an auto-created topic.
    pub num_partitions: u32,
    /// `default.replication.factor` of an auto-created topic (capped at the number of
    /// alive brokers).
    pub default_replication_factor: u32,
    /// The largest request frame accepted (`socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// `sasl.enabled.mechanisms`: when not empty, a connection must authenticate with one
    /// of them before anything but ApiVersions is served.
    pub sasl_mechanisms: Vec<crate::sasl::SaslMechanism>,
    /// TLS on every Kafka listener (`tls.*` files; client certificates optional).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            auto_create_topics: true,
            num_partitions: 1,
            default_replication_factor: 3,
            max_request_bytes: crate::frame::MAX_FRAME_BYTES,
            sasl_mechanisms: Vec::new(),
            tls: None,
        }
    }
}

/// Where a request came in.
pub(crate) struct Context<'a> {
    pub backends: &'a Backends,
    /// The listener the client connected through (its addresses are the ones returned).
    pub listener: &'a str,
    pub version: i16,
    /// The client id the request header carried ("" if none).
    pub client_id: &'a str,
    /// Who sent it (`User:NAME` after SASL, else `User:ANONYMOUS`).
    pub principal: &'a str,
}

impl Context<'_> {
    /// Whether the principal may do `operation` on the resource (audited if not).
    pub(crate) fn allowed(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorize(operation, resource_type, name, true)
    }

    /// `allowed` without the audit line, for filtering what the principal may see.
    pub(crate) fn may(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorize(operation, resource_type, name, false)
    }

    /// Whether the principal may run an idempotent producer (audited if not).
    pub(crate) fn may_write_idempotently(&self) -> bool {
        let access = &self.backends.access;
        !access.is_enabled()
            || access.may_write_idempotently(&self.backends.metadata.state(), self.principal)
    }

    fn authorize(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
        audit: bool,
    ) -> bool {
        let access = &self.backends.access;
        if !access.is_enabled() {
            return true;
        }
        let state = self.backends.metadata.state();
        let ask = if audit {
            rill_metadata::access::AccessControl::check
        } else {
            rill_metadata::access::AccessControl::permits
        };
        ask(
            access,
            &state,
            self.principal,
            operation,
            resource_type,
            name,
        )
    }
}

pub(crate) enum Reply {
    Response(Box<ResponseKind>),
    /// acks=0 produce.
    Nothing,
    /// Close the connection (Kafka does so for acks=0 produce errors).
    Close(String),
}

pub(crate) async fn handle(ctx: &Context<'_>, request: RequestKind) -> Reply {
    use RequestKind as Rq;
    use ResponseKind as Rs;
    let response = match request {
        Rq::ApiVersions(_) => Rs::ApiVersions(versions::api_versions(0)),
        Rq::Metadata(r) => Rs::Metadata(metadata::metadata(ctx, r).await),
        Rq::Produce(r) => return data::produce(ctx, r).await,
        Rq::Fetch(r) => Rs::Fetch(data::fetch(ctx, r).await),
        Rq::ListOffsets(r) => Rs::ListOffsets(offsets::list_offsets(ctx, r)),
        Rq::OffsetForLeaderEpoch(r) => {
            Rs::OffsetForLeaderEpoch(offsets::offset_for_leader_epoch(ctx, r))
        }
        Rq::InitProducerId(r) => Rs::InitProducerId(data::init_producer_id(ctx, r).await),
        Rq::CreateTopics(r) => Rs::CreateTopics(admin::create_topics(ctx, r).await),
        Rq::DeleteTopics(r) => Rs::DeleteTopics(admin::delete_topics(ctx, r).await),
        Rq::CreatePartitions(r) => Rs::CreatePartitions(admin::create_partitions(ctx, r).await),
        Rq::DeleteRecords(r) => Rs::DeleteRecords(offsets::delete_records(ctx, r).await),
        Rq::ElectLeaders(r) => Rs::ElectLeaders(admin::elect_leaders(ctx, r).await),
        Rq::AlterPartitionReassignments(r) => Rs::AlterPartitionReassignments(
            reassignments::alter_partition_reassignments(ctx, r).await,
        ),
        Rq::ListPartitionReassignments(r) => {
            Rs::ListPartitionReassignments(reassignments::list_partition_reassignments(ctx, r))
        }
        Rq::FindCoordinator(r) => Rs::FindCoordinator(groups::find_coordinator(ctx, r)),
        Rq::OffsetCommit(r) => Rs::OffsetCommit(groups::offset_commit(ctx, r).await),
        Rq::OffsetFetch(r) => Rs::OffsetFetch(groups::offset_fetch(ctx, r).await),
        Rq::JoinGroup(r) => Rs::JoinGroup(membership::join_group(ctx, r).await),
        Rq::SyncGroup(r) => Rs::SyncGroup(membership::sync_group(ctx, r).await),
        Rq::Heartbeat(r) => Rs::Heartbeat(membership::heartbeat(ctx, r).await),
        Rq::LeaveGroup(r) => Rs::LeaveGroup(membership::leave_group(ctx, r).await),
        Rq::DescribeGroups(r) => Rs::DescribeGroups(membership::describe_groups(ctx, r).await),
        Rq::ListGroups(r) => Rs::ListGroups(membership::list_groups(ctx, r).await),
        Rq::DeleteGroups(r) => Rs::DeleteGroups(group_admin::delete_groups(ctx, r).await),
        Rq::OffsetDelete(r) => Rs::OffsetDelete(group_admin::offset_delete(ctx, r).await),
        Rq::DescribeCluster(r) => Rs::DescribeCluster(metadata::describe_cluster(ctx, r)),
        Rq::DescribeConfigs(r) => Rs::DescribeConfigs(configs::describe_configs(ctx, r)),
        Rq::AlterConfigs(r) => Rs::AlterConfigs(configs::alter_configs(ctx, r).await),
        Rq::IncrementalAlterConfigs(r) => {
            Rs::IncrementalAlterConfigs(configs::incremental_alter_configs(ctx, r).await)
        }
        Rq::AddPartitionsToTxn(r) => {
            Rs::AddPartitionsToTxn(transactions::add_partitions_to_txn(ctx, r).await)
        }
        Rq::AddOffsetsToTxn(r) => {
            Rs::AddOffsetsToTxn(transactions::add_offsets_to_txn(ctx, r).await)
        }
        Rq::TxnOffsetCommit(r) => {
            Rs::TxnOffsetCommit(transactions::txn_offset_commit(ctx, r).await)
        }
        Rq::EndTxn(r) => Rs::EndTxn(transactions::end_txn(ctx, r).await),
        Rq::DescribeTransactions(r) => {
            Rs::DescribeTransactions(txn_admin::describe_transactions(ctx, r).await)
        }
        Rq::ListTransactions(r) => Rs::ListTransactions(txn_admin::list_transactions(ctx, r).await),
        Rq::DescribeProducers(r) => Rs::DescribeProducers(txn_admin::describe_producers(ctx, r)),
        Rq::WriteTxnMarkers(r) => Rs::WriteTxnMarkers(txn_admin::write_txn_markers(ctx, r).await),
        Rq::CreateAcls(r) => Rs::CreateAcls(acls::create_acls(ctx, r).await),
        Rq::DescribeAcls(r) => Rs::DescribeAcls(acls::describe_acls(ctx, r)),
        Rq::DeleteAcls(r) => Rs::DeleteAcls(acls::delete_acls(ctx, r).await),
        other => return Reply::Close(format!("no handler for {other:?}")),
    };
    Reply::Response(Box::new(response))
}

/// The Kafka number of a Rill error code; every error a response carries goes through
/// here and is counted.
pub(crate) fn code(code: ErrorCode) -> i16 {
    crate::metrics::error(code);
    code.kafka_code()
}
