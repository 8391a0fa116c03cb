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

/// The one conversion of committed offsets between protobuf and the metadata model.
impl From<rill_proto::v1::PartitionOffset> for crate::OffsetCommit {
    fn from(o: rill_proto::v1::PartitionOffset) -> Self {
        Self {
            topic: o.topic,
            partition: o.partition,
            offset: o.offset,
            metadata: o.metadata,
        }
    }
}

impl From<crate::OffsetCommit> for rill_proto::v1::PartitionOffset {
    fn from(o: crate::OffsetCommit) -> Self {
        Self {
            topic: o.topic,
            partition: o.partition,
            offset: o.offset,
            metadata: o.metadata,
        }
    }
}
