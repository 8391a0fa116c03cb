//! Topic configuration keys, their validation and their defaults (Kafka's names).

use std::collections::BTreeMap;

use rill_common::ErrorCode;

use crate::MetadataError;

pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
pub const RETENTION_MS: &str = "retention.ms";
pub const RETENTION_BYTES: &str = "retention.bytes";
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";
/// Batches are stored as produced: only `producer` (keep the producer's codec) is served.
pub const COMPRESSION_TYPE: &str = "compression.type";

/// Kafka's defaults: retention 7 days, unlimited bytes, 1 MiB messages.
const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
const DEFAULT_MAX_MESSAGE_BYTES: i64 = 1_048_588;

/// Default `min.insync.replicas`: 2 when the replication factor is at least 3, else 1.
pub fn default_min_insync_replicas(replication_factor: usize) -> i64 {
    if replication_factor >= 3 {
        2
    } else {
        1
    }
}

/// Validates overrides for a topic with the given replication factor.
pub fn validate(
    configs: &BTreeMap<String, String>,
    replication_factor: usize,
) -> Result<(), MetadataError> {
    for (key, value) in configs {
        match key.as_str() {
            MIN_INSYNC_REPLICAS => {
                let v = parse_int(key, value, 1)?;
                if v > replication_factor as i64 {
                    return Err(invalid(format!(
                        "{key}={v} exceeds the replication factor {replication_factor}"
                    )));
                }
            }
            RETENTION_MS | RETENTION_BYTES => {
                parse_int(key, value, -1)?;
            }
            MAX_MESSAGE_BYTES => {
                parse_int(key, value, 0)?;
            }
            UNCLEAN_LEADER_ELECTION => {
                if value != "true" && value != "false" {
                    return Err(invalid(format!(
                        "{key} must be true or false, got '{value}'"
                    )));
                }
            }
            COMPRESSION_TYPE => {
                if value != "producer" {
                    return Err(invalid(format!(
                        "{key} must be producer (batches are stored as produced), got '{value}'"
                    )));
                }
            }
            _ => return Err(invalid(format!("unknown topic config '{key}'"))),
        }
    }
    Ok(())
}

/// Overrides merged over the defaults: every known key with its value in force.
pub fn effective(
    overrides: &BTreeMap<String, String>,
    replication_factor: usize,
) -> BTreeMap<String, String> {
    let mut all = BTreeMap::from([
        (
            MIN_INSYNC_REPLICAS.to_string(),
            default_min_insync_replicas(replication_factor).to_string(),
        ),
        (RETENTION_MS.to_string(), DEFAULT_RETENTION_MS.to_string()),
        (RETENTION_BYTES.to_string(), "-1".to_string()),
        (
            MAX_MESSAGE_BYTES.to_string(),
            DEFAULT_MAX_MESSAGE_BYTES.to_string(),
        ),
        (UNCLEAN_LEADER_ELECTION.to_string(), "false".to_string()),
        (COMPRESSION_TYPE.to_string(), "producer".to_string()),
    ]);
    all.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// The `min.insync.replicas` in force for a topic (at least 1).
pub fn min_insync_replicas(
    overrides: &BTreeMap<String, String>,
    replication_factor: usize,
) -> usize {
    overrides
        .get(MIN_INSYNC_REPLICAS)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| default_min_insync_replicas(replication_factor) as usize)
        .max(1)
}

/// Whether `unclean.leader.election.enable` is on for a topic (default false).
pub fn unclean_leader_election(overrides: &BTreeMap<String, String>) -> bool {
    overrides
        .get(UNCLEAN_LEADER_ELECTION)
        .is_some_and(|v| v == "true")
}

fn parse_int(key: &str, value: &str, min: i64) -> Result<i64, MetadataError> {
    let v: i64 = value
        .parse()
        .map_err(|_| invalid(format!("{key} must be an integer, got '{value}'")))?;
    if v < min {
        return Err(invalid(format!("{key} must be at least {min}, got {v}")));
    }
    Ok(v)
}

fn invalid(message: String) -> MetadataError {
    MetadataError::rejected(ErrorCode::InvalidConfig, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepts_known_keys_with_valid_values() {
        let c = configs(&[
            ("min.insync.replicas", "2"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1000"),
            ("max.message.bytes", "2048"),
            ("unclean.leader.election.enable", "true"),
        ]);
        assert!(validate(&c, 3).is_ok());
    }

    #[test]
    fn rejects_bad_keys_and_values_with_invalid_config() {
        for bad in [
            configs(&[("no.such.key", "1")]),
            configs(&[("min.insync.replicas", "0")]),
            configs(&[("min.insync.replicas", "4")]),
            configs(&[("retention.ms", "soon")]),
            configs(&[("retention.bytes", "-2")]),
            configs(&[("unclean.leader.election.enable", "yes")]),
        ] {
            let err = validate(&bad, 3).err().map(|e| e.code());
            assert_eq!(err, Some(ErrorCode::InvalidConfig), "{bad:?}");
        }
    }

    #[test]
    fn effective_configs_fill_defaults_that_depend_on_replication_factor() {
        assert_eq!(effective(&BTreeMap::new(), 3)[MIN_INSYNC_REPLICAS], "2");
        assert_eq!(effective(&BTreeMap::new(), 2)[MIN_INSYNC_REPLICAS], "1");
        let c = configs(&[("retention.ms", "5")]);
        assert_eq!(effective(&c, 1)[RETENTION_MS], "5");
    }
}
