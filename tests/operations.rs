//! Operating a cluster under load: it grows and rebalances, a broker is decommissioned
//! while another is SIGKILLed mid-move, the controller voters change, and the drained
//! node stops with nothing under-replicated; `rill verify` at acks=all runs throughout.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use common::{assert_verified, ids, partitions, wait_until, with_cluster, Cluster};
use serde_json::Value;

const READY: Duration = Duration::from_secs(60);
const MOVES: Duration = Duration::from_secs(120);

fn alive_brokers(cluster: &Cluster) -> anyhow::Result<Vec<u64>> {
    let c = cluster.json(&["cluster", "describe"])?;
    Ok(c["brokers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["state"] == "alive")
        .filter_map(|b| b["id"].as_u64())
        .collect())
}

fn moves_in_progress(cluster: &Cluster, topic: &str) -> anyhow::Result<usize> {
    let status = cluster.json(&["topic", "reassign", topic, "--status"])?;
    Ok(status["reassignments"].as_array().map_or(0, Vec::len))
}

/// Every partition: `rf` replicas on alive brokers, a leader, nothing moving.
fn settled(cluster: &Cluster, topic: &str, rf: usize) -> anyhow::Result<Vec<Value>> {
    let alive = alive_brokers(cluster)?;
    let parts = partitions(&cluster.describe(topic)?);
    for p in &parts {
        let replicas = ids(&p["replicas"]);
        if replicas.len() != rf
            || !replicas.iter().all(|b| alive.contains(b))
            || p["leader"].is_null()
            || !ids(&p["adding_replicas"]).is_empty()
        {
            bail!("{topic} is not settled (alive {alive:?}): {p}");
        }
    }
    Ok(parts)
}

fn replica_counts(parts: &[Value]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for p in parts {
        for b in ids(&p["replicas"]) {
            *counts.entry(b).or_default() += 1;
        }
    }
    counts
}

#[test]
fn the_cluster_grows_rebalances_and_drains_a_broker_under_load() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("ops", 6, 3, &["min.insync.replicas=2"])?;
        cluster.wait_replicas_agree("ops", READY)?;
        let verify = cluster.spawn_rill(&[
            "verify",
            "--topic",
            "ops",
            "--duration-s",
            "90",
            "--rate",
            "200",
            "--acks",
            "all",
        ])?;
        std::thread::sleep(Duration::from_secs(2));

        // Grow: brokers 4 and 5 join, and a rebalance moves replicas onto them.
        cluster.add_learner(4)?;
        cluster.add_learner(5)?;
        wait_until(READY, "brokers 4 and 5 alive", || {
            Ok(alive_brokers(cluster)?.len() == 5)
        })?;
        let moves = cluster.json(&["cluster", "rebalance", "--execute", "--wait", "120"])?;
        let planned = moves["plan"]["partitions"].as_array().map_or(0, Vec::len);
        assert!(
            planned > 0,
            "a rebalance onto new brokers moves something: {moves}"
        );
        let refused = moves["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| !r["error_code"].is_null())
            .count();
        assert_eq!(refused, 0, "{moves}");
        let parts = settled(cluster, "ops", 3)?;
        let counts = replica_counts(&parts);
        assert_eq!(counts.len(), 5, "every broker holds replicas: {counts:?}");
        assert!(
            counts.values().all(|c| (3..=4).contains(c)),
            "18 replicas evenly over 5 brokers: {counts:?}"
        );

        // Decommission broker 1; SIGKILL a broker receiving its replicas mid-move.
        let drain = cluster.json(&["broker", "decommission", "1"])?;
        let receiving: Vec<u64> = drain["plan"]["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|planned| {
                let partition = planned["partition"].as_u64()?;
                let before = parts
                    .iter()
                    .find(|p| p["partition"].as_u64() == Some(partition))?;
                ids(&planned["replicas"])
                    .into_iter()
                    .find(|b| !ids(&before["replicas"]).contains(b))
            })
            .collect();
        let Some(&victim) = receiving.first() else {
            bail!("broker 1 held replicas to move: {drain}");
        };
        cluster.kill(victim);
        std::thread::sleep(Duration::from_secs(3));
        cluster.start_node(victim)?;
        wait_until(MOVES, "broker 1 drained", || {
            Ok(moves_in_progress(cluster, "ops")? == 0)
        })?;
        let parts = settled(cluster, "ops", 3)?;
        assert!(
            parts.iter().all(|p| !ids(&p["replicas"]).contains(&1)),
            "no replica left on broker 1: {parts:?}"
        );
        let described = cluster.json(&["cluster", "describe"])?;
        let draining = described["brokers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| b["id"] == 1 && b["draining"] == true);
        assert!(draining, "{described}");

        // The controllers change without a stop: broker 4 becomes a voter, node 1 a
        // learner; then node 1 stops with nothing under-replicated.
        let added = cluster.json(&["cluster", "add-voter", "4"])?;
        assert_eq!(ids(&added["voters"]), vec![1, 2, 3, 4], "{added}");
        let removed = cluster.json(&["cluster", "remove-voter", "1"])?;
        assert_eq!(ids(&removed["voters"]), vec![2, 3, 4], "{removed}");
        assert!(ids(&removed["learners"]).contains(&1), "{removed}");
        cluster.stop(1);
        wait_until(READY, "a controller among the new voters", || {
            let c = cluster.json(&["cluster", "describe"])?;
            let leader = c["controller"]["leader_id"].as_u64();
            Ok(leader.is_some_and(|l| [2, 3, 4].contains(&l)))
        })?;
        cluster.wait_replicas_agree("ops", READY)?;
        let out = verify.wait()?;
        let verdict = assert_verified(&out)?;
        eprintln!("verdict after growing, rebalancing and draining: {verdict}");
        cluster.wait_replicas_agree("ops", READY)
    });
}
