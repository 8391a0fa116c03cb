//! The metadata crate's gRPC edges: RaftService, ControllerService and AuthService
//! servers, and the authentication layer of the client services. Prost
//! types stop here.

mod auth;
mod controller_service;
mod raft_service;

pub use auth::{AuthServiceImpl, Authentication, AUTHORIZATION_KEY, SESSION_TOKEN_LIFETIME};
pub use controller_service::ControllerServiceImpl;
pub use raft_service::RaftServiceImpl;

use crate::MetadataError;

/// The one conversion of a metadata error into a gRPC status.
pub fn status(error: &MetadataError) -> tonic::Status {
    rill_proto::error_status(error.code(), &error.message())
}
