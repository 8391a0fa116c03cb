//! The broker crate's gRPC edge: BrokerService. Prost types stop here.

mod broker_service;

pub use broker_service::{BrokerServiceImpl, ProducerIdSource};

use crate::BrokerError;

/// The one conversion of a broker error into a gRPC status.
pub fn status(error: &BrokerError) -> tonic::Status {
    rill_proto::error_status(error.code(), &error.message())
}
