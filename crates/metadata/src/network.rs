//! Raft transport over tonic. Connections are lazy (a node may start before its peers);
//! a peer that cannot be reached is reported as `Unreachable` so openraft backs off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use rill_common::NodeId;
use rill_proto::v1::raft_service_client::RaftServiceClient;
use rill_proto::v1::RaftPayload;
use rill_proto::{NodeAuth, NodeChannel};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use crate::types::TypeConfig;

/// Lazily connected channels to other nodes, one per address, shared by every user on
/// a node; every call through them carries the cluster secret (`NodeAuth`) and, with TLS
/// on, the node's certificate (`Transport`).
#[derive(Clone)]
pub struct ChannelPool {
    auth: NodeAuth,
    transport: rill_proto::Transport,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl ChannelPool {
    pub fn new(auth: NodeAuth, transport: rill_proto::Transport) -> Self {
        Self {
            auth,
            transport,
            channels: Arc::default(),
        }
    }

    pub fn get(&self, addr: &str) -> Result<NodeChannel, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match channels.get(addr) {
            Some(channel) => channel.clone(),
            None => {
                let channel = self.transport.endpoint(addr)?.connect_lazy();
                channels.insert(addr.to_string(), channel.clone());
                channel
            }
        };
        Ok(NodeChannel::new(channel, self.auth.clone()))
    }
}

pub struct RaftNetworkFactoryImpl {
    pub channels: ChannelPool,
}

impl RaftNetworkFactory<TypeConfig> for RaftNetworkFactoryImpl {
    type Network = RaftPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> RaftPeer {
        let client = self
            .channels
            .get(&node.addr)
            .map(|c| {
                RaftServiceClient::new(c)
                    .max_decoding_message_size(rill_proto::MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(rill_proto::MAX_MESSAGE_BYTES)
            })
            .map_err(|e| format!("bad address {:?} for node {target}: {e}", node.addr));
        RaftPeer { target, client }
    }
}

pub struct RaftPeer {
    target: NodeId,
    client: Result<RaftServiceClient<NodeChannel>, String>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl RaftPeer {
    /// Sends one serde-encoded request and decodes the remote `Result<Resp, RaftError>`.
    async fn call<Req, Resp, E>(
        &mut self,
        method: Method,
        request: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: DeserializeOwned + std::error::Error,
    {
        let client = match &mut self.client {
            Ok(client) => client,
            Err(message) => {
                return Err(RPCError::Unreachable(Unreachable::new(&TransportError(
                    message.clone(),
                ))))
            }
        };
        let data =
            serde_json::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut grpc_request = tonic::Request::new(RaftPayload { data: data.into() });
        grpc_request.set_timeout(option.hard_ttl());
        let response = match method {
            Method::AppendEntries => client.append_entries(grpc_request).await,
            Method::Vote => client.vote(grpc_request).await,
            Method::InstallSnapshot => client.install_snapshot(grpc_request).await,
        };
        let payload = match response {
            Ok(r) => r.into_inner(),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(&status)))
            }
            Err(status) => return Err(RPCError::Network(NetworkError::new(&status))),
        };
        let result: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&payload.data)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl RaftNetwork<TypeConfig> for RaftPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.call(Method::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(Method::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.call(Method::Vote, &rpc, &option).await
    }
}
