//! Generated protobuf and tonic code for Rill. Prost types live here and at the gRPC
//! edges only; everything else works with domain types.

#[allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("rill.v1");
}

/// Encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rill_descriptor");

/// Largest gRPC message any Rill endpoint sends or accepts (tonic's default is 4 MiB;
/// snapshots and record batches can be larger).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// gRPC metadata key carrying the stable error code (e.g. `TOPIC_ALREADY_EXISTS`).
pub const ERROR_CODE_KEY: &str = "rill-error-code";
