//! Replication and failover with real `rill node` processes (issue 4, DESIGN.md section 6,
//! guarantees 1-4, 6 and 7): leader kills under load, the KIP-101 restart, a paused
//! (zombie) leader, an ISR shrunk below min.insync.replicas, an all-dead ISR with unclean
//! election off, and every node killed at once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use common::{assert_verified, ids, partitions, wait_until, with_cluster, Cluster};
use nix::sys::signal::Signal;
use rill_common::record::RecordBatchBuilder;
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_client::BrokerServiceClient;
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);
const FAILOVER: Duration = Duration::from_secs(20);

/// Produces `values` at acks=all through the CLI; every one must be acknowledged.
fn produce_all(cluster: &Cluster, topic: &str, values: &[String]) -> anyhow::Result<()> {
    let input = values.join("\n") + "\n";
    let out = cluster.rill_with_input(
        &["produce", topic, "--acks", "all", "--json"],
        input.as_bytes(),
    )?;
    if !out.status.success() {
        bail!("produce: {}", String::from_utf8_lossy(&out.stderr));
    }
    let acks = String::from_utf8_lossy(&out.stdout).lines().count();
    if acks != values.len() {
        bail!("{acks} of {} records acknowledged", values.len());
    }
    Ok(())
}

fn wait_for_new_leader(
    cluster: &Cluster,
    topic: &str,
    partition: u64,
    old: u64,
) -> anyhow::Result<u64> {
    let mut leader = None;
    wait_until(FAILOVER, "a new leader", || {
        leader = cluster.leader_of(topic, partition)?.filter(|l| *l != old);
        Ok(leader.is_some())
    })?;
    leader.ok_or_else(|| anyhow!("no leader"))
}

fn isr_of(cluster: &Cluster, topic: &str, partition: u64) -> anyhow::Result<Vec<u64>> {
    let d = cluster.describe(topic)?;
    partitions(&d)
        .into_iter()
        .find(|p| p["partition"].as_u64() == Some(partition))
        .map(|p| ids(&p["isr"]))
        .ok_or_else(|| anyhow!("no partition {partition}"))
}

/// One raw acks=all Produce to `addr`, returning the base offset or the error code.
fn produce_raw(addr: &str, topic: &str, partition: u32, value: &str) -> Result<u64, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .timeout(Duration::from_secs(20))
            .connect_lazy();
        let mut client = BrokerServiceClient::new(channel);
        let mut b = RecordBatchBuilder::new();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        b.push(None, Some(value.as_bytes()), now_ms);
        let request = pb::ProduceRequest {
            topic: topic.to_string(),
            partition,
            acks: -1,
            records: Bytes::from(b.build()),
            timeout_ms: 5000,
            transactional_id: None,
        };
        match client.produce(request).await {
            Ok(r) => Ok(r.into_inner().base_offset),
            Err(status) => Err(rill_proto::status_error_code(&status)
                .map(|c| c.to_string())
                .unwrap_or_else(|| format!("{:?}: {}", status.code(), status.message()))),
        }
    })
}

#[test]
fn acknowledged_writes_survive_five_leader_kills() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("orders", 6, 3, &["min.insync.replicas=2"])?;
        cluster.wait_replicas_agree("orders", READY)?;
        let verify = cluster.spawn_rill(&[
            "verify",
            "--topic",
            "orders",
            "--duration-s",
            "45",
            "--rate",
            "200",
            "--acks",
            "all",
        ])?;
        std::thread::sleep(Duration::from_secs(2));
        for round in 0..5 {
            let leader = cluster
                .leader_of("orders", 0)?
                .ok_or_else(|| anyhow!("partition 0 offline before kill {round}"))?;
            cluster.kill(leader);
            wait_for_new_leader(cluster, "orders", 0, leader)?;
            cluster.start_node(leader)?;
            wait_until(FAILOVER, "the restarted broker back in the ISR", || {
                Ok(isr_of(cluster, "orders", 0)?.contains(&leader))
            })?;
        }
        let out = verify.wait()?;
        let verdict = assert_verified(&out)?;
        eprintln!("verdict after five leader kills: {verdict}");
        cluster.wait_replicas_agree("orders", READY)
    });
}

#[test]
fn a_restarted_follower_then_a_dead_leader_loses_nothing_committed() {
    // KIP-101: a follower that restarts must not truncate committed data it holds and
    // then lead with a shorter log.
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("kip101", 1, 3, &["min.insync.replicas=2"])?;
        let first: Vec<String> = (0..300).map(|i| format!("a-{i}")).collect();
        produce_all(cluster, "kip101", &first)?;
        let leader = cluster
            .leader_of("kip101", 0)?
            .ok_or_else(|| anyhow!("offline"))?;
        let follower = (1..=3).find(|b| *b != leader).unwrap_or(1);
        cluster.kill(follower);
        cluster.start_node(follower)?;
        wait_until(FAILOVER, "the restarted follower back in the ISR", || {
            Ok(isr_of(cluster, "kip101", 0)?.contains(&follower))
        })?;
        cluster.kill(leader);
        wait_for_new_leader(cluster, "kip101", 0, leader)?;
        let second: Vec<String> = (0..100).map(|i| format!("b-{i}")).collect();
        produce_all(cluster, "kip101", &second)?;
        cluster.start_node(leader)?;
        cluster.wait_replicas_agree("kip101", READY)?;
        let read = cluster.consume_values("kip101", None)?;
        let expected: Vec<String> = first.iter().chain(&second).cloned().collect();
        assert_eq!(read, expected, "every acknowledged record, once, in order");
        Ok(())
    });
}

#[test]
fn a_restarted_leader_serves_nothing_before_its_new_incarnation_registered() {
    // The metadata a node replays from disk can still name it leader at the epoch its
    // previous incarnation led, with a tail that incarnation lost; writes accepted under
    // that epoch could differ from what followers hold at the same offsets and epoch.
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("reborn", 1, 3, &["min.insync.replicas=2"])?;
        let first: Vec<String> = (0..200).map(|i| format!("a-{i}")).collect();
        produce_all(cluster, "reborn", &first)?;
        let leader = cluster
            .leader_of("reborn", 0)?
            .ok_or_else(|| anyhow!("offline"))?;
        cluster.kill(leader);
        cluster.start_node(leader)?;
        cluster.wait_ready(READY)?;
        let log = cluster.node_log(leader);
        let incarnation = log
            .rsplit_once("node started")
            .map(|(_, after)| after.to_string())
            .ok_or_else(|| anyhow!("no start in the log"))?;
        let registered = incarnation.find("registered as a broker");
        let opened = incarnation.find("opened replica");
        assert!(
            registered.is_some() && opened.is_some_and(|o| Some(o) > registered),
            "replicas opened before the registration: {incarnation}"
        );
        let second: Vec<String> = (0..100).map(|i| format!("b-{i}")).collect();
        produce_all(cluster, "reborn", &second)?;
        cluster.wait_replicas_agree("reborn", READY)?;
        let read = cluster.consume_values("reborn", None)?;
        let expected: Vec<String> = first.iter().chain(&second).cloned().collect();
        assert_eq!(read, expected, "every acknowledged record, once, in order");
        Ok(())
    });
}

#[test]
fn a_paused_leader_is_fenced_and_acknowledges_nothing_after() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("zombie", 1, 3, &["min.insync.replicas=2"])?;
        let before: Vec<String> = (0..50).map(|i| format!("before-{i}")).collect();
        produce_all(cluster, "zombie", &before)?;
        let old = cluster
            .leader_of("zombie", 0)?
            .ok_or_else(|| anyhow!("offline"))?;
        let old_addr = cluster.node_addr(old);
        cluster.signal(old, Signal::SIGSTOP)?;
        let new = wait_for_new_leader(cluster, "zombie", 0, old)?;
        let during: Vec<String> = (0..50).map(|i| format!("during-{i}")).collect();
        produce_all(cluster, "zombie", &during)?;
        // A produce reaches the paused leader, which wakes with its old view of the world.
        let zombie_write =
            std::thread::spawn(move || produce_raw(&old_addr, "zombie", 0, "zombie-write"));
        std::thread::sleep(Duration::from_millis(500));
        cluster.signal(old, Signal::SIGCONT)?;
        let outcome = zombie_write
            .join()
            .map_err(|_| anyhow!("producer thread panicked"))?;
        assert!(
            outcome.is_err(),
            "the fenced leader acknowledged an acks=all write: {outcome:?}"
        );
        cluster.wait_replicas_agree("zombie", READY)?;
        assert_eq!(cluster.leader_of("zombie", 0)?, Some(new));
        let read = cluster.consume_values("zombie", None)?;
        let expected: Vec<String> = before.iter().chain(&during).cloned().collect();
        assert_eq!(read, expected, "the zombie's write is not visible");
        Ok(())
    });
}

/// Three controllers plus two broker-only nodes, so an ISR can shrink (and a whole
/// replica set die) while a majority of controllers stays up. Returns a partition of
/// `topic` with at most one controller among its replicas.
fn five_nodes_with_topic(cluster: &mut Cluster, topic: &str) -> anyhow::Result<(u64, Value)> {
    cluster.add_learner(4)?;
    cluster.add_learner(5)?;
    cluster.wait_ready(READY)?;
    cluster.create_topic(topic, 5, 3, &["min.insync.replicas=2"])?;
    cluster.wait_replicas_agree(topic, READY)?;
    let d = cluster.describe(topic)?;
    partitions(&d)
        .into_iter()
        .find(|p| ids(&p["replicas"]).iter().filter(|b| **b <= 3).count() <= 1)
        .map(|p| (p["partition"].as_u64().unwrap_or(0), p))
        .ok_or_else(|| anyhow!("no partition with at most one controller replica: {d}"))
}

#[test]
fn a_lone_leader_refuses_acks_all_and_a_dead_isr_stays_offline_until_it_returns() {
    with_cluster(3, &[], |cluster| {
        let (partition, p) = five_nodes_with_topic(cluster, "lonely")?;
        let leader = p["leader"].as_u64().ok_or_else(|| anyhow!("offline"))?;
        let followers: Vec<u64> = ids(&p["replicas"])
            .into_iter()
            .filter(|b| *b != leader)
            .collect();
        let leader_addr = cluster.node_addr(leader);
        produce_raw(&leader_addr, "lonely", partition as u32, "committed")
            .map_err(|e| anyhow!("acks=all with a full ISR: {e}"))?;

        // Guarantee 3: with the ISR shrunk to the leader, acks=all is refused up front.
        for f in &followers {
            cluster.kill(*f);
        }
        wait_until(FAILOVER, "the ISR shrunk to the leader", || {
            Ok(isr_of(cluster, "lonely", partition)? == vec![leader])
        })?;
        let refused = produce_raw(&leader_addr, "lonely", partition as u32, "refused");
        assert_eq!(refused, Err("NOT_ENOUGH_REPLICAS".to_string()));
        // KIP-966: the follower that left the ISR when it fell below min.insync.replicas
        // holds every committed record and stays eligible; the other may lack some.
        let state = partitions(&cluster.describe("lonely")?)
            .into_iter()
            .find(|p| p["partition"].as_u64() == Some(partition))
            .ok_or_else(|| anyhow!("no partition {partition}"))?;
        let eligible = ids(&state["eligible_leader_replicas"]);
        assert_eq!(eligible.len(), 1, "{state}");
        let out_of_sync = *followers
            .iter()
            .find(|f| !eligible.contains(f))
            .ok_or_else(|| anyhow!("{state}"))?;
        wait_until(READY, "the leader's metrics to show the shrink", || {
            Ok(
                cluster.metric(leader, "rill_under_replicated_partitions")? >= 1.0
                    && cluster.metric(leader, "rill_isr_shrinks_total")? >= 1.0,
            )
        })?;

        // Guarantee 7: the last ISR member dies; the partition stays offline while only
        // out-of-sync replicas are back.
        cluster.kill(leader);
        wait_until(FAILOVER, "the partition offline", || {
            Ok(cluster.leader_of("lonely", partition)?.is_none())
        })?;
        let controller = cluster
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller"))?;
        wait_until(READY, "offline partitions in the metrics", || {
            Ok(cluster.metric(controller, "rill_offline_partitions")? >= 1.0)
        })?;
        cluster.start_node(out_of_sync)?;
        cluster.wait_ready(READY)?;
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            cluster.leader_of("lonely", partition)?,
            None,
            "an out-of-sync replica must not lead with unclean election off"
        );
        assert_eq!(isr_of(cluster, "lonely", partition)?, vec![leader]);

        cluster.start_node(leader)?;
        wait_until(FAILOVER, "the ISR member leading again", || {
            Ok(cluster.leader_of("lonely", partition)? == Some(leader))
        })?;
        wait_until(READY, "the election in the metrics", || {
            Ok(cluster.metric(leader, "rill_leader_elections_won_total")? >= 1.0)
        })?;
        cluster.start_node(eligible[0])?;
        cluster.wait_replicas_agree("lonely", READY)?;
        let values: BTreeSet<String> = cluster
            .consume_values("lonely", None)?
            .into_iter()
            .collect();
        assert!(
            values.contains("committed"),
            "committed record lost: {values:?}"
        );
        assert!(
            !values.contains("refused"),
            "refused record visible: {values:?}"
        );
        Ok(())
    });
}

#[test]
fn acknowledged_writes_survive_killing_every_node_at_once() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("crash", 6, 3, &["min.insync.replicas=2"])?;
        cluster.wait_replicas_agree("crash", READY)?;
        let verify = cluster.spawn_rill(&[
            "verify",
            "--topic",
            "crash",
            "--duration-s",
            "12",
            "--rate",
            "300",
            "--acks",
            "all",
        ])?;
        std::thread::sleep(Duration::from_secs(4));
        for id in 1..=3 {
            cluster.kill(id);
        }
        std::thread::sleep(Duration::from_millis(500));
        for id in 1..=3 {
            cluster.start_node(id)?;
        }
        let verdict = assert_verified(&verify.wait()?)?;
        eprintln!("verdict after killing every node: {verdict}");
        cluster.wait_replicas_agree("crash", READY)
    });
}

/// Kills the leader of partition 0 (its preferred replica), restarts it and waits until
/// it is back in the ISR. Returns the preferred replica.
fn move_leadership_off_preferred(cluster: &mut Cluster, topic: &str) -> anyhow::Result<u64> {
    cluster.wait_ready(READY)?;
    cluster.create_topic(topic, 3, 3, &[])?;
    let d = cluster.describe(topic)?;
    let preferred = ids(&partitions(&d)[0]["replicas"])[0];
    assert_eq!(cluster.leader_of(topic, 0)?, Some(preferred));
    cluster.kill(preferred);
    wait_for_new_leader(cluster, topic, 0, preferred)?;
    cluster.start_node(preferred)?;
    wait_until(FAILOVER, "the preferred replica back in the ISR", || {
        Ok(isr_of(cluster, topic, 0)?.contains(&preferred))
    })?;
    Ok(preferred)
}

#[test]
fn elect_leaders_hands_leadership_back_to_the_preferred_replica() {
    with_cluster(3, &["--auto-leader-rebalance-enable", "false"], |cluster| {
        let preferred = move_leadership_off_preferred(cluster, "pref")?;
        assert_ne!(cluster.leader_of("pref", 0)?, Some(preferred));
        let out = cluster.json(&["cluster", "elect-leaders", "--topic", "pref"])?;
        assert!(out["partitions_elected"].as_u64() >= Some(1), "{out}");
        assert_eq!(cluster.leader_of("pref", 0)?, Some(preferred));
        let unknown = cluster.rill(&["cluster", "elect-leaders", "--topic", "nope"])?;
        assert_eq!(unknown.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("UNKNOWN_TOPIC_OR_PARTITION"));
        Ok(())
    });
}

#[test]
fn leadership_returns_to_preferred_replicas_by_itself() {
    with_cluster(
        3,
        &["--leader-imbalance-check-interval-seconds", "1"],
        |cluster| {
            let preferred = move_leadership_off_preferred(cluster, "auto")?;
            wait_until(FAILOVER, "the preferred replica leading again", || {
                Ok(cluster.leader_of("auto", 0)? == Some(preferred))
            })
        },
    );
}
