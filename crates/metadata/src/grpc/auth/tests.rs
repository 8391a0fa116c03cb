use std::sync::Arc;

use rill_common::scram::{ScramClient, ScramCredential, ScramMechanism, SessionToken};
use rill_common::ErrorCode;
use rill_proto::v1::auth_service_server::AuthService;
use rill_proto::v1::AuthenticateRequest;
use rill_proto::{ClusterSecret, NodeAuth, CLUSTER_SECRET_KEY};
use tonic::service::Interceptor;
use tonic::Request;

use super::*;
use crate::model::MetadataState;

const MECHANISM: ScramMechanism = ScramMechanism::Sha512;

fn state_with_alice() -> StateWatch {
    let salt = b"alice's salt".to_vec();
    let salted = MECHANISM.salted_password(b"wonderland", &salt, 4096);
    let credential = ScramCredential::from_salted_password(MECHANISM, &salted, salt, 4096).unwrap();
    let mut state = MetadataState::default();
    state.users.insert("alice".into(), vec![credential]);
    tokio::sync::watch::channel(Arc::new(state)).1
}

/// Runs the two calls of an exchange; the token, or the refusal's code.
async fn exchange(
    service: &AuthServiceImpl,
    user: &str,
    password: &str,
) -> Result<String, ErrorCode> {
    let code = |s: Status| rill_proto::status_error_code(&s).unwrap();
    let client = ScramClient::new(MECHANISM, user, "clientnonce");
    let first = service
        .authenticate(Request::new(AuthenticateRequest {
            mechanism: MECHANISM.name().into(),
            message: client.client_first().into(),
            exchange_id: 0,
        }))
        .await
        .map_err(code)?
        .into_inner();
    let last = client.respond(&first.message, password.as_bytes()).unwrap();
    let done = service
        .authenticate(Request::new(AuthenticateRequest {
            mechanism: String::new(),
            message: last.message.clone().into(),
            exchange_id: first.exchange_id,
        }))
        .await
        .map_err(code)?
        .into_inner();
    last.verify_server(&done.message).unwrap();
    assert!(done.token_expires_ms > now_ms());
    Ok(done.token)
}

fn principal(auth: &mut Authentication, request: Request<()>) -> Result<String, ErrorCode> {
    auth.call(request)
        .map(|r| caller_of(&r))
        .map_err(|s| rill_proto::status_error_code(&s).unwrap())
}

fn caller_of(request: &Request<()>) -> String {
    crate::access::caller(request).to_string()
}

fn bearer(token: &str) -> Request<()> {
    let mut request = Request::new(());
    request.metadata_mut().insert(
        AUTHORIZATION_KEY,
        format!("Bearer {token}").parse().unwrap(),
    );
    request
}

#[tokio::test]
async fn a_scram_exchange_gives_a_token_that_names_the_caller() {
    let state = state_with_alice();
    let service = AuthServiceImpl::new(state.clone(), vec![MECHANISM]);
    let token = exchange(&service, "alice", "wonderland").await.unwrap();
    let mut auth = Authentication::new(state, NodeAuth::default(), true);
    assert_eq!(principal(&mut auth, bearer(&token)).unwrap(), "User:alice");
}

#[tokio::test]
async fn wrong_passwords_unknown_users_and_disabled_mechanisms_are_refused() {
    let service = AuthServiceImpl::new(state_with_alice(), vec![MECHANISM]);
    assert_eq!(
        exchange(&service, "alice", "looking glass").await,
        Err(ErrorCode::SaslAuthenticationFailed)
    );
    assert_eq!(
        exchange(&service, "bob", "wonderland").await,
        Err(ErrorCode::SaslAuthenticationFailed)
    );
    let sha256_only = AuthServiceImpl::new(state_with_alice(), vec![ScramMechanism::Sha256]);
    assert_eq!(
        exchange(&sha256_only, "alice", "wonderland").await,
        Err(ErrorCode::UnsupportedSaslMechanism)
    );
    // A second call for an exchange that is not waiting.
    let unknown = service
        .authenticate(Request::new(AuthenticateRequest {
            mechanism: String::new(),
            message: b"c=biws,r=x,p=AAAA".to_vec().into(),
            exchange_id: 42,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        rill_proto::status_error_code(&unknown),
        Some(ErrorCode::IllegalSaslState)
    );
}

#[test]
fn forged_expired_and_revoked_tokens_are_refused() {
    let state = state_with_alice();
    let alice = state.borrow().users["alice"][0].clone();
    let mut auth = Authentication::new(state, NodeAuth::default(), false);
    let expired = SessionToken::issue("alice", &alice, now_ms() - 1);
    let other_key =
        ScramCredential::from_salted_password(MECHANISM, b"other", b"s".to_vec(), 4096).unwrap();
    let forged = SessionToken::issue("alice", &other_key, now_ms() + 60_000);
    let unknown_user = SessionToken::issue("mallory", &alice, now_ms() + 60_000);
    for token in [expired.as_str(), &forged, &unknown_user, "garbage"] {
        assert_eq!(
            principal(&mut auth, bearer(token)),
            Err(ErrorCode::SaslAuthenticationFailed),
            "{token}"
        );
    }
}

#[test]
fn without_credentials_a_caller_is_anonymous_unless_security_is_on() {
    let secret = ClusterSecret::new("a-cluster-secret-of-some-length").unwrap();
    let node_auth = NodeAuth::new(Some(secret), false);
    let mut open = Authentication::new(state_with_alice(), node_auth.clone(), false);
    assert_eq!(principal(&mut open, Request::new(())).unwrap(), ANONYMOUS);
    let mut secure = Authentication::new(state_with_alice(), node_auth, true);
    assert_eq!(
        principal(&mut secure, Request::new(())),
        Err(ErrorCode::SaslAuthenticationFailed)
    );
    let mut from_node = Request::new(());
    from_node.metadata_mut().insert(
        CLUSTER_SECRET_KEY,
        "a-cluster-secret-of-some-length".parse().unwrap(),
    );
    assert_eq!(principal(&mut secure, from_node).unwrap(), CLUSTER_NODE);
    let mut wrong_secret = Request::new(());
    wrong_secret.metadata_mut().insert(
        CLUSTER_SECRET_KEY,
        "not-the-cluster-secret-at-all".parse().unwrap(),
    );
    assert_eq!(
        principal(&mut secure, wrong_secret),
        Err(ErrorCode::SaslAuthenticationFailed)
    );
}
