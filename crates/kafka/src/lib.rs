//! The Kafka wire-protocol listener: unmodified Kafka clients (librdkafka, the Java
//! client, kafka-python, kcat) produce, fetch, read metadata and administer topics
//! through it.
//!
//! # Layout
//! - `frame`: size-prefixed frames (bounded, read as bytes arrive) and request headers.
//! - `walk`: every body is walked against its layout before kafka-protocol decodes it.
//! - `versions`: the APIs and versions served (ApiVersions says exactly these).
//! - `server`: the accept loop and one task per connection; requests are handled one at
//!   a time, so appends happen and responses go out in request order.
//! - `handlers/`: one file per API (or family); each translates to the broker, metadata
//!   and controller calls the gRPC services make too, and decides nothing of its own.
//!
//! **Invariant:** kafka-protocol types never leave this crate, and it never imports
//! rill-proto or tonic.

mod consumer_protocol;
mod frame;
mod handlers;
mod metrics;
mod sasl;
mod server;
mod versions;
pub(crate) mod walk;

pub use handlers::{Backends, KafkaSettings};
pub use sasl::SaslMechanism;
pub use server::serve;
pub use versions::SERVED;
