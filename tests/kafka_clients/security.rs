//! SASL on the Kafka listener: users made with `rill user create` (password on stdin)
//! authenticate with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN from confluent-kafka and
//! kafka-python; a wrong password, an unknown or deleted user and a client without SASL
//! are refused; the audit log and metrics count the failures and never hold a password.

use std::time::Duration;

use anyhow::ensure;
use serde_json::Value;

use super::common::{with_cluster, with_tls_cluster};
use super::script;

const PASSWORD: &str = "correct horse battery staple";
const WRONG_PASSWORD: &str = "wrong-password-42";

/// Runs a SASL client script; its JSON verdict.
fn client(
    script_name: &str,
    bootstrap: &str,
    mechanism: &str,
    user: &str,
    password: &str,
    topic: &str,
) -> anyhow::Result<Value> {
    script(
        script_name,
        &[bootstrap, mechanism, user, password, topic, "20"],
    )
}

/// The client produced 20 records and read back every one.
fn served(verdict: &Value, what: &str) -> anyhow::Result<()> {
    ensure!(verdict["error"].is_null(), "{what} was refused: {verdict}");
    ensure!(verdict["acked"] == 20, "{what}: {verdict}");
    let read = verdict["read"].as_array().map_or(0, Vec::len);
    ensure!(read >= 20, "{what} read {read} records: {verdict}");
    Ok(())
}

fn refused(verdict: &Value, what: &str) -> anyhow::Result<()> {
    ensure!(verdict["error"].is_string(), "{what} was served: {verdict}");
    Ok(())
}

#[test]
fn kafka_clients_authenticate_with_scram_and_plain_and_bad_credentials_are_refused() {
    let mechanisms = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN";
    with_cluster(3, &["--sasl-enabled-mechanisms", mechanisms], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        let bootstrap = c.kafka_bootstrap();
        let input = format!("{PASSWORD}\n");
        let out = c.rill_with_input(&["user", "create", "alice"], input.as_bytes())?;
        ensure!(out.status.success(), "user create: {out:?}");
        let listed = c.json(&["user", "list"])?;
        let text = listed.to_string();
        ensure!(
            text.contains("SCRAM-SHA-256") && text.contains("SCRAM-SHA-512"),
            "{text}"
        );
        ensure!(!text.contains(PASSWORD) && !text.contains("key"), "{text}");
        c.create_topic("secured", 3, 3, &[])?;

        let ck = "ck_sasl.py";
        for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
            let verdict = client(ck, &bootstrap, mechanism, "alice", PASSWORD, "secured")?;
            served(&verdict, &format!("confluent-kafka {mechanism}"))?;
        }
        let verdict = client(
            "kp_sasl.py",
            &bootstrap,
            "SCRAM-SHA-256",
            "alice",
            PASSWORD,
            "secured",
        )?;
        served(&verdict, "kafka-python SCRAM-SHA-256")?;

        let wrong = client(
            ck,
            &bootstrap,
            "SCRAM-SHA-512",
            "alice",
            WRONG_PASSWORD,
            "secured",
        )?;
        refused(&wrong, "a wrong password")?;
        refused(
            &client(ck, &bootstrap, "PLAIN", "alice", WRONG_PASSWORD, "secured")?,
            "a wrong PLAIN password",
        )?;
        refused(
            &client(
                ck,
                &bootstrap,
                "SCRAM-SHA-256",
                "mallory",
                PASSWORD,
                "secured",
            )?,
            "an unknown user",
        )?;
        refused(
            &client(ck, &bootstrap, "none", "", "", "secured")?,
            "a client without SASL",
        )?;

        let out = c.rill(&["user", "delete", "alice"])?;
        ensure!(out.status.success(), "user delete: {out:?}");
        refused(
            &client(
                ck,
                &bootstrap,
                "SCRAM-SHA-512",
                "alice",
                PASSWORD,
                "secured",
            )?,
            "a deleted user",
        )?;
        let out = c.rill(&["user", "delete", "alice"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && stderr.contains("RESOURCE_NOT_FOUND"),
            "{stderr}"
        );

        // Audit: failures are logged and counted; no password is ever written.
        let mut failures = 0.0;
        for id in 1..=3 {
            let log = c.node_log(id);
            ensure!(
                !log.contains(PASSWORD) && !log.contains(WRONG_PASSWORD),
                "node {id} logged a password"
            );
            failures += c.metric(id, "rill_kafka_authentications_total")?;
        }
        let logs: String = (1..=3).map(|id| c.node_log(id)).collect();
        ensure!(
            logs.contains("SASL authentication failed"),
            "no audit line for the failures"
        );
        ensure!(failures >= 4.0, "authentications counted: {failures}");
        Ok(())
    });
}

/// A gRPC channel to `addr` over TLS, trusting `ca` and presenting `client` (if any).
async fn tls_channel(
    ca: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
    addr: &str,
) -> anyhow::Result<tonic::transport::Channel> {
    let files = rill_proto::tls::TlsFiles::read(ca, client)?;
    Ok(rill_proto::Transport::tls(&files)
        .endpoint(addr)?
        .connect()
        .await?)
}

#[test]
fn with_tls_only_clients_of_the_clusters_ca_get_in_and_only_nodes_reach_the_internal_services() {
    with_tls_cluster(3, &["--sasl-enabled-mechanisms", "SCRAM-SHA-512"], |c| {
        // The harness's own calls (admin certificate) and /readyz over HTTPS work.
        c.wait_ready(Duration::from_secs(30))?;
        let tls = c
            .tls_dir()
            .ok_or_else(|| anyhow::anyhow!("a TLS cluster"))?
            .to_path_buf();
        c.create_topic("sealed", 3, 3, &[])?;
        let lines: String = (0..50).map(|i| format!("r{i}\n")).collect();
        let out = c.rill_with_input(&["produce", "sealed", "--acks", "all"], lines.as_bytes())?;
        ensure!(out.status.success(), "produce over TLS: {out:?}");
        let read = c.consume_values("sealed", None)?;
        ensure!(read.len() == 50, "read {} of 50 over TLS", read.len());

        // Refused: a plaintext client, no client certificate, another CA's certificate.
        let plain = std::process::Command::new(super::common::RILL)
            .args(["cluster", "describe", "--bootstrap", &c.bootstrap()])
            .output()?;
        ensure!(!plain.status.success(), "a plaintext client was served");
        let no_cert = std::process::Command::new(super::common::RILL)
            .args([
                "cluster",
                "describe",
                "--bootstrap",
                &c.bootstrap(),
                "--tls-ca",
            ])
            .arg(tls.join("ca.pem"))
            .output()?;
        ensure!(
            !no_cert.status.success(),
            "a client without a certificate was served"
        );
        let other = c.scratch("other-ca");
        let made = std::process::Command::new(super::common::RILL)
            .args(["certs", "--nodes", "1", "--dir"])
            .arg(&other)
            .output()?;
        ensure!(made.status.success(), "rill certs: {made:?}");
        let foreign = std::process::Command::new(super::common::RILL)
            .args(["cluster", "describe", "--bootstrap", &c.bootstrap()])
            .arg("--tls-ca")
            .arg(tls.join("ca.pem"))
            .arg("--tls-cert")
            .arg(other.join("admin.pem"))
            .arg("--tls-key")
            .arg(other.join("admin-key.pem"))
            .output()?;
        ensure!(
            !foreign.status.success(),
            "another CA's certificate was served"
        );

        // A client certificate of the cluster's CA, even with the cluster secret, is not a
        // node's: the internal services refuse it and the term does not move.
        let term = c.json(&["cluster", "describe"])?["controller"]["term"].clone();
        let secret = std::fs::read_to_string(c.secret_path())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let admin = (tls.join("admin.pem"), tls.join("admin-key.pem"));
            let channel = tls_channel(
                &tls.join("ca.pem"),
                Some((&admin.0, &admin.1)),
                &c.node_addr(1),
            )
            .await?;
            let mut raft = rill_proto::v1::raft_service_client::RaftServiceClient::new(channel);
            let vote = serde_json::json!({
                "vote": {"leader_id": {"term": 1000, "node_id": 2}, "committed": false},
                "last_log_id": null
            });
            let mut request = tonic::Request::new(rill_proto::v1::RaftPayload {
                data: serde_json::to_vec(&vote)?.into(),
            });
            request
                .metadata_mut()
                .insert(rill_proto::CLUSTER_SECRET_KEY, secret.trim().parse()?);
            let refused = raft.vote(request).await.err();
            let code = refused.as_ref().and_then(rill_proto::status_error_code);
            ensure!(
                code == Some(rill_common::ErrorCode::ClusterAuthorizationFailed),
                "a client certificate voted: {refused:?}"
            );
            anyhow::Ok(())
        })?;
        let after = c.json(&["cluster", "describe"])?["controller"]["term"].clone();
        ensure!(term == after, "the term moved from {term} to {after}");

        // Kafka: SASL_SSL with SCRAM-SHA-512 is served; plaintext is refused.
        let input = format!("{PASSWORD}\n");
        let out = c.rill_with_input(&["user", "create", "alice"], input.as_bytes())?;
        ensure!(out.status.success(), "user create: {out:?}");
        let bootstrap = c.kafka_bootstrap();
        let ca = tls.join("ca.pem").display().to_string();
        let args = |mechanism: &'static str, ca: &str| {
            vec![
                bootstrap.clone(),
                mechanism.to_string(),
                "alice".into(),
                PASSWORD.into(),
                "sealed".into(),
                "20".into(),
                ca.to_string(),
            ]
        };
        let run = |args: Vec<String>| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            script("ck_sasl.py", &args)
        };
        served(
            &run(args("SCRAM-SHA-512", &ca))?,
            "confluent-kafka SASL_SSL",
        )?;
        let mut plaintext = args("SCRAM-SHA-512", "");
        plaintext.pop();
        refused(&run(plaintext)?, "a plaintext Kafka client")?;
        let logs: String = (1..=3).map(|id| c.node_log(id)).collect();
        ensure!(
            logs.contains("TLS handshake failed"),
            "no audit line for the refused handshakes"
        );
        ensure!(!logs.contains(PASSWORD), "a password was logged");
        Ok(())
    });
}

#[test]
fn acls_decide_what_a_kafka_or_grpc_client_may_do_and_take_effect_without_a_restart() {
    let args = [
        "--sasl-enabled-mechanisms",
        "SCRAM-SHA-512",
        "--authorizer-enable",
        "true",
        "--super-users",
        "User:admin",
    ];
    // TLS: the harness is the super user by its `admin` certificate.
    with_tls_cluster(3, &args, |c| {
        c.wait_ready(Duration::from_secs(30))?;
        let tls = c
            .tls_dir()
            .ok_or_else(|| anyhow::anyhow!("a TLS cluster"))?
            .to_path_buf();
        let ca = tls.join("ca.pem").display().to_string();
        for user in ["admin", "alice"] {
            let input = format!("{PASSWORD}\n");
            let out = c.rill_with_input(&["user", "create", user], input.as_bytes())?;
            ensure!(out.status.success(), "user create {user}: {out:?}");
        }
        for topic in ["orders-eu", "orders-us", "payments"] {
            c.create_topic(topic, 1, 3, &[])?;
        }
        let acl = |verb: &str, rest: &[&str]| -> anyhow::Result<()> {
            let mut args = vec!["acl", verb, "--principal", "User:alice"];
            args.extend(rest);
            let out = c.rill(&args)?;
            ensure!(out.status.success(), "acl {args:?}: {out:?}");
            Ok(())
        };
        let bootstrap = c.kafka_bootstrap();
        let as_user = |user: &str, action: &[&str]| -> anyhow::Result<Value> {
            let mut args = vec![bootstrap.as_str(), user, PASSWORD, ca.as_str()];
            args.extend(action);
            script("ck_acl.py", &args)
        };
        let produce = |user: &str, topic: &str| -> anyhow::Result<Value> {
            Ok(as_user(user, &["produce", topic])?["error"].clone())
        };
        let denied = Value::from("TOPIC_AUTHORIZATION_FAILED");

        // Without ACLs alice may do nothing; the super user anything.
        ensure!(
            produce("alice", "orders-eu")? == denied,
            "alice wrote with no ACL"
        );
        ensure!(
            produce("admin", "payments")?.is_null(),
            "a super user was refused"
        );

        // WRITE on the prefix orders-: orders-eu yes, payments no; she sees only those.
        acl(
            "create",
            &[
                "--topic",
                "orders-",
                "--pattern",
                "prefixed",
                "--operation",
                "write",
            ],
        )?;
        ensure!(
            produce("alice", "orders-eu")?.is_null(),
            "prefixed WRITE refused"
        );
        ensure!(
            produce("alice", "payments")? == denied,
            "WRITE leaked to payments"
        );
        let seen = as_user("alice", &["list"])?["topics"].clone();
        ensure!(
            seen == serde_json::json!(["orders-eu", "orders-us"]),
            "alice sees {seen}"
        );

        // READ on the topic but not on the group: no commit; with it, the commit works.
        acl("create", &["--topic", "orders-eu", "--operation", "read"])?;
        let commit = as_user("alice", &["commit", "orders-eu", "billing"])?;
        ensure!(
            commit["error"] == "GROUP_AUTHORIZATION_FAILED",
            "committed without READ on the group: {commit}"
        );
        acl("create", &["--group", "billing", "--operation", "read"])?;
        let commit = as_user("alice", &["commit", "orders-eu", "billing"])?;
        ensure!(
            commit["error"].is_null(),
            "commit with READ on the group: {commit}"
        );
        // Groups: she lists and describes billing, not the admin's audit group.
        let audit = as_user("admin", &["commit", "payments", "audit"])?;
        ensure!(audit["error"].is_null(), "the admin's commit: {audit}");
        let groups = as_user("alice", &["groups", "billing", "audit"])?;
        ensure!(
            groups["groups"] == serde_json::json!(["billing"])
                && groups["describe"]["billing"].is_null()
                && groups["describe"]["audit"] == "GROUP_AUTHORIZATION_FAILED",
            "alice's view of the groups: {groups}"
        );

        // A DENY beats the ALLOW; deleting it lets her write again, no restart.
        let deny = ["--topic", "orders-eu", "--operation", "write", "--deny"];
        acl("create", &deny)?;
        ensure!(produce("alice", "orders-eu")? == denied, "the DENY lost");
        ensure!(produce("alice", "orders-us")?.is_null(), "the DENY spread");
        acl("delete", &deny)?;
        ensure!(
            produce("alice", "orders-eu")?.is_null(),
            "the deleted DENY stayed"
        );

        let listed = c.json(&["acl", "list"])?;
        ensure!(
            listed["acls"].as_array().map(Vec::len) == Some(3),
            "acl list: {listed}"
        );

        // gRPC, the same ACLs: alice by her certificate, then by SCRAM (no certificate).
        let by_cert = c.client_tls_env("alice");
        let by_scram = vec![
            ("RILL_TLS_CA".to_string(), ca.clone()),
            ("RILL_USERNAME".to_string(), "alice".to_string()),
            ("RILL_PASSWORD".to_string(), PASSWORD.to_string()),
        ];
        for (how, env) in [("certificate", &by_cert), ("SCRAM", &by_scram)] {
            let cli = |args: &[&str], input: &str| grpc_cli(c, env, args, input);
            let wrote = cli(&["produce", "orders-eu", "--acks", "all"], "g1\n")?;
            ensure!(
                wrote.status.success(),
                "{how}: gRPC produce to orders-eu: {wrote:?}"
            );
            let refused = cli(&["produce", "payments", "--acks", "all"], "g1\n")?;
            ensure!(
                stderr(&refused).contains("TOPIC_AUTHORIZATION_FAILED"),
                "{how}: gRPC produce to payments: {refused:?}"
            );
            let listed = cli(&["topic", "list", "--json"], "")?;
            let names: Value = serde_json::from_slice(&listed.stdout)?;
            ensure!(
                names["topics"] == serde_json::json!(["orders-eu", "orders-us"]),
                "{how}: alice lists {names} over gRPC"
            );
            for admin_only in [
                &["user", "list"][..],
                &["acl", "list"],
                &[
                    "acl",
                    "create",
                    "--principal",
                    "User:alice",
                    "--cluster",
                    "--operation",
                    "all",
                ],
            ] {
                let out = cli(admin_only, "")?;
                ensure!(
                    stderr(&out).contains("CLUSTER_AUTHORIZATION_FAILED"),
                    "{how}: alice ran {admin_only:?}: {out:?}"
                );
            }
        }
        let wrong = vec![
            ("RILL_TLS_CA".to_string(), ca.clone()),
            ("RILL_USERNAME".to_string(), "alice".to_string()),
            ("RILL_PASSWORD".to_string(), "not her password".to_string()),
        ];
        let out = grpc_cli(c, &wrong, &["topic", "list"], "")?;
        ensure!(
            stderr(&out).contains("SASL_AUTHENTICATION_FAILED"),
            "a wrong password over gRPC: {out:?}"
        );
        let anonymous = vec![("RILL_TLS_CA".to_string(), ca.clone())];
        let out = grpc_cli(c, &anonymous, &["topic", "list"], "")?;
        ensure!(
            stderr(&out).contains("SASL_AUTHENTICATION_FAILED"),
            "a gRPC client with neither a certificate nor credentials: {out:?}"
        );
        let logs: String = (1..=3).map(|id| c.node_log(id)).collect();
        ensure!(
            logs.contains("denied") && logs.contains("User:alice"),
            "no audit line for the denials"
        );
        Ok(())
    });
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the CLI against `c` with only `env` saying who it is (not the harness's admin).
fn grpc_cli(
    c: &super::common::Cluster,
    env: &[(String, String)],
    args: &[&str],
    input: &str,
) -> anyhow::Result<std::process::Output> {
    use std::io::Write;
    let mut child = std::process::Command::new(super::common::RILL)
        .args(args)
        .args(["--bootstrap", &c.bootstrap()])
        .env_remove("RILL_TLS_CERT")
        .env_remove("RILL_TLS_KEY")
        .envs(env.iter().cloned())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

#[test]
fn without_sasl_a_kafka_clients_certificate_names_its_principal() {
    let args = ["--authorizer-enable", "true", "--super-users", "User:admin"];
    with_tls_cluster(1, &args, |c| {
        c.wait_ready(Duration::from_secs(30))?;
        let tls = c
            .tls_dir()
            .ok_or_else(|| anyhow::anyhow!("a TLS cluster"))?
            .to_path_buf();
        for topic in ["certified", "other"] {
            c.create_topic(topic, 1, 1, &[])?;
        }
        let out = c.rill(&[
            "acl",
            "create",
            "--principal",
            "User:alice",
            "--topic",
            "certified",
            "--operation",
            "write",
        ])?;
        ensure!(out.status.success(), "acl create: {out:?}");
        let (bootstrap, ca) = (
            c.kafka_bootstrap(),
            tls.join("ca.pem").display().to_string(),
        );
        let alice = tls.join("alice").display().to_string();
        let produce = |topic: &str| -> anyhow::Result<Value> {
            let args = [
                bootstrap.as_str(),
                alice.as_str(),
                "",
                ca.as_str(),
                "produce",
                topic,
            ];
            Ok(script("ck_acl.py", &args)?["error"].clone())
        };
        ensure!(
            produce("certified")?.is_null(),
            "alice's certificate did not let her write"
        );
        ensure!(
            produce("other")? == "TOPIC_AUTHORIZATION_FAILED",
            "alice's certificate wrote to a topic she has no ACL on"
        );
        Ok(())
    });
}
