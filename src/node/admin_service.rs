//! AdminService: cluster and topic administration. Reads come from this node's replica
//! of the metadata; writes go to the active controller through `submit`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rill_broker::partition::Offsets;
use rill_broker::ReplicaManager;
use rill_common::acl::{Operation, ResourceType};
use rill_common::ErrorCode;
use rill_metadata::access::Gate;
use rill_metadata::controller::{config, liveness};
use rill_metadata::grpc::status;
use rill_metadata::{
    ChannelPool, ControllerReply, ControllerRequest, MetadataError, MetadataNode, MetadataState,
    Topic,
};
use rill_proto::v1 as pb;
use rill_proto::v1::admin_service_server::AdminService;
use rill_proto::v1::broker_service_client::BrokerServiceClient;
use rill_proto::ListenerPorts;
use tonic::{Request, Response, Status};

pub struct AdminServiceImpl {
    pub(super) metadata: Arc<MetadataNode>,
    replicas: Arc<ReplicaManager>,
    channels: ChannelPool,
    /// The extra client listeners (a client is told addresses on its listener).
    client_listeners: Arc<ListenerPorts>,
    /// What each caller may do (ACLs).
    pub(super) gate: Gate,
}

/// The cluster as an ACL resource.
pub(super) const CLUSTER: &str = ResourceType::CLUSTER_NAME;

impl AdminServiceImpl {
    pub fn new(
        metadata: Arc<MetadataNode>,
        replicas: Arc<ReplicaManager>,
        client_listeners: Arc<ListenerPorts>,
        gate: Gate,
    ) -> Self {
        Self {
            channels: metadata.channels().clone(),
            metadata,
            replicas,
            client_listeners,
            gate,
        }
    }

    /// A refused item of a batch request (TOPIC_AUTHORIZATION_FAILED, ...).
    fn refused_item(name: String, resource_type: ResourceType) -> pb::ItemResult {
        pb::ItemResult {
            error_message: format!("may not change {} {name:?}", resource_type.name()),
            name,
            error_code: resource_type.authorization_failed().to_string(),
        }
    }

    /// The alive replica of a partition with the longest log, asked of each replica
    /// (KIP-966's unclean recovery: elect the one that loses the least); `None` when
    /// none answers.
    async fn longest_alive_replica(
        &self,
        state: &MetadataState,
        topic: &str,
        partition: u32,
    ) -> Option<u64> {
        let p = state.partition(topic, partition)?;
        let mut longest: Option<(u64, u64)> = None;
        for replica in &p.replicas {
            let Some(broker) = state.brokers.get(replica).filter(|b| b.is_alive()) else {
                continue;
            };
            let Ok(channel) = self.channels.get(&broker.addr) else {
                continue;
            };
            let mut request = tonic::Request::new(pb::DescribeReplicaRequest {
                topic: topic.to_string(),
                partition,
                checksum_from: 0,
                checksum_to: 0,
            });
            request.set_timeout(std::time::Duration::from_secs(2));
            match BrokerServiceClient::new(channel)
                .describe_replica(request)
                .await
            {
                Ok(r) => {
                    let log_end = r.into_inner().log_end_offset;
                    if longest.is_none_or(|(end, _)| log_end > end) {
                        longest = Some((log_end, *replica));
                    }
                }
                Err(e) => tracing::warn!(
                    topic,
                    partition,
                    replica,
                    "cannot ask the replica for its log end: {e}"
                ),
            }
        }
        longest.map(|(_, replica)| replica)
    }

    /// The partition's offsets from its leader: this node's replica when it leads,
    /// else one ListOffsets call to the leader. `None` when the leader cannot answer.
    pub(super) async fn partition_offsets(
        &self,
        state: &MetadataState,
        topic: &str,
        partition: u32,
    ) -> Option<Offsets> {
        if let Some(p) = self
            .replicas
            .partition(topic, partition)
            .filter(|p| p.is_leader())
        {
            return Some(p.offsets());
        }
        let leader_addr = state
            .partition(topic, partition)
            .and_then(|p| p.leader)
            .and_then(|l| state.brokers.get(&l))
            .map(|b| b.addr.clone());
        let channel = leader_addr.and_then(|a| self.channels.get(&a).ok())?;
        let mut request = tonic::Request::new(pb::ListOffsetsRequest {
            topic: topic.to_string(),
            partition,
            timestamp: -1,
            isolation_level: pb::IsolationLevel::ReadUncommitted.into(),
        });
        request.set_timeout(std::time::Duration::from_secs(2));
        match BrokerServiceClient::new(channel)
            .list_offsets(request)
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                Some(Offsets {
                    log_start: r.log_start_offset,
                    last_stable_offset: r.last_stable_offset,
                    high_watermark: r.high_watermark,
                    log_end: r.log_end_offset,
                })
            }
            Err(_) => None,
        }
    }

    async fn describe_topic(&self, state: &MetadataState, topic: &Topic) -> pb::TopicDescription {
        let mut description = describe_topic(state, topic);
        for p in &mut description.partitions {
            // Zeros when the leader cannot answer (the topic describe has no "unknown").
            let offsets = self
                .partition_offsets(state, &topic.name, p.partition)
                .await
                .unwrap_or_default();
            p.log_start_offset = offsets.log_start;
            p.last_stable_offset = offsets.last_stable_offset;
            p.high_watermark = offsets.high_watermark;
            p.log_end_offset = offsets.log_end;
        }
        description
    }

    /// The controller quorum as this node sees it.
    pub(super) fn controller_quorum(&self) -> pb::ControllerInfo {
        let info = self.metadata.controller_info();
        pb::ControllerInfo {
            leader_id: info.leader_id,
            term: info.term,
            voters: info.voters,
            learners: info.learners,
        }
    }

    async fn submit_item(&self, name: String, request: ControllerRequest) -> pb::ItemResult {
        let (error_code, error_message) = match self.metadata.submit(request).await {
            Ok(_) => (String::new(), String::new()),
            Err(e) => (e.code().to_string(), e.message()),
        };
        pb::ItemResult {
            name,
            error_code,
            error_message,
        }
    }

    pub(super) async fn submit(&self, request: ControllerRequest) -> Result<(), Status> {
        self.metadata
            .submit(request)
            .await
            .map(|_| ())
            .map_err(|e: MetadataError| status(&e))
    }
}

fn describe_topic(state: &MetadataState, topic: &Topic) -> pb::TopicDescription {
    pb::TopicDescription {
        name: topic.name.clone(),
        topic_id: topic.topic_id.clone(),
        configs: config::effective(&topic.configs, topic.replication_factor())
            .into_iter()
            .collect(),
        partitions: topic
            .partitions
            .iter()
            .map(|p| pb::PartitionDescription {
                partition: p.partition,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                partition_epoch: p.partition_epoch,
                eligible_leader_replicas: p.elr.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
                offline_reason: liveness::offline_reason(state, p).unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        error_code: String::new(),
    }
}

#[tonic::async_trait]
impl AdminService for AdminServiceImpl {
    async fn describe_cluster(
        &self,
        request: Request<pb::DescribeClusterRequest>,
    ) -> Result<Response<pb::DescribeClusterResponse>, Status> {
        // The brokers' addresses on the listener the client came in through.
        let listener = self.client_listeners.listener_of(&request);
        let state = self.metadata.state();
        Ok(Response::new(pb::DescribeClusterResponse {
            cluster_id: state.cluster_id.clone().unwrap_or_default(),
            controller: Some(self.controller_quorum()),
            brokers: state
                .brokers
                .values()
                .map(|b| pb::BrokerInfo {
                    id: b.id,
                    addr: b.grpc_addr(listener).to_string(),
                    state: if b.fenced { "fenced" } else { "alive" }.to_string(),
                    epoch: b.epoch,
                    store_id: b.store.store_id.clone(),
                    clean_shutdown: b.store.clean_shutdown,
                    draining: b.draining,
                })
                .collect(),
        }))
    }

    async fn create_topics(
        &self,
        request: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        // As Kafka: CREATE on the cluster, or on the topic.
        let on_cluster =
            self.gate
                .permits(&request, Operation::Create, ResourceType::Cluster, CLUSTER);
        let mut results = Vec::new();
        for topic in request.get_ref().topics.clone() {
            if !on_cluster
                && !self.gate.allowed(
                    &request,
                    Operation::Create,
                    ResourceType::Topic,
                    &topic.name,
                )
            {
                results.push(Self::refused_item(topic.name, ResourceType::Topic));
                continue;
            }
            let create = ControllerRequest::CreateTopic {
                name: topic.name.clone(),
                partitions: topic.partitions,
                replication_factor: topic.replication_factor,
                configs: topic.configs.into_iter().collect::<BTreeMap<_, _>>(),
            };
            results.push(self.submit_item(topic.name, create).await);
        }
        Ok(Response::new(pb::CreateTopicsResponse { results }))
    }

    async fn delete_topics(
        &self,
        request: Request<pb::DeleteTopicsRequest>,
    ) -> Result<Response<pb::DeleteTopicsResponse>, Status> {
        let mut results = Vec::new();
        for name in request.get_ref().names.clone() {
            if !self
                .gate
                .allowed(&request, Operation::Delete, ResourceType::Topic, &name)
            {
                results.push(Self::refused_item(name, ResourceType::Topic));
                continue;
            }
            let delete = ControllerRequest::DeleteTopic { name: name.clone() };
            results.push(self.submit_item(name, delete).await);
        }
        Ok(Response::new(pb::DeleteTopicsResponse { results }))
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> Result<Response<pb::ListTopicsResponse>, Status> {
        // A caller sees the topics it may describe.
        let names = self
            .metadata
            .state()
            .topics
            .keys()
            .filter(|t| {
                self.gate
                    .permits(&request, Operation::Describe, ResourceType::Topic, t)
            })
            .cloned()
            .collect();
        Ok(Response::new(pb::ListTopicsResponse { names }))
    }

    async fn describe_topics(
        &self,
        request: Request<pb::DescribeTopicsRequest>,
    ) -> Result<Response<pb::DescribeTopicsResponse>, Status> {
        let state = self.metadata.state();
        let (names, include_offsets) = (
            request.get_ref().names.clone(),
            request.get_ref().include_offsets,
        );
        let describable = |t: &String| {
            self.gate
                .permits(&request, Operation::Describe, ResourceType::Topic, t)
        };
        let wanted: Vec<String> = if names.is_empty() {
            state
                .topics
                .keys()
                .filter(|t| describable(t))
                .cloned()
                .collect()
        } else {
            names
        };
        let mut topics = Vec::new();
        for name in wanted {
            if !self
                .gate
                .allowed(&request, Operation::Describe, ResourceType::Topic, &name)
            {
                topics.push(pb::TopicDescription {
                    name,
                    error_code: ResourceType::Topic.authorization_failed().to_string(),
                    ..Default::default()
                });
                continue;
            }
            topics.push(match state.topics.get(&name) {
                Some(topic) if include_offsets => self.describe_topic(&state, topic).await,
                Some(topic) => describe_topic(&state, topic),
                None => pb::TopicDescription {
                    name,
                    error_code: rill_common::ErrorCode::UnknownTopicOrPartition.to_string(),
                    ..Default::default()
                },
            });
        }
        Ok(Response::new(pb::DescribeTopicsResponse { topics }))
    }

    async fn create_partitions(
        &self,
        request: Request<pb::CreatePartitionsRequest>,
    ) -> Result<Response<pb::CreatePartitionsResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Alter,
            ResourceType::Topic,
            &request.get_ref().topic,
        )?;
        let r = request.into_inner();
        self.submit(ControllerRequest::CreatePartitions {
            name: r.topic,
            total: r.total,
        })
        .await?;
        Ok(Response::new(pb::CreatePartitionsResponse {}))
    }

    async fn alter_configs(
        &self,
        request: Request<pb::AlterConfigsRequest>,
    ) -> Result<Response<pb::AlterConfigsResponse>, Status> {
        self.gate.require(
            &request,
            Operation::AlterConfigs,
            ResourceType::Topic,
            &request.get_ref().topic,
        )?;
        let r = request.into_inner();
        self.submit(ControllerRequest::AlterConfigs {
            name: r.topic,
            configs: r.configs.into_iter().collect(),
        })
        .await?;
        Ok(Response::new(pb::AlterConfigsResponse {}))
    }

    async fn elect_leaders(
        &self,
        request: Request<pb::ElectLeadersRequest>,
    ) -> Result<Response<pb::ElectLeadersResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        let r = request.into_inner();
        let topic = (!r.topic.is_empty()).then_some(r.topic);
        let request = match (r.unclean, topic, r.partition) {
            (false, topic, _) => ControllerRequest::ElectPreferredLeaders { topic },
            (true, Some(topic), Some(partition)) => {
                let state = self.metadata.state();
                let candidate = self.longest_alive_replica(&state, &topic, partition).await;
                ControllerRequest::ElectUncleanLeader {
                    topic,
                    partition,
                    candidate,
                }
            }
            (true, _, _) => {
                return Err(rill_proto::error_status(
                    ErrorCode::InvalidRequest,
                    "an unclean election names one topic and partition",
                ))
            }
        };
        let reply = self
            .metadata
            .submit(request)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(match reply {
            ControllerReply::LeadersElected { partitions } => pb::ElectLeadersResponse {
                partitions_elected: partitions,
                ..Default::default()
            },
            ControllerReply::UncleanLeaderElected {
                leader,
                leader_epoch,
            } => pb::ElectLeadersResponse {
                partitions_elected: 1,
                leader: Some(leader),
                leader_epoch: Some(leader_epoch),
            },
            _ => pb::ElectLeadersResponse::default(),
        }))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let mut groups = self.group_listings();
        groups.retain(|g| {
            self.gate.permits(
                &request,
                Operation::Describe,
                ResourceType::Group,
                &g.group_id,
            )
        });
        Ok(Response::new(pb::ListGroupsResponse { groups }))
    }

    async fn describe_group(
        &self,
        request: Request<pb::DescribeGroupRequest>,
    ) -> Result<Response<pb::DescribeGroupResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Group,
            &request.get_ref().group_id,
        )?;
        let group_id = request.into_inner().group_id;
        Ok(Response::new(self.group_description(&group_id).await?))
    }

    async fn alter_group_offsets(
        &self,
        request: Request<pb::AlterGroupOffsetsRequest>,
    ) -> Result<Response<pb::AlterGroupOffsetsResponse>, Status> {
        let sent = request.get_ref();
        self.gate.require_offset_commit(
            &request,
            &sent.group_id,
            sent.offsets.iter().map(|o| o.topic.as_str()),
        )?;
        self.reset_group_offsets(request.into_inner()).await?;
        Ok(Response::new(pb::AlterGroupOffsetsResponse {}))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        AdminServiceImpl::create_user(self, request.into_inner()).await?;
        Ok(Response::new(pb::CreateUserResponse {}))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        AdminServiceImpl::delete_user(self, request.into_inner()).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Cluster,
            CLUSTER,
        )?;
        Ok(Response::new(pb::ListUsersResponse {
            users: AdminServiceImpl::list_users(self),
        }))
    }

    async fn create_acls(
        &self,
        request: Request<pb::CreateAclsRequest>,
    ) -> Result<Response<pb::CreateAclsResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        AdminServiceImpl::create_acls(self, request.into_inner()).await?;
        Ok(Response::new(pb::CreateAclsResponse {}))
    }

    async fn delete_acls(
        &self,
        request: Request<pb::DeleteAclsRequest>,
    ) -> Result<Response<pb::DeleteAclsResponse>, Status> {
        self.gate
            .require(&request, Operation::Alter, ResourceType::Cluster, CLUSTER)?;
        let deleted = AdminServiceImpl::delete_acls(self, request.into_inner()).await?;
        Ok(Response::new(pb::DeleteAclsResponse { deleted }))
    }

    async fn list_acls(
        &self,
        request: Request<pb::ListAclsRequest>,
    ) -> Result<Response<pb::ListAclsResponse>, Status> {
        self.gate.require(
            &request,
            Operation::Describe,
            ResourceType::Cluster,
            CLUSTER,
        )?;
        Ok(Response::new(pb::ListAclsResponse {
            bindings: AdminServiceImpl::list_acls(self),
        }))
    }

    async fn alter_reassignments(
        &self,
        request: Request<pb::AlterReassignmentsRequest>,
    ) -> Result<Response<pb::AlterReassignmentsResponse>, Status> {
        self.alter_reassignments_call(request).await
    }

    async fn list_reassignments(
        &self,
        request: Request<pb::ListReassignmentsRequest>,
    ) -> Result<Response<pb::ListReassignmentsResponse>, Status> {
        self.list_reassignments_call(request).await
    }

    async fn rebalance(
        &self,
        request: Request<pb::RebalanceRequest>,
    ) -> Result<Response<pb::ReassignmentPlanResponse>, Status> {
        self.rebalance_call(request).await
    }

    async fn decommission_broker(
        &self,
        request: Request<pb::DecommissionBrokerRequest>,
    ) -> Result<Response<pb::ReassignmentPlanResponse>, Status> {
        self.decommission_broker_call(request).await
    }

    async fn change_voters(
        &self,
        request: Request<pb::ChangeVotersRequest>,
    ) -> Result<Response<pb::ControllerInfo>, Status> {
        self.change_voters_call(request).await
    }
}
