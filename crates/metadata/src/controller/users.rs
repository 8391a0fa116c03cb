//! SASL/SCRAM users: the controller checks a user's credentials before they are written.
//! The log holds salted hashes only (`ScramCredential`); the password never reaches the
//! cluster (clients send `Hi(password, salt, i)`, as Kafka's AlterUserScramCredentials).

use rill_common::scram::ScramCredential;
use rill_common::ErrorCode;

use crate::model::{MetadataCommand, MetadataState};
use crate::MetadataError;

/// The longest user name accepted (bytes).
pub const MAX_USER_NAME_BYTES: usize = 256;

/// Sets `credentials` for `name` (creating the user, or replacing its credentials of the
/// same mechanisms and keeping the others).
pub fn plan_put_user(
    name: &str,
    credentials: Vec<ScramCredential>,
) -> Result<MetadataCommand, MetadataError> {
    check_name(name)?;
    if credentials.is_empty() {
        return Err(invalid("a user needs at least one credential"));
    }
    let mut mechanisms: Vec<_> = credentials.iter().map(|c| c.mechanism).collect();
    mechanisms.sort();
    mechanisms.dedup();
    if mechanisms.len() != credentials.len() {
        return Err(invalid("one credential per mechanism"));
    }
    if credentials.iter().any(|c| c.salt.is_empty()) {
        return Err(invalid("a credential needs a salt"));
    }
    Ok(MetadataCommand::PutUser {
        name: name.to_string(),
        credentials,
    })
}

pub fn plan_delete_user(
    state: &MetadataState,
    name: &str,
) -> Result<MetadataCommand, MetadataError> {
    if !state.users.contains_key(name) {
        return Err(MetadataError::rejected(
            ErrorCode::ResourceNotFound,
            format!("no user {name:?}"),
        ));
    }
    Ok(MetadataCommand::DeleteUser {
        name: name.to_string(),
    })
}

/// A name is 1-256 bytes without control characters (it is logged and shown), and not a
/// node's (`node`, `node-<id>`): those principals pass every ACL.
fn check_name(name: &str) -> Result<(), MetadataError> {
    if name == "node" || rill_proto::tls::is_node_name(name) {
        return Err(invalid(format!(
            "{name:?} is reserved for the cluster's nodes"
        )));
    }
    if name.is_empty() || name.len() > MAX_USER_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "a user name is 1 to {MAX_USER_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> MetadataError {
    MetadataError::rejected(ErrorCode::InvalidRequest, message)
}

#[cfg(test)]
mod tests {
    use rill_common::scram::ScramMechanism;

    use super::*;

    fn credential(mechanism: ScramMechanism) -> ScramCredential {
        let salted = mechanism.salted_password(b"pw", b"salt", 4096);
        ScramCredential::from_salted_password(mechanism, &salted, b"salt".to_vec(), 4096).unwrap()
    }

    #[test]
    fn a_user_is_written_with_one_credential_per_mechanism_and_updated_in_place() {
        let mut state = MetadataState::default();
        let command = plan_put_user(
            "alice",
            vec![
                credential(ScramMechanism::Sha256),
                credential(ScramMechanism::Sha512),
            ],
        )
        .unwrap();
        state.apply(command, 1).unwrap();
        assert_eq!(state.users["alice"].len(), 2);
        let replaced = credential(ScramMechanism::Sha512);
        state
            .apply(plan_put_user("alice", vec![replaced.clone()]).unwrap(), 2)
            .unwrap();
        assert_eq!(state.users["alice"].len(), 2, "the other mechanism is kept");
        state
            .apply(plan_delete_user(&state, "alice").unwrap(), 3)
            .unwrap();
        assert!(state.users.is_empty());
    }

    #[test]
    fn bad_users_are_refused_with_a_code() {
        let one = || vec![credential(ScramMechanism::Sha256)];
        for (name, credentials) in [
            ("", one()),
            ("a\nb", one()),
            (&"x".repeat(MAX_USER_NAME_BYTES + 1) as &str, one()),
            ("bob", vec![]),
            ("bob", [one(), one()].concat()),
            // Node principals pass every ACL: no user may take their names.
            ("node", one()),
            ("node-1", one()),
        ] {
            let e = plan_put_user(name, credentials).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRequest, "{name:?}");
        }
        let e = plan_delete_user(&MetadataState::default(), "nobody").unwrap_err();
        assert_eq!(e.code(), ErrorCode::ResourceNotFound);
    }
}
