//! AdminService: cluster and topic administration. Reads come from this node's replica
//! of the metadata; writes go to the active controller through `submit`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rill_metadata::controller::config;
use rill_metadata::grpc::status;
use rill_metadata::{ControllerRequest, MetadataError, MetadataNode, Topic};
use rill_proto::v1 as pb;
use rill_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

pub struct AdminServiceImpl {
    metadata: Arc<MetadataNode>,
}

impl AdminServiceImpl {
    pub fn new(metadata: Arc<MetadataNode>) -> Self {
        Self { metadata }
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

    async fn submit(&self, request: ControllerRequest) -> Result<(), Status> {
        self.metadata
            .submit(request)
            .await
            .map(|_| ())
            .map_err(|e: MetadataError| status(&e))
    }
}

fn describe_topic(topic: &Topic) -> pb::TopicDescription {
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
                // Partition logs come with the data path; until then they are empty.
                high_watermark: 0,
                log_end_offset: 0,
                log_start_offset: 0,
            })
            .collect(),
        error_code: String::new(),
    }
}

#[tonic::async_trait]
impl AdminService for AdminServiceImpl {
    async fn describe_cluster(
        &self,
        _request: Request<pb::DescribeClusterRequest>,
    ) -> Result<Response<pb::DescribeClusterResponse>, Status> {
        let state = self.metadata.state();
        let info = self.metadata.controller_info();
        Ok(Response::new(pb::DescribeClusterResponse {
            cluster_id: state.cluster_id.clone().unwrap_or_default(),
            controller: Some(pb::ControllerInfo {
                leader_id: info.leader_id,
                term: info.term,
                voters: info.voters,
                learners: info.learners,
            }),
            brokers: state
                .brokers
                .values()
                .map(|b| pb::BrokerInfo {
                    id: b.id,
                    addr: b.addr.clone(),
                    state: if b.fenced { "fenced" } else { "alive" }.to_string(),
                    epoch: b.epoch,
                })
                .collect(),
        }))
    }

    async fn create_topics(
        &self,
        request: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        let mut results = Vec::new();
        for topic in request.into_inner().topics {
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
        for name in request.into_inner().names {
            let delete = ControllerRequest::DeleteTopic { name: name.clone() };
            results.push(self.submit_item(name, delete).await);
        }
        Ok(Response::new(pb::DeleteTopicsResponse { results }))
    }

    async fn list_topics(
        &self,
        _request: Request<pb::ListTopicsRequest>,
    ) -> Result<Response<pb::ListTopicsResponse>, Status> {
        let names = self.metadata.state().topics.keys().cloned().collect();
        Ok(Response::new(pb::ListTopicsResponse { names }))
    }

    async fn describe_topics(
        &self,
        request: Request<pb::DescribeTopicsRequest>,
    ) -> Result<Response<pb::DescribeTopicsResponse>, Status> {
        let state = self.metadata.state();
        let names = request.into_inner().names;
        let topics = if names.is_empty() {
            state.topics.values().map(describe_topic).collect()
        } else {
            names
                .into_iter()
                .map(|name| match state.topics.get(&name) {
                    Some(topic) => describe_topic(topic),
                    None => pb::TopicDescription {
                        name,
                        error_code: rill_common::ErrorCode::UnknownTopicOrPartition.to_string(),
                        ..Default::default()
                    },
                })
                .collect()
        };
        Ok(Response::new(pb::DescribeTopicsResponse { topics }))
    }

    async fn create_partitions(
        &self,
        request: Request<pb::CreatePartitionsRequest>,
    ) -> Result<Response<pb::CreatePartitionsResponse>, Status> {
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
        let r = request.into_inner();
        self.submit(ControllerRequest::AlterConfigs {
            name: r.topic,
            configs: r.configs.into_iter().collect(),
        })
        .await?;
        Ok(Response::new(pb::AlterConfigsResponse {}))
    }
}
