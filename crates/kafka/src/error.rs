use thiserror::Error;

/// What the Kafka listener itself can fail at (request-level errors are Kafka error
/// codes in the responses, never this).
#[derive(Debug, Error)]
pub enum KafkaError {
    #[error("listener {0:?}: expected NAME://HOST:PORT or HOST:PORT")]
    BadListener(String),
    #[error("listener name {0:?} is used twice")]
    DuplicateListener(String),
    #[error("advertised listener {0:?} names no listener")]
    UnknownAdvertisedListener(String),
    #[error("binding Kafka listener {name} on {addr}: {source}")]
    Bind {
        name: String,
        addr: String,
        source: std::io::Error,
    },
}
