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
            // The moves, the kill and the voter changes take about 15 s.
            "30",
            "--rate",
            "200",
            "--acks",
            "all",
        ])?;
        let started = std::time::Instant::now();
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

        eprintln!("{:?}: rebalanced", started.elapsed());
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

        // The controllers change without a stop: a new node 6 joins and becomes a voter,
        // node 1 a learner; then node 1 stops with nothing under-replicated.
        eprintln!("{:?}: broker 1 drained", started.elapsed());
        cluster.add_learner(6)?;
        wait_until(READY, "node 6 a voter", || {
            Ok(cluster
                .rill(&["cluster", "add-voter", "6"])?
                .status
                .success())
        })?;
        let removed = cluster.json(&["cluster", "remove-voter", "1"])?;
        assert_eq!(ids(&removed["voters"]), vec![2, 3, 6], "{removed}");
        assert!(ids(&removed["learners"]).contains(&1), "{removed}");
        cluster.stop(1);
        wait_until(READY, "a controller among the new voters", || {
            let c = cluster.json(&["cluster", "describe"])?;
            let leader = c["controller"]["leader_id"].as_u64();
            Ok(leader.is_some_and(|l| [2, 3, 6].contains(&l)))
        })?;
        eprintln!("{:?}: voters changed, node 1 stopped", started.elapsed());
        cluster.wait_replicas_agree("ops", READY)?;
        let out = verify.wait()?;
        let verdict = assert_verified(&out)?;
        eprintln!("verdict after growing, rebalancing and draining: {verdict}");
        cluster.wait_replicas_agree("ops", READY)
    });
}

/// A tmpfs mounted for the test; unmounted (lazily: a node may still hold it) on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()?;
        if !out.status.success() {
            bail!("mount tmpfs: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Self(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .output();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Fills `dir` until the disk refuses; returns the filler file.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    if let Ok(mut file) = std::fs::File::create(&path) {
        let chunk = vec![0u8; 1 << 20];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
    }
    path
}

#[test]
fn a_node_whose_disk_fills_gives_up_its_leaderships_and_rejoins_once_space_is_freed() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        let tmpfs = Tmpfs::mount(&cluster.data_dir(4), "96m")?;
        cluster.add_learner(4)?;
        wait_until(READY, "broker 4 alive", || {
            Ok(alive_brokers(cluster)?.contains(&4))
        })?;
        cluster.create_topic("full", 6, 3, &["min.insync.replicas=2"])?;
        // Broker 4 becomes the preferred leader of every partition.
        let parts = partitions(&cluster.describe("full")?);
        let plan: Vec<Value> = parts
            .iter()
            .map(|p| {
                let others: Vec<u64> = ids(&p["replicas"])
                    .into_iter()
                    .filter(|b| *b != 4)
                    .collect();
                serde_json::json!({"topic": "full", "partition": p["partition"],
                    "replicas": [4, others[0], others[1]]})
            })
            .collect();
        let plan_file = cluster.scratch("plan.json");
        std::fs::write(
            &plan_file,
            serde_json::json!({"version": 1, "partitions": plan}).to_string(),
        )?;
        let plan_path = plan_file.to_string_lossy().to_string();
        let moved = cluster.rill(&[
            "topic", "reassign", "full", "--plan", &plan_path, "--wait", "60",
        ])?;
        if !moved.status.success() {
            bail!("reassign: {}", String::from_utf8_lossy(&moved.stderr));
        }
        cluster.wait_replicas_agree("full", READY)?;
        let verify = cluster.spawn_rill(&[
            "verify",
            "--topic",
            "full",
            "--duration-s",
            "40",
            "--rate",
            "200",
            "--acks",
            "all",
        ])?;
        std::thread::sleep(Duration::from_secs(3));
        let filler = fill(&tmpfs.0);
        wait_until(
            Duration::from_secs(30),
            "broker 4 out of every ISR, partitions led",
            || {
                let parts = partitions(&cluster.describe("full")?);
                Ok(parts.iter().all(|p| {
                    !ids(&p["isr"]).contains(&4) && p["leader"].as_u64().is_some_and(|l| l != 4)
                }))
            },
        )?;
        assert!(
            !cluster.readyz(4),
            "a node with failing storage is not ready"
        );
        std::thread::sleep(Duration::from_secs(5));
        std::fs::remove_file(&filler)?;
        wait_until(
            Duration::from_secs(60),
            "broker 4 back in every ISR",
            || {
                let parts = partitions(&cluster.describe("full")?);
                Ok(parts.iter().all(|p| ids(&p["isr"]).contains(&4)))
            },
        )?;
        let out = verify.wait()?;
        let verdict = assert_verified(&out)?;
        eprintln!("verdict through a full disk: {verdict}");
        cluster.wait_replicas_agree("full", READY)
    });
}

#[test]
fn a_voter_whose_disk_was_lost_is_replaced_without_stopping_the_cluster() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("before", 3, 3, &[])?;
        // Out of the voters first: a wiped voter would have forgotten its votes.
        let removed = cluster.json(&["cluster", "remove-voter", "3"])?;
        assert_eq!(ids(&removed["voters"]), vec![1, 2], "{removed}");
        cluster.kill(3);
        std::fs::remove_dir_all(cluster.data_dir(3))?;
        cluster.start_node(3)?;
        wait_until(
            READY,
            "node 3 back as a learner and an alive broker",
            || {
                let c = cluster.json(&["cluster", "describe"])?;
                Ok(ids(&c["controller"]["learners"]) == vec![3]
                    && alive_brokers(cluster)?.contains(&3))
            },
        )?;
        // Promoted once it holds the metadata log (refused until then).
        wait_until(READY, "node 3 a voter again", || {
            Ok(cluster
                .rill(&["cluster", "add-voter", "3"])?
                .status
                .success())
        })?;
        let c = cluster.json(&["cluster", "describe"])?;
        assert_eq!(ids(&c["controller"]["voters"]), vec![1, 2, 3], "{c}");
        cluster.create_topic("after", 3, 3, &[])?;
        let seen = cluster.json_at(&cluster.node_addr(3), &["topic", "list"])?;
        let names = seen["topics"].as_array().cloned().unwrap_or_default();
        assert!(
            names.contains(&Value::from("before")) && names.contains(&Value::from("after")),
            "{seen}"
        );
        cluster.wait_replicas_agree("before", READY)?;
        cluster.wait_ready(READY)
    });
}
