use kafka_protocol::messages::ApiKey;
use rill_common::scram::ScramMechanism;

use super::*;

const ALL: &[SaslMechanism] = &[
    SaslMechanism::Plain,
    SaslMechanism::Scram(ScramMechanism::Sha256),
    SaslMechanism::Scram(ScramMechanism::Sha512),
];

fn users() -> BTreeMap<String, Vec<ScramCredential>> {
    let credentials = ScramMechanism::ALL
        .iter()
        .map(|m| {
            let salted = m.salted_password(b"pw", b"salty", 4096);
            ScramCredential::from_salted_password(*m, &salted, b"salty".to_vec(), 4096).unwrap()
        })
        .collect();
    BTreeMap::from([("alice".to_string(), credentials)])
}

#[test]
fn without_mechanisms_every_request_is_served() {
    let auth = Authentication::new(&[], None);
    assert!(auth.admits(ApiKey::Produce) && auth.admits(ApiKey::Metadata));
}

#[test]
fn without_sasl_a_client_certificate_names_the_principal_and_with_sasl_sasl_does() {
    let by_certificate = Authentication::new(&[], Some("alice".into()));
    assert_eq!(by_certificate.principal(), "User:alice");
    assert!(by_certificate.admits(ApiKey::Produce));
    assert!(!by_certificate.admits(ApiKey::SaslHandshake));
    let sasl_first = Authentication::new(ALL, Some("alice".into()));
    assert_eq!(sasl_first.principal(), "User:ANONYMOUS");
    assert!(!sasl_first.admits(ApiKey::Produce));
}

#[test]
fn before_authentication_only_api_versions_and_the_handshake_are_served() {
    let mut auth = Authentication::new(ALL, None);
    assert!(auth.admits(ApiKey::ApiVersions) && auth.admits(ApiKey::SaslHandshake));
    assert!(!auth.admits(ApiKey::Metadata) && !auth.admits(ApiKey::Produce));
    assert!(!auth.admits(ApiKey::SaslAuthenticate));
    auth.handshake("PLAIN", ALL).unwrap();
    assert!(auth.admits(ApiKey::SaslAuthenticate) && !auth.admits(ApiKey::Metadata));
}

#[test]
fn plain_with_the_right_password_authenticates() {
    let mut auth = Authentication::new(ALL, None);
    auth.handshake("PLAIN", ALL).unwrap();
    let step = auth.authenticate(b"\0alice\0pw", &users(), "n").unwrap();
    assert!(matches!(step, Step::Done { ref user, .. } if user == "alice"));
    assert_eq!(auth.principal(), "User:alice");
    assert!(auth.admits(ApiKey::Produce));
    assert!(!auth.admits(ApiKey::SaslHandshake));
}

#[test]
fn a_wrong_password_or_unknown_user_fails_alike_and_closes_the_session() {
    for message in [&b"\0alice\0nope"[..], b"\0mallory\0pw"] {
        let mut auth = Authentication::new(ALL, None);
        auth.handshake("PLAIN", ALL).unwrap();
        let refused = auth.authenticate(message, &users(), "n").unwrap_err();
        assert_eq!(refused.code, ErrorCode::SaslAuthenticationFailed);
        assert_eq!(refused.message, INVALID_CREDENTIALS);
        assert!(!auth.admits(ApiKey::ApiVersions) && !auth.admits(ApiKey::Produce));
    }
}

#[test]
fn a_mechanism_not_enabled_is_refused_with_its_code() {
    let enabled = [SaslMechanism::Scram(ScramMechanism::Sha512)];
    let mut auth = Authentication::new(&enabled, None);
    let refused = auth.handshake("PLAIN", &enabled).unwrap_err();
    assert_eq!(refused.code, ErrorCode::UnsupportedSaslMechanism);
    let mut auth = Authentication::new(&enabled, None);
    let refused = auth.handshake("GSSAPI", &enabled).unwrap_err();
    assert_eq!(refused.code, ErrorCode::UnsupportedSaslMechanism);
}

#[test]
fn authenticate_before_a_handshake_is_an_illegal_state() {
    let mut auth = Authentication::new(ALL, None);
    let refused = auth
        .authenticate(b"\0alice\0pw", &users(), "n")
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::IllegalSaslState);
}

#[test]
fn scram_sha_512_takes_two_steps_and_refuses_a_bad_proof() {
    let mut auth = Authentication::new(ALL, None);
    auth.handshake("SCRAM-SHA-512", ALL).unwrap();
    let Step::Continue(first) = auth
        .authenticate(b"n,,n=alice,r=abc", &users(), "srv")
        .unwrap()
    else {
        panic!("SCRAM's first step continues");
    };
    assert!(String::from_utf8(first).unwrap().starts_with("r=abcsrv,s="));
    assert!(!auth.admits(ApiKey::Metadata));
    let refused = auth
        .authenticate(b"c=biws,r=abcsrv,p=AAAA", &users(), "srv")
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SaslAuthenticationFailed);
    assert_eq!(refused.user.as_deref(), Some("alice"));
    assert!(matches!(auth, Authentication::Failed));
    assert_eq!(auth.principal(), "User:ANONYMOUS");
}

#[test]
fn scram_for_an_unknown_user_fails_at_the_first_step() {
    let mut auth = Authentication::new(ALL, None);
    auth.handshake("SCRAM-SHA-256", ALL).unwrap();
    let refused = auth
        .authenticate(b"n,,n=mallory,r=abc", &users(), "srv")
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SaslAuthenticationFailed);
}
