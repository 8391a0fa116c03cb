use super::*;

/// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_credential(password: &str) -> ScramCredential {
    let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let mechanism = ScramMechanism::Sha256;
    let salted = mechanism.salted_password(password.as_bytes(), &salt, 4096);
    ScramCredential::from_salted_password(mechanism, &salted, salt, 4096).unwrap()
}

#[test]
fn the_rfc_7677_exchange_succeeds_with_its_server_signature() {
    let client = ClientFirst::parse(CLIENT_FIRST.as_bytes()).unwrap();
    assert_eq!(client.username, "user");
    let (exchange, first) = ServerExchange::start(&client, rfc_credential("pencil"), SERVER_NONCE);
    assert_eq!(String::from_utf8(first).unwrap(), SERVER_FIRST);
    let last = exchange.finish(CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(last).unwrap(), SERVER_FINAL);
}

#[test]
fn a_proof_made_from_another_password_is_refused() {
    let client = ClientFirst::parse(CLIENT_FIRST.as_bytes()).unwrap();
    let (exchange, _) = ServerExchange::start(&client, rfc_credential("pencils"), SERVER_NONCE);
    assert_eq!(
        exchange.finish(CLIENT_FINAL.as_bytes()),
        Err(ScramError::InvalidCredentials)
    );
}

#[test]
fn a_replayed_proof_with_another_nonce_is_refused() {
    let client = ClientFirst::parse(CLIENT_FIRST.as_bytes()).unwrap();
    let (exchange, _) = ServerExchange::start(&client, rfc_credential("pencil"), "fresh");
    assert_eq!(
        exchange.finish(CLIENT_FINAL.as_bytes()),
        Err(ScramError::InvalidCredentials)
    );
}

#[test]
fn scram_sha_512_round_trips_and_checks_the_password() {
    let mechanism = ScramMechanism::Sha512;
    let salt = b"a salt of sixteen".to_vec();
    let salted = mechanism.salted_password(b"s3cret", &salt, 4096);
    let credential = ScramCredential::from_salted_password(mechanism, &salted, salt, 4096).unwrap();
    assert!(credential.verify_password(b"s3cret"));
    assert!(!credential.verify_password(b"s3cret!"));
    for (password, ok) in [("s3cret", true), ("wrong", false)] {
        let client = ScramClient::new(mechanism, "alice", "abc");
        let first = ClientFirst::parse(&client.client_first()).unwrap();
        let (exchange, server_first) = ServerExchange::start(&first, credential.clone(), "xyz");
        let last = client.respond(&server_first, password.as_bytes()).unwrap();
        let server_final = exchange.finish(&last.message);
        assert_eq!(server_final.is_ok(), ok, "{password}");
        if let Ok(server_final) = server_final {
            last.verify_server(&server_final).unwrap();
            assert!(last.verify_server(b"v=AAAA").is_err());
        }
    }
}

#[test]
fn credentials_outside_kafkas_iteration_bounds_are_refused() {
    for iterations in [MIN_ITERATIONS - 1, MAX_ITERATIONS + 1] {
        assert_eq!(
            ScramCredential::from_salted_password(
                ScramMechanism::Sha256,
                b"x",
                vec![1],
                iterations
            ),
            Err(ScramError::Iterations)
        );
    }
}

#[test]
fn malformed_client_messages_are_refused() {
    for message in [
        &b""[..],
        b"p=tls-unique,,n=user,r=abc",
        b"n,,r=abc",
        b"n,,n=user",
        b"n,,n=us=XXer,r=abc",
        b"n,a=other,n=user,r=abc",
        b"n,,m=ext,n=user,r=abc",
        b"\xff\xfe",
    ] {
        assert!(ClientFirst::parse(message).is_err(), "{message:?}");
    }
    let client = ClientFirst::parse(b"n,,n=a=2Cb=3Dc,r=abc").unwrap();
    assert_eq!(client.username, "a,b=c");
}

#[test]
fn plain_messages_name_the_user_and_password() {
    assert_eq!(
        parse_plain(b"\0alice\0pw").unwrap(),
        ("alice".to_string(), b"pw".to_vec())
    );
    assert!(parse_plain(b"alice\0pw").is_err());
    assert!(parse_plain(b"bob\0alice\0pw").is_err());
    assert!(parse_plain(b"\0\0pw").is_err());
}

#[test]
fn a_credential_never_prints_its_keys() {
    let text = format!("{:?}", rfc_credential("pencil"));
    assert!(
        !text.contains("stored_key") && !text.contains("salt:"),
        "{text}"
    );
}
