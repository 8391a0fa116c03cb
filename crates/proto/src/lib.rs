//! Generated protobuf and tonic code for Rill. Prost types live here and at the gRPC
//! edges only; everything else works with domain types.

#[allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("rill.v1");
}

pub mod acl;
pub mod group;
mod node_auth;
pub mod tls;

pub use node_auth::{
    ClusterSecret, NodeAuth, NodeChannel, RequireNode, CLUSTER_SECRET_KEY, CLUSTER_SECRET_MIN_LEN,
};

/// Encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rill_descriptor");

/// Largest gRPC message any Rill endpoint sends or accepts (tonic's default is 4 MiB;
/// snapshots and record batches can be larger).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Which named client listener a gRPC request came in through, by the local port that
/// accepted it (a node's listeners have distinct ports).
#[derive(Debug, Clone, Default)]
pub struct ListenerPorts(std::collections::HashMap<u16, String>);

impl ListenerPorts {
    pub fn new(ports: impl IntoIterator<Item = (u16, String)>) -> Self {
        Self(ports.into_iter().collect())
    }

    /// The listener's name, or `None` for the node's main (internal) listener.
    pub fn listener_of<T>(&self, request: &tonic::Request<T>) -> Option<&str> {
        let port = request.local_addr()?.port();
        self.0.get(&port).map(String::as_str)
    }
}

/// gRPC metadata key carrying the stable error code (e.g. `TOPIC_ALREADY_EXISTS`).
pub const ERROR_CODE_KEY: &str = "rill-error-code";

use rill_common::ErrorCode;

/// The one mapping from a Rill error code to a gRPC status: the code travels in the
/// status metadata under [`ERROR_CODE_KEY`] and leads the message.
pub fn error_status(code: ErrorCode, message: &str) -> tonic::Status {
    let grpc_code = match code {
        ErrorCode::InvalidTopicException
        | ErrorCode::InvalidPartitions
        | ErrorCode::InvalidReplicationFactor
        | ErrorCode::InvalidConfig
        | ErrorCode::InvalidRequest
        | ErrorCode::MessageTooLarge
        | ErrorCode::CorruptMessage
        | ErrorCode::OffsetOutOfRange
        | ErrorCode::InvalidRecord
        | ErrorCode::InvalidTimestamp
        | ErrorCode::InvalidRequiredAcks
        | ErrorCode::UnsupportedCompressionType => tonic::Code::InvalidArgument,
        ErrorCode::TopicAlreadyExists => tonic::Code::AlreadyExists,
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::UnknownMemberId
        | ErrorCode::GroupIdNotFound
        | ErrorCode::TransactionalIdNotFound
        | ErrorCode::ResourceNotFound => tonic::Code::NotFound,
        ErrorCode::NotController
        | ErrorCode::NotCoordinator
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::NotLeaderOrFollower
        | ErrorCode::BrokerNotAvailable
        | ErrorCode::NotEnoughReplicas => tonic::Code::Unavailable,
        ErrorCode::ClusterAuthorizationFailed
        | ErrorCode::TopicAuthorizationFailed
        | ErrorCode::GroupAuthorizationFailed
        | ErrorCode::TransactionalIdAuthorizationFailed => tonic::Code::PermissionDenied,
        ErrorCode::SaslAuthenticationFailed => tonic::Code::Unauthenticated,
        ErrorCode::RequestTimedOut => tonic::Code::DeadlineExceeded,
        ErrorCode::UnknownServerError => tonic::Code::Internal,
        _ => tonic::Code::FailedPrecondition,
    };
    let mut status = tonic::Status::new(grpc_code, format!("{code}: {message}"));
    if let Ok(value) = code.as_str().parse() {
        status.metadata_mut().insert(ERROR_CODE_KEY, value);
    }
    status
}

/// The Rill error code a status carries, if any.
pub fn status_error_code(status: &tonic::Status) -> Option<ErrorCode> {
    status
        .metadata()
        .get(ERROR_CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// HTTP/2 flow-control windows. h2's default of 64 KiB would let a single record batch
/// stall a whole connection waiting for window updates.
pub const STREAM_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
pub const CONNECTION_WINDOW_BYTES: u32 = 32 * 1024 * 1024;

pub use tls::Transport;
