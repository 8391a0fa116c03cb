//! End-to-end tests of the metadata quorum with real `rill node` processes (issue 2).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{ids, partitions, wait_until, with_cluster, Cluster};
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);

fn topic_names(cluster: &Cluster, bootstrap: &str) -> anyhow::Result<Vec<String>> {
    let list = cluster.json_at(bootstrap, &["topic", "list"])?;
    Ok(list["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(String::from))
        .collect())
}

#[test]
fn quorum_survives_losing_its_leader_and_the_restarted_node_catches_up() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;

        let created = cluster.rill(&[
            "topic",
            "create",
            "orders",
            "--partitions",
            "6",
            "--replication-factor",
            "3",
        ])?;
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let topic = cluster.json(&["topic", "describe", "orders"])?;
        assert_eq!(topic["name"], "orders");
        let parts = partitions(&topic);
        assert_eq!(parts.len(), 6);
        let mut leaders: BTreeMap<u64, usize> = BTreeMap::new();
        for p in &parts {
            assert_eq!(ids(&p["isr"]).len(), 3, "ISR of size 3: {p}");
            assert_eq!(ids(&p["replicas"]).len(), 3);
            *leaders
                .entry(p["leader"].as_u64().unwrap_or(0))
                .or_default() += 1;
        }
        assert_eq!(
            leaders,
            BTreeMap::from([(1, 2), (2, 2), (3, 2)]),
            "leaders spread 2 per broker"
        );

        let old_leader = cluster
            .controller_leader()
            .ok_or_else(|| anyhow::anyhow!("no controller leader"))?;
        cluster.kill(old_leader);
        let killed_at = Instant::now();
        wait_until(Duration::from_secs(3), "a new controller leader", || {
            Ok(cluster.controller_leader().is_some_and(|l| l != old_leader))
        })?;
        eprintln!("new controller leader after {:?}", killed_at.elapsed());
        assert!(topic_names(cluster, &cluster.bootstrap())?.contains(&"orders".to_string()));
        let second = cluster.rill(&[
            "topic",
            "create",
            "payments",
            "--partitions",
            "3",
            "--replication-factor",
            "2",
        ])?;
        assert!(
            second.status.success(),
            "{}",
            String::from_utf8_lossy(&second.stderr)
        );

        cluster.start_node(old_leader)?;
        let own = cluster.node_addr(old_leader);
        wait_until(
            Duration::from_secs(30),
            "the restarted node lists both topics",
            || {
                let names = topic_names(cluster, &own)?;
                Ok(
                    names.contains(&"orders".to_string())
                        && names.contains(&"payments".to_string()),
                )
            },
        )?;
        cluster.wait_ready(READY)?;
        Ok(())
    })
}

#[test]
fn a_node_outside_the_voters_joins_as_a_learner_and_an_alive_broker() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.add_learner(4)?;
        wait_until(READY, "node 4 as learner and alive broker", || {
            let c = cluster.json(&["cluster", "describe"])?;
            let learner = ids(&c["controller"]["learners"]) == vec![4];
            let voters = ids(&c["controller"]["voters"]) == vec![1, 2, 3];
            let alive = c["brokers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| b["id"] == 4 && b["state"] == "alive");
            Ok(learner && voters && alive)
        })?;
        // The learner applies the metadata log: it sees topics created after it joined.
        let created = cluster.rill(&[
            "topic",
            "create",
            "seen-by-learner",
            "--partitions",
            "4",
            "--replication-factor",
            "1",
        ])?;
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let own = cluster.node_addr(4);
        wait_until(
            Duration::from_secs(10),
            "the learner lists the topic",
            || Ok(topic_names(cluster, &own)?.contains(&"seen-by-learner".to_string())),
        )?;
        cluster.wait_ready(READY)?;
        Ok(())
    })
}

/// What must survive a restart: names, ids, configs and replica assignments.
fn durable_view(cluster: &Cluster) -> anyhow::Result<Vec<Value>> {
    let mut view = Vec::new();
    for name in topic_names(cluster, &cluster.bootstrap())? {
        let t = cluster.json(&["topic", "describe", &name])?;
        let replicas: Vec<Value> = partitions(&t)
            .iter()
            .map(|p| p["replicas"].clone())
            .collect();
        view.push(serde_json::json!({
            "name": t["name"], "topic_id": t["topic_id"], "configs": t["configs"], "replicas": replicas,
        }));
    }
    Ok(view)
}

#[test]
fn metadata_survives_killing_every_node_at_once() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        let a = cluster.rill(&[
            "topic",
            "create",
            "a",
            "--partitions",
            "3",
            "--replication-factor",
            "3",
            "--config",
            "retention.ms=60000",
            "--config",
            "max.message.bytes=2048",
        ])?;
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        let b = cluster.rill(&[
            "topic",
            "create",
            "b",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ])?;
        assert!(b.status.success());
        let grow = cluster.rill(&["topic", "add-partitions", "b", "--total", "5"])?;
        assert!(
            grow.status.success(),
            "{}",
            String::from_utf8_lossy(&grow.stderr)
        );
        let alter = cluster.rill(&[
            "topic",
            "alter-config",
            "b",
            "--config",
            "retention.bytes=1000000",
        ])?;
        assert!(
            alter.status.success(),
            "{}",
            String::from_utf8_lossy(&alter.stderr)
        );
        let c = cluster.rill(&[
            "topic",
            "create",
            "c",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ])?;
        assert!(c.status.success());
        let delete = cluster.rill(&["topic", "delete", "c"])?;
        assert!(delete.status.success());
        let before = durable_view(cluster)?;
        assert_eq!(before.len(), 2);
        assert_eq!(before[0]["configs"]["retention.ms"], "60000");
        assert_eq!(before[1]["configs"]["retention.bytes"], "1000000");
        assert_eq!(before[1]["replicas"].as_array().map(Vec::len), Some(5));

        for id in cluster.running() {
            cluster.kill(id);
        }
        for id in 1..=3 {
            cluster.start_node(id)?;
        }
        cluster.wait_ready(READY)?;
        assert_eq!(durable_view(cluster)?, before);
        Ok(())
    })
}

#[test]
fn invalid_requests_get_their_error_codes_and_change_nothing() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        let ok = cluster.rill(&[
            "topic",
            "create",
            "good",
            "--partitions",
            "2",
            "--replication-factor",
            "2",
        ])?;
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let before = durable_view(cluster)?;
        let too_long = "x".repeat(250);
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec![
                    "topic",
                    "create",
                    "bad/name",
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "1",
                ],
                "INVALID_TOPIC_EXCEPTION",
            ),
            (
                vec![
                    "topic",
                    "create",
                    "..",
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "1",
                ],
                "INVALID_TOPIC_EXCEPTION",
            ),
            (
                vec![
                    "topic",
                    "create",
                    &too_long,
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "1",
                ],
                "INVALID_TOPIC_EXCEPTION",
            ),
            (
                vec![
                    "topic",
                    "create",
                    "good",
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "1",
                ],
                "TOPIC_ALREADY_EXISTS",
            ),
            (
                vec![
                    "topic",
                    "create",
                    "x",
                    "--partitions",
                    "0",
                    "--replication-factor",
                    "1",
                ],
                "INVALID_PARTITIONS",
            ),
            (
                vec![
                    "topic",
                    "create",
                    "x",
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "4",
                ],
                "INVALID_REPLICATION_FACTOR",
            ),
            (
                vec![
                    "topic",
                    "create",
                    "x",
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "0",
                ],
                "INVALID_REPLICATION_FACTOR",
            ),
            (
                vec![
                    "topic",
                    "create",
                    "x",
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "1",
                    "--config",
                    "no.such=1",
                ],
                "INVALID_CONFIG",
            ),
            (
                vec![
                    "topic",
                    "create",
                    "x",
                    "--partitions",
                    "1",
                    "--replication-factor",
                    "1",
                    "--config",
                    "retention.ms=soon",
                ],
                "INVALID_CONFIG",
            ),
            (
                vec!["topic", "describe", "missing"],
                "UNKNOWN_TOPIC_OR_PARTITION",
            ),
            (
                vec!["topic", "delete", "missing"],
                "UNKNOWN_TOPIC_OR_PARTITION",
            ),
            (
                vec!["topic", "add-partitions", "good", "--total", "1"],
                "INVALID_PARTITIONS",
            ),
            (
                vec!["topic", "add-partitions", "missing", "--total", "3"],
                "UNKNOWN_TOPIC_OR_PARTITION",
            ),
            (
                vec![
                    "topic",
                    "alter-config",
                    "good",
                    "--config",
                    "min.insync.replicas=3",
                ],
                "INVALID_CONFIG",
            ),
            (
                vec![
                    "topic",
                    "alter-config",
                    "good",
                    "--config",
                    "unclean.leader.election.enable=maybe",
                ],
                "INVALID_CONFIG",
            ),
        ];
        for (args, code) in cases {
            let out = cluster.rill(&args)?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} exits 1");
            assert!(
                stderr.contains(code),
                "{args:?}: expected {code} in {stderr:?}"
            );
            assert_eq!(
                stderr.trim().lines().count(),
                1,
                "one-line error: {stderr:?}"
            );
        }
        assert_eq!(
            durable_view(cluster)?,
            before,
            "bad requests changed nothing"
        );
        Ok(())
    })
}

#[test]
fn metrics_report_the_quorum() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        let leader = cluster.controller_leader().unwrap_or(0);
        wait_until(Duration::from_secs(5), "metrics gauges", || {
            let text = cluster.metrics(1)?;
            Ok(text.contains("rill_raft_term ")
                && text.contains(&format!("rill_raft_leader_id {leader}"))
                && text.contains("rill_raft_commit_index ")
                && text.contains("rill_raft_applied_index ")
                && text.contains("rill_brokers_alive 3"))
        })?;
        assert_eq!(
            common::http_get(&cluster.nodes[&1].metrics, "/healthz")?.0,
            200
        );
        Ok(())
    })
}
