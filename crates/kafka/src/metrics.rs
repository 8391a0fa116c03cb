//! What a Kafka operator looks for: requests by API and version, their latency, errors
//! by code, open connections, and connections closed for bad frames. Per-topic records
//! and bytes are counted by the broker, for both protocols.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use rill_common::ErrorCode;

pub(crate) fn request(key: ApiKey, version: i16, elapsed: Duration) {
    let api = format!("{key:?}");
    metrics::counter!("rill_kafka_requests_total", "api" => api.clone(), "version" => version.to_string())
        .increment(1);
    metrics::histogram!("rill_kafka_request_duration_seconds", "api" => api)
        .record(elapsed.as_secs_f64());
}

pub(crate) fn error(code: ErrorCode) {
    metrics::counter!("rill_kafka_errors_total", "code" => code.as_str()).increment(1);
}

pub(crate) fn connection_opened(listener: &str) {
    metrics::gauge!("rill_kafka_connections", "listener" => listener.to_string()).increment(1.0);
}

pub(crate) fn connection_closed(listener: &str) {
    metrics::gauge!("rill_kafka_connections", "listener" => listener.to_string()).decrement(1.0);
}

/// A connection closed because of what the client sent (malformed, oversized, unknown).
pub(crate) fn refused_frame(reason: &'static str) {
    metrics::counter!("rill_kafka_refused_frames_total", "reason" => reason).increment(1);
}

/// A SASL authentication that succeeded or failed (by mechanism; never a name or secret).
pub(crate) fn authentication(mechanism: &str, succeeded: bool) {
    let mechanism = crate::sasl::SaslMechanism::from_name(mechanism)
        .map_or("unknown", crate::sasl::SaslMechanism::name);
    let result = if succeeded { "success" } else { "failure" };
    metrics::counter!("rill_kafka_authentications_total", "mechanism" => mechanism, "result" => result)
        .increment(1);
}

/// A connection whose TLS handshake failed (plaintext, or a certificate of another CA).
pub(crate) fn tls_handshake_failed() {
    metrics::counter!("rill_kafka_tls_handshake_failures_total").increment(1);
}

/// A request refused because its connection has not authenticated.
pub(crate) fn unauthenticated_request(key: ApiKey) {
    metrics::counter!("rill_kafka_unauthenticated_requests_total", "api" => format!("{key:?}"))
        .increment(1);
}
