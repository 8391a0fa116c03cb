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

/// The client's side, as a Kafka client computes it.
fn client_final(
    mechanism: ScramMechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> String {
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for attribute in server_first.split(',') {
        match attribute.split_once('=') {
            Some(("r", v)) => nonce = v,
            Some(("s", v)) => salt = BASE64.decode(v).unwrap(),
            Some(("i", v)) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let stored_key = mechanism.hash(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", BASE64.encode(proof))
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
        let client = ClientFirst::parse(b"n,,n=alice,r=abc").unwrap();
        let (exchange, first) = ServerExchange::start(&client, credential.clone(), "xyz");
        let first = String::from_utf8(first).unwrap();
        let last = client_final(mechanism, password, "n=alice,r=abc", &first);
        assert_eq!(exchange.finish(last.as_bytes()).is_ok(), ok, "{password}");
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
