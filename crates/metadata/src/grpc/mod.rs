//! The metadata crate's gRPC edges: RaftService and ControllerService servers. Prost
//! types stop here.

mod controller_service;
mod raft_service;

pub use controller_service::ControllerServiceImpl;
pub use raft_service::RaftServiceImpl;

use crate::MetadataError;

/// The one conversion of a metadata error into a gRPC status.
pub fn status(error: &MetadataError) -> tonic::Status {
    rill_proto::error_status(error.code(), &error.message())
}
