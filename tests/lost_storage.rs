//! A replica that lost its storage never leads with less than the high watermark (issue
//! 12, DESIGN.md section 6, guarantees 1, 2 and 7; KIP-858 store ids, KIP-966 eligible
//! leader replicas): the wiped last in-sync replica leaves the partition offline until a
//! replica with the data returns or an operator elects uncleanly.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail};
use common::{ids, partitions, wait_until, with_cluster, Cluster};
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);
const FAILOVER: Duration = Duration::from_secs(20);

/// The partition of `topic` whose replicas are all among `brokers`.
fn partition_on(cluster: &Cluster, topic: &str, brokers: &[u64]) -> anyhow::Result<Value> {
    let d = cluster.describe(topic)?;
    partitions(&d)
        .into_iter()
        .find(|p| ids(&p["replicas"]).iter().all(|b| brokers.contains(b)))
        .ok_or_else(|| anyhow!("no partition on {brokers:?}: {d}"))
}

fn partition_state(cluster: &Cluster, topic: &str, partition: u64) -> anyhow::Result<Value> {
    partitions(&cluster.describe(topic)?)
        .into_iter()
        .find(|p| p["partition"].as_u64() == Some(partition))
        .ok_or_else(|| anyhow!("no partition {partition}"))
}

/// Produces `values` to one partition at acks=all; every one must be acknowledged.
fn produce_to(
    cluster: &Cluster,
    topic: &str,
    partition: u64,
    values: &[String],
) -> anyhow::Result<()> {
    let p = partition.to_string();
    let input = values.join("\n") + "\n";
    let out = cluster.rill_with_input(
        &[
            "produce",
            topic,
            "--acks",
            "all",
            "--partition",
            &p,
            "--json",
        ],
        input.as_bytes(),
    )?;
    let acks = String::from_utf8_lossy(&out.stdout).lines().count();
    if !out.status.success() || acks != values.len() {
        bail!(
            "{acks} of {} acknowledged: {}",
            values.len(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Waits until every replica of one partition reports the same log end and checksum.
fn wait_partition_agrees(cluster: &Cluster, topic: &str, partition: u64) -> anyhow::Result<()> {
    wait_until(READY, "the partition's replicas to agree", || {
        let r = cluster.json(&["replicas", topic, &partition.to_string()])?;
        let replicas = r["replicas"].as_array().cloned().unwrap_or_default();
        let views: BTreeSet<String> = replicas
            .iter()
            .map(|x| {
                format!(
                    "{} {} {}",
                    x["log_end_offset"], x["checksum"], x["checked_up_to"]
                )
            })
            .collect();
        Ok(replicas.len() > 1
            && replicas.iter().all(|x| x.get("error").is_none())
            && views.len() == 1)
    })
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Holds for `period`: the partition has no leader.
fn stays_offline(
    cluster: &Cluster,
    topic: &str,
    partition: u64,
    period: Duration,
) -> anyhow::Result<Value> {
    let deadline = std::time::Instant::now() + period;
    loop {
        let p = partition_state(cluster, topic, partition)?;
        if !p["leader"].is_null() {
            bail!("a replica without the committed records leads: {p}");
        }
        if std::time::Instant::now() >= deadline {
            return Ok(p);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_wiped_last_isr_member_stays_out_until_an_operator_elects_uncleanly() {
    with_cluster(3, &[], |cluster| {
        cluster.add_learner(4)?;
        cluster.add_learner(5)?;
        cluster.wait_ready(READY)?;
        cluster.create_topic("wiped", 10, 2, &["min.insync.replicas=1"])?;
        cluster.wait_replicas_agree("wiped", READY)?;
        let p = partition_on(cluster, "wiped", &[4, 5])?;
        let partition = p["partition"].as_u64().unwrap_or(0);
        let leader = p["leader"]
            .as_u64()
            .ok_or_else(|| anyhow!("offline: {p}"))?;
        let follower = if leader == 4 { 5 } else { 4 };

        let first = values("both", 500);
        produce_to(cluster, "wiped", partition, &first)?;
        cluster.wait_replicas_agree("wiped", READY)?;
        cluster.stop(follower);
        wait_until(FAILOVER, "the ISR shrunk to the leader", || {
            Ok(ids(&partition_state(cluster, "wiped", partition)?["isr"]) == vec![leader])
        })?;
        produce_to(cluster, "wiped", partition, &values("leader-only", 500))?;

        let store_of = |cluster: &Cluster| -> anyhow::Result<String> {
            let c = cluster.json(&["cluster", "describe"])?;
            let broker = c["brokers"]
                .as_array()
                .and_then(|bs| {
                    bs.iter()
                        .find(|b| b["id"] == leader && b["state"] == "alive")
                })
                .ok_or_else(|| anyhow!("broker {leader} not alive: {c}"))?;
            Ok(broker["store_id"].as_str().unwrap_or_default().to_string())
        };
        let old_store = store_of(cluster)?;

        // The leader's disk fails: killed, its whole data directory replaced by an empty one.
        cluster.kill(leader);
        wait_until(FAILOVER, "the partition offline", || {
            Ok(partition_state(cluster, "wiped", partition)?["leader"].is_null())
        })?;
        std::fs::remove_dir_all(cluster.data_dir(leader))?;
        cluster.start_node(leader)?;
        wait_until(
            READY,
            "the wiped broker registered with a new store",
            || Ok(store_of(cluster).is_ok_and(|id| !id.is_empty() && id != old_store)),
        )?;
        let p = stays_offline(cluster, "wiped", partition, Duration::from_secs(3))?;
        assert_eq!(
            (ids(&p["isr"]), ids(&p["eligible_leader_replicas"])),
            (vec![], vec![]),
            "{p}"
        );
        let why = p["offline_reason"].as_str().unwrap_or_default();
        assert!(why.contains("--unclean"), "offline reason: {p}");
        let controller = cluster
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller"))?;
        wait_until(READY, "an ERROR naming the offline partition", || {
            Ok(cluster.node_log(controller).lines().any(|l| {
                l.contains("ERROR") && l.contains("partition offline") && l.contains("wiped")
            }))
        })?;
        wait_until(
            READY,
            "the metric of partitions without an eligible replica",
            || {
                Ok(cluster.metric(
                    controller,
                    "rill_offline_partitions_without_eligible_replica",
                )? >= 1.0)
            },
        )?;

        // The follower returns with the first 500 records: it lacks the other 500, so it
        // must not lead by itself, and it keeps what it has.
        cluster.start_node(follower)?;
        cluster.wait_ready(READY)?;
        stays_offline(cluster, "wiped", partition, Duration::from_secs(3))?;
        let replicas = cluster.json(&["replicas", "wiped", &partition.to_string()])?;
        let kept = replicas["replicas"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["broker"] == follower))
            .and_then(|r| r["log_end_offset"].as_u64());
        assert_eq!(kept, Some(500), "{replicas}");

        // The operator chooses availability over the 500 records only the wiped disk had.
        let elected = cluster.json(&[
            "cluster",
            "elect-leaders",
            "--unclean",
            "--topic",
            "wiped",
            "--partition",
            &partition.to_string(),
        ])?;
        assert_eq!(elected["leader"], follower, "{elected}");
        assert!(
            elected["warning"]
                .as_str()
                .is_some_and(|w| w.contains("lost")),
            "{elected}"
        );
        wait_until(FAILOVER, "the unclean leader serving", || {
            Ok(cluster.consume_values("wiped", Some(partition))? == first)
        })?;
        wait_partition_agrees(cluster, "wiped", partition)?;
        Ok(())
    });
}

#[test]
fn rf3_the_wiped_last_isr_member_waits_for_an_eligible_replica_and_nothing_acknowledged_is_lost() {
    with_cluster(3, &[], |cluster| {
        cluster.add_learner(4)?;
        cluster.add_learner(5)?;
        cluster.wait_ready(READY)?;
        cluster.create_topic("elr", 10, 3, &["min.insync.replicas=2"])?;
        cluster.wait_replicas_agree("elr", READY)?;
        // A partition with one controller among its replicas, so its ISR can shrink
        // while a majority of controllers stays up.
        let p = partitions(&cluster.describe("elr")?)
            .into_iter()
            .find(|p| ids(&p["replicas"]).iter().filter(|b| **b <= 3).count() == 1)
            .ok_or_else(|| anyhow!("no partition with one controller replica"))?;
        let partition = p["partition"].as_u64().unwrap_or(0);
        let replicas = ids(&p["replicas"]);
        let acked = values("acked", 300);
        produce_to(cluster, "elr", partition, &acked)?;
        cluster.wait_replicas_agree("elr", READY)?;
        let leader = partition_state(cluster, "elr", partition)?["leader"]
            .as_u64()
            .ok_or_else(|| anyhow!("offline"))?;
        let others: Vec<u64> = replicas.iter().copied().filter(|b| *b != leader).collect();

        // The ISR shrinks to the leader; the replica that left last stays eligible.
        cluster.kill(others[0]);
        wait_until(FAILOVER, "ISR of two", || {
            Ok(ids(&partition_state(cluster, "elr", partition)?["isr"]).len() == 2)
        })?;
        cluster.kill(others[1]);
        wait_until(FAILOVER, "ISR of one with an eligible replica", || {
            let p = partition_state(cluster, "elr", partition)?;
            Ok(ids(&p["isr"]) == vec![leader]
                && ids(&p["eligible_leader_replicas"]) == vec![others[1]])
        })?;

        // The last ISR member's partition store is lost.
        cluster.kill(leader);
        wait_until(FAILOVER, "the partition offline", || {
            Ok(partition_state(cluster, "elr", partition)?["leader"].is_null())
        })?;
        std::fs::remove_dir_all(cluster.data_dir(leader).join("partitions"))?;
        cluster.start_node(leader)?;
        cluster.wait_ready(READY)?;
        let p = stays_offline(cluster, "elr", partition, Duration::from_secs(3))?;
        assert_eq!(ids(&p["isr"]), Vec::<u64>::new(), "{p}");
        assert_eq!(ids(&p["eligible_leader_replicas"]), vec![others[1]], "{p}");
        assert!(
            p["offline_reason"]
                .as_str()
                .is_some_and(|r| r.contains("until one returns")),
            "{p}"
        );
        // The replica that left while the ISR still had min.insync.replicas may lack
        // records: it does not lead either.
        cluster.start_node(others[0])?;
        cluster.wait_ready(READY)?;
        stays_offline(cluster, "elr", partition, Duration::from_secs(3))?;

        // The eligible replica returns and leads with every acknowledged record.
        cluster.start_node(others[1])?;
        wait_until(FAILOVER, "the eligible replica leading", || {
            Ok(partition_state(cluster, "elr", partition)?["leader"].as_u64() == Some(others[1]))
        })?;
        cluster.wait_replicas_agree("elr", READY)?;
        wait_until(FAILOVER, "every acknowledged record readable", || {
            let read = cluster.consume_values("elr", Some(partition))?;
            Ok(acked.iter().all(|v| read.contains(v)))
        })?;
        Ok(())
    });
}
