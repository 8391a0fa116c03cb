//! SASL on the Kafka listener: users made with `rill user create` (password on stdin)
//! authenticate with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN from confluent-kafka and
//! kafka-python; a wrong password, an unknown or deleted user and a client without SASL
//! are refused; the audit log and metrics count the failures and never hold a password.

use std::time::Duration;

use anyhow::ensure;
use serde_json::Value;

use super::common::with_cluster;
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
