//! Consumer groups with real `rill node` and `rill consume --group` processes (issue 5,
//! DESIGN.md guarantee 8): scaling a group, a crashed member, the controller (and so
//! the coordinator) killed mid-consumption, a static member's restart, and bad input.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use common::{wait_until, with_cluster, Background, Cluster};
use rill_proto::v1 as pb;
use rill_proto::v1::group_service_client::GroupServiceClient;
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);
const SETTLE: Duration = Duration::from_secs(30);
const SESSION_MS: u64 = 3000;

/// A `rill consume --group` process writing JSON lines to its own file.
struct Member {
    process: Background,
    out: PathBuf,
}

fn start_member(
    cluster: &Cluster,
    group: &str,
    topic: &str,
    name: &str,
    extra: &[&str],
) -> anyhow::Result<Member> {
    let out = cluster.scratch(&format!("{group}-{name}.jsonl"));
    let session = SESSION_MS.to_string();
    let mut args = vec![
        "consume",
        topic,
        "--group",
        group,
        "--from-beginning",
        "--json",
    ];
    if !extra.contains(&"--session-timeout-ms") {
        args.extend(["--session-timeout-ms", session.as_str()]);
    }
    args.extend_from_slice(extra);
    let process = cluster.spawn_rill_to(&args, &out)?;
    Ok(Member { process, out })
}

/// Values printed by members, from their output files.
fn printed_values(files: &[&Path]) -> anyhow::Result<Vec<String>> {
    let mut values = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)?;
            values.push(v["value"].as_str().unwrap_or_default().to_string());
        }
    }
    Ok(values)
}

fn produce_keyed(
    cluster: &Cluster,
    topic: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<String>> {
    let values: Vec<String> = (from..to).map(|i| format!("v{i}")).collect();
    let input: String = values.iter().map(|v| format!("k{v}:{v}\n")).collect();
    let out = cluster.rill_with_input(
        &["produce", topic, "--acks", "all", "--key-separator", ":"],
        input.as_bytes(),
    )?;
    if !out.status.success() {
        bail!("produce: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(values)
}

fn describe(cluster: &Cluster, group: &str) -> anyhow::Result<Value> {
    cluster.json(&["group", "describe", group])
}

/// partition -> owner over every member of a group description; fails on a partition
/// with two owners.
fn owners(d: &Value) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut owners = BTreeMap::new();
    for m in d["members"].as_array().into_iter().flatten() {
        let id = m["member_id"].as_str().unwrap_or_default().to_string();
        for t in m["assignment"].as_array().into_iter().flatten() {
            for p in t["partitions"].as_array().into_iter().flatten() {
                let p = p.as_u64().unwrap_or(u64::MAX);
                if let Some(other) = owners.insert(p, id.clone()) {
                    bail!("partition {p} owned by {other} and {id} in one generation: {d}");
                }
            }
        }
    }
    Ok(owners)
}

/// Waits until the group is Stable with `members` members that together own every one
/// of `partitions` partitions exactly once.
fn wait_balanced(
    cluster: &Cluster,
    group: &str,
    members: usize,
    partitions: u64,
) -> anyhow::Result<Value> {
    let mut last = Value::Null;
    wait_until(SETTLE, "a stable, fully assigned group", || {
        let d = describe(cluster, group)?;
        let owned = owners(&d)?;
        let ok = d["state"] == "Stable"
            && d["members"].as_array().map_or(0, Vec::len) == members
            && owned.len() as u64 == partitions;
        last = d;
        Ok(ok)
    })
    .map_err(|e| anyhow!("{e}; last: {last}"))?;
    Ok(last)
}

/// Waits until every committed offset of the group reached its partition's end.
fn wait_caught_up(cluster: &Cluster, group: &str, partitions: usize) -> anyhow::Result<()> {
    let mut last = Value::Null;
    wait_until(SETTLE, "the group to commit everything", || {
        let d = describe(cluster, group)?;
        let offsets = d["offsets"].as_array().cloned().unwrap_or_default();
        last = d;
        Ok(offsets.len() == partitions && offsets.iter().all(|o| o["lag"] == 0))
    })
    .map_err(|e| anyhow!("{e}; last: {last}"))
}

fn committed(d: &Value) -> BTreeMap<u64, u64> {
    d["offsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["partition"].as_u64().unwrap_or(0),
                o["committed"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_group_scales_survives_a_crashed_member_and_loses_nothing() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("events", 10, 3, &[])?;
        let mut produced = produce_keyed(cluster, "events", 0, 500)?;
        let mut members: Vec<Member> = (0..3)
            .map(|i| start_member(cluster, "scale", "events", &format!("m{i}"), &[]))
            .collect::<anyhow::Result<_>>()?;
        wait_balanced(cluster, "scale", 3, 10)?;
        produced.extend(produce_keyed(cluster, "events", 500, 1000)?);
        for i in 3..5 {
            members.push(start_member(
                cluster,
                "scale",
                "events",
                &format!("m{i}"),
                &[],
            )?);
        }
        let d = wait_balanced(cluster, "scale", 5, 10)?;
        let sizes: BTreeSet<usize> = owners(&d)?
            .values()
            .fold(BTreeMap::<&String, usize>::new(), |mut m, o| {
                *m.entry(o).or_default() += 1;
                m
            })
            .into_values()
            .collect();
        assert_eq!(
            sizes,
            BTreeSet::from([2]),
            "10 partitions over 5 members: 2 each: {d}"
        );
        produced.extend(produce_keyed(cluster, "events", 1000, 1500)?);

        // A member crashes: the others take its partitions after its session expires.
        let victim = members.remove(0);
        let victim_out = victim.out.clone();
        victim.process.kill();
        let killed_at = Instant::now();
        wait_balanced(cluster, "scale", 4, 10)?;
        let reassigned_after = killed_at.elapsed();
        eprintln!("partitions of a SIGKILLed member reassigned after {reassigned_after:?} (session {SESSION_MS} ms)");
        assert!(
            reassigned_after < Duration::from_millis(SESSION_MS) + Duration::from_secs(5),
            "reassignment took {reassigned_after:?}"
        );
        produced.extend(produce_keyed(cluster, "events", 1500, 2000)?);
        wait_caught_up(cluster, "scale", 10)?;

        let mut files: Vec<&Path> = members.iter().map(|m| m.out.as_path()).collect();
        files.push(&victim_out);
        let printed: BTreeSet<String> = printed_values(&files)?.into_iter().collect();
        let missing: Vec<&String> = produced.iter().filter(|v| !printed.contains(*v)).collect();
        assert!(
            missing.is_empty(),
            "{} committed records never printed: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        Ok(())
    });
}

#[test]
fn committed_offsets_survive_a_controller_kill_and_never_go_backwards() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("ledger", 6, 3, &[])?;
        let mut produced = produce_keyed(cluster, "ledger", 0, 600)?;
        let members: Vec<Member> = (0..2)
            .map(|i| start_member(cluster, "ha", "ledger", &format!("m{i}"), &[]))
            .collect::<anyhow::Result<_>>()?;
        wait_balanced(cluster, "ha", 2, 6)?;
        wait_caught_up(cluster, "ha", 6)?;
        let before = committed(&describe(cluster, "ha")?);

        let controller = cluster
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller"))?;
        cluster.kill(controller);
        produced.extend(produce_keyed(cluster, "ledger", 600, 1200)?);
        let mut snapshots = vec![before];
        wait_until(
            SETTLE,
            "the group to catch up under the new coordinator",
            || {
                let d = describe(cluster, "ha")?;
                snapshots.push(committed(&d));
                let offsets = d["offsets"].as_array().cloned().unwrap_or_default();
                Ok(offsets.len() == 6 && offsets.iter().all(|o| o["lag"] == 0))
            },
        )?;
        for pair in snapshots.windows(2) {
            for (p, offset) in &pair[0] {
                let later = pair[1].get(p).copied().unwrap_or(0);
                assert!(
                    later >= *offset,
                    "partition {p}: committed offset went from {offset} to {later}"
                );
            }
        }
        cluster.start_node(controller)?;
        let files: Vec<&Path> = members.iter().map(|m| m.out.as_path()).collect();
        let printed: BTreeSet<String> = printed_values(&files)?.into_iter().collect();
        let missing = produced.iter().filter(|v| !printed.contains(*v)).count();
        assert_eq!(missing, 0, "records lost across the coordinator failover");
        Ok(())
    });
}

#[test]
fn a_static_member_restarting_within_its_session_keeps_the_generation() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("stat", 4, 1, &[])?;
        let _other = start_member(cluster, "static", "stat", "dynamic", &[])?;
        let session = ["--session-timeout-ms", "15000"];
        let first = start_member(
            cluster,
            "static",
            "stat",
            "s1",
            &[&["--instance-id", "app-1"][..], &session[..]].concat(),
        )?;
        let d = wait_balanced(cluster, "static", 2, 4)?;
        let generation = d["generation"].as_u64();
        let old_member = d["members"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["instance_id"] == "app-1")
            .map(|m| m["member_id"].clone())
            .ok_or_else(|| anyhow!("no static member: {d}"))?;
        first.process.kill();
        let _second = start_member(
            cluster,
            "static",
            "stat",
            "s1-again",
            &[&["--instance-id", "app-1"][..], &session[..]].concat(),
        )?;
        wait_until(SETTLE, "the static member's new incarnation", || {
            let d = describe(cluster, "static")?;
            let static_member = d["members"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["instance_id"] == "app-1")
                .map(|m| m["member_id"].clone());
            Ok(static_member.is_some_and(|m| m != old_member))
        })?;
        let d = wait_balanced(cluster, "static", 2, 4)?;
        assert_eq!(d["generation"].as_u64(), generation, "no rebalance: {d}");
        Ok(())
    });
}

fn code(status: &tonic::Status) -> String {
    rill_proto::status_error_code(status)
        .map(|c| c.to_string())
        .unwrap_or_else(|| status.message().to_string())
}

fn join_request(group: &str, member_id: &str, session_ms: u32) -> pb::JoinGroupRequest {
    pb::JoinGroupRequest {
        group_id: group.into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "test".into(),
        session_timeout_ms: session_ms,
        rebalance_timeout_ms: 5000,
        protocol_type: "consumer".into(),
        protocols: vec![pb::GroupProtocol {
            name: "range".into(),
            subscription: Some(pb::GroupSubscription {
                topics: vec!["bad".into()],
                owned: vec![],
                generation: -1,
            }),
        }],
    }
}

#[test]
fn bad_group_requests_get_their_codes_and_change_nothing() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("bad", 2, 1, &[])?;
        let bootstrap = cluster.node_addr(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut any = GroupServiceClient::connect(format!("http://{bootstrap}")).await?;
            let found = any
                .find_coordinator(pb::FindCoordinatorRequest {
                    group_id: "g".into(),
                })
                .await?
                .into_inner();
            let mut c = GroupServiceClient::connect(format!("http://{}", found.addr)).await?;

            let err = c.join_group(join_request("g", "", 10)).await.err();
            assert_eq!(
                err.as_ref().map(code).as_deref(),
                Some("INVALID_SESSION_TIMEOUT")
            );

            let joined = c
                .join_group(join_request("g", "", 10_000))
                .await?
                .into_inner();
            let me = joined.member_id.clone();
            let assignment = |member: &str, partitions: Vec<u32>| pb::MemberAssignment {
                member_id: member.into(),
                topics: vec![pb::TopicAssignment {
                    topic: "bad".into(),
                    partitions,
                }],
            };
            let sync = |assignments| pb::SyncGroupRequest {
                group_id: "g".into(),
                member_id: me.clone(),
                group_instance_id: None,
                generation: joined.generation,
                assignments,
            };
            let err = c
                .sync_group(sync(vec![
                    assignment(&me, vec![0]),
                    assignment("stranger", vec![1]),
                ]))
                .await
                .err();
            assert_eq!(
                err.as_ref().map(code).as_deref(),
                Some("INVALID_ASSIGNMENT")
            );
            c.sync_group(sync(vec![assignment(&me, vec![0, 1])]))
                .await?;

            let commit = |member: &str, generation: i32| pb::OffsetCommitRequest {
                group_id: "g".into(),
                member_id: member.into(),
                group_instance_id: None,
                generation,
                offsets: vec![pb::PartitionOffset {
                    topic: "bad".into(),
                    partition: 0,
                    offset: 7,
                    metadata: String::new(),
                }],
            };
            let err = c
                .offset_commit(commit(&me, joined.generation - 1))
                .await
                .err();
            assert_eq!(
                err.as_ref().map(code).as_deref(),
                Some("ILLEGAL_GENERATION")
            );
            let err = c
                .offset_commit(commit("nobody", joined.generation))
                .await
                .err();
            assert_eq!(err.as_ref().map(code).as_deref(), Some("UNKNOWN_MEMBER_ID"));
            let fetched = c
                .offset_fetch(pb::OffsetFetchRequest {
                    group_id: "g".into(),
                    partitions: vec![],
                    require_stable: false,
                })
                .await?
                .into_inner();
            assert!(fetched.offsets.is_empty(), "refused commits stored nothing");
            c.offset_commit(commit(&me, joined.generation)).await?;
            anyhow::Ok(())
        })?;
        let d = describe(cluster, "g")?;
        assert_eq!(d["state"], "Stable");
        assert_eq!(committed(&d), BTreeMap::from([(0, 7)]));
        let reset = cluster.rill(&[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "bad",
            "--to-earliest",
        ])?;
        assert!(String::from_utf8_lossy(&reset.stderr).contains("NON_EMPTY_GROUP"));
        let missing = cluster.rill(&["group", "describe", "nope"])?;
        assert!(String::from_utf8_lossy(&missing.stderr).contains("GROUP_ID_NOT_FOUND"));
        Ok(())
    });
}

#[test]
fn reset_offsets_moves_an_empty_group() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("replay", 2, 1, &[])?;
        produce_keyed(cluster, "replay", 0, 100)?;
        let out = cluster.rill(&[
            "consume",
            "replay",
            "--group",
            "r",
            "--from-beginning",
            "--timeout-ms",
            "2000",
        ])?;
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 100);
        let reset = cluster.json(&[
            "group",
            "reset-offsets",
            "r",
            "--topic",
            "replay",
            "--to-earliest",
        ])?;
        assert_eq!(reset.as_array().map(Vec::len), Some(2));
        let again = cluster.rill(&["consume", "replay", "--group", "r", "--timeout-ms", "2000"])?;
        assert_eq!(
            String::from_utf8_lossy(&again.stdout).lines().count(),
            100,
            "replayed from the start"
        );
        let listed = cluster.json(&["group", "list"])?;
        assert!(listed
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| g["group_id"] == "r"));
        Ok(())
    });
}

/// What one member task saw: its current assignment and when each record arrived.
#[derive(Default)]
struct Probe {
    assignment: std::sync::Mutex<BTreeSet<(String, u32)>>,
    received: std::sync::Mutex<Vec<(Instant, (String, u32))>>,
    /// Every assignment the member held, in order (for failure messages).
    history: std::sync::Mutex<Vec<BTreeSet<(String, u32)>>>,
    stop: std::sync::atomic::AtomicBool,
}

/// Runs a member in its own task (as an application thread would), polling until
/// `stop`, then closing it.
fn run_member(
    mut member: rill_client::GroupConsumer,
    probe: std::sync::Arc<Probe>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        while !probe.stop.load(std::sync::atomic::Ordering::SeqCst) {
            let records = member.poll().await?;
            let now = Instant::now();
            if let Ok(mut received) = probe.received.lock() {
                received.extend(records.into_iter().map(|r| (now, (r.topic, r.partition))));
            }
            let now_owned: BTreeSet<(String, u32)> = member.assignment().into_iter().collect();
            if let Ok(mut history) = probe.history.lock() {
                if history.last() != Some(&now_owned) {
                    history.push(now_owned.clone());
                }
            }
            if let Ok(mut a) = probe.assignment.lock() {
                *a = now_owned;
            }
        }
        member.close().await?;
        Ok(())
    })
}

fn assignments(probes: &[std::sync::Arc<Probe>]) -> Vec<BTreeSet<(String, u32)>> {
    probes
        .iter()
        .map(|p| p.assignment.lock().map(|a| a.clone()).unwrap_or_default())
        .collect()
}

/// Every partition owned exactly once, `per_member` each (at most one more).
fn settled(owned: &[BTreeSet<(String, u32)>], partitions: usize) -> bool {
    let total: usize = owned.iter().map(BTreeSet::len).sum();
    let unique: BTreeSet<_> = owned.iter().flatten().collect();
    let (min, max) = (
        owned.iter().map(BTreeSet::len).min().unwrap_or(0),
        owned.iter().map(BTreeSet::len).max().unwrap_or(0),
    );
    total == partitions && unique.len() == partitions && max - min <= 1 && min > 0
}

#[test]
fn cooperative_members_keep_fetching_what_they_keep_during_a_rebalance() {
    use std::sync::Arc;

    use rill_client::{
        Bootstrap, ConsumerConfig, GroupConsumer, GroupConsumerConfig, OffsetReset, Producer,
        ProducerConfig, ProducerRecord,
    };
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("coop", 8, 1, &[])?;
        let bootstrap = cluster.bootstrap();
        let config = move |name: &str| GroupConsumerConfig {
            group_id: "coop".into(),
            client_id: name.into(),
            heartbeat_interval: Duration::from_millis(500),
            assignors: vec!["cooperative-sticky".into()],
            auto_commit_interval: None,
            fetch: ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                max_wait: Duration::from_millis(100),
                ..Default::default()
            },
            ..Default::default()
        };
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            // A steady stream on every partition: 50 records per second each.
            let producer = Arc::new(Producer::new(Bootstrap::new(&bootstrap)?, ProducerConfig { acks: 1, ..Default::default() }));
            let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let (p, flag) = (producer.clone(), producing.clone());
            let stream = tokio::spawn(async move {
                let mut i = 0u32;
                while flag.load(std::sync::atomic::Ordering::SeqCst) {
                    let record = ProducerRecord {
                        topic: "coop".into(),
                        partition: Some(i % 8),
                        value: Some(format!("r{i}").into()),
                        ..Default::default()
                    };
                    drop(p.send(record).await);
                    i += 1;
                    tokio::time::sleep(Duration::from_micros(2500)).await;
                }
            });

            let mut probes = Vec::new();
            let mut tasks = Vec::new();
            for i in 0..4 {
                let mut m = GroupConsumer::new(Bootstrap::new(&bootstrap)?, config(&format!("m{i}")))?;
                m.subscribe(&["coop"], None);
                let probe = Arc::new(Probe::default());
                tasks.push(run_member(m, probe.clone()));
                probes.push(probe);
            }
            let deadline = Instant::now() + SETTLE;
            while !settled(&assignments(&probes), 8) {
                if Instant::now() > deadline {
                    bail!("four members never settled: {:?}", assignments(&probes));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Records flow on every partition before the newcomer comes.
            let flowing = |probes: &[Arc<Probe>]| {
                let since = Instant::now() - Duration::from_millis(300);
                let partitions: BTreeSet<u32> = probes
                    .iter()
                    .flat_map(|p| p.received.lock().map(|r| r.clone()).unwrap_or_default())
                    .filter(|(at, _)| *at > since)
                    .map(|(_, tp)| tp.1)
                    .collect();
                partitions.len() == 8
            };
            while !flowing(&probes) {
                if Instant::now() > deadline {
                    bail!("records never flowed on every partition");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let initial = assignments(&probes);

            // A fifth member joins; the window ends when it holds partitions.
            let mut newcomer = GroupConsumer::new(Bootstrap::new(&bootstrap)?, config("m4"))?;
            newcomer.subscribe(&["coop"], None);
            let newcomer_probe = Arc::new(Probe::default());
            let window_start = Instant::now();
            tasks.push(run_member(newcomer, newcomer_probe.clone()));
            probes.push(newcomer_probe.clone());
            while assignments(std::slice::from_ref(&newcomer_probe))[0].is_empty() {
                if Instant::now() > deadline + SETTLE {
                    bail!("the newcomer never got partitions");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let window_end = Instant::now();
            eprintln!("the joining member got its partitions after {:?}", window_end - window_start);
            while !settled(&assignments(&probes), 8) {
                if Instant::now() > deadline + SETTLE * 2 {
                    bail!("five members never settled: {:?}", assignments(&probes));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let last = assignments(&probes);
            for i in 0..4 {
                let kept: BTreeSet<_> = initial[i].intersection(&last[i]).cloned().collect();
                let during: BTreeSet<(String, u32)> = probes[i]
                    .received
                    .lock()
                    .map(|r| {
                        r.iter()
                            .filter(|(at, _)| *at > window_start && *at < window_end)
                            .map(|(_, tp)| tp.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let idle: Vec<_> = kept.difference(&during).collect();
                let history = probes[i].history.lock().map(|h| h.clone()).unwrap_or_default();
                assert!(
                    idle.is_empty(),
                    "member {i} stopped fetching kept partitions {idle:?} during the rebalance ({:?}); assignments: {history:?}",
                    window_end - window_start
                );
            }
            producing.store(false, std::sync::atomic::Ordering::SeqCst);
            stream.await?;
            for p in &probes {
                p.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            for t in tasks {
                t.await??;
            }
            anyhow::Ok(())
        })
    });
}

#[test]
fn a_member_that_stops_polling_leaves_after_max_poll_interval() {
    use std::sync::Arc;

    use rill_client::{Bootstrap, GroupConsumer, GroupConsumerConfig};
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("stuck", 4, 1, &[])?;
        let bootstrap = cluster.bootstrap();
        let config = |name: &str| GroupConsumerConfig {
            group_id: "stuck".into(),
            client_id: name.into(),
            max_poll_interval: Duration::from_secs(2),
            ..Default::default()
        };
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            let mut healthy = GroupConsumer::new(Bootstrap::new(&bootstrap)?, config("healthy"))?;
            healthy.subscribe(&["stuck"], None);
            let probe = Arc::new(Probe::default());
            let task = run_member(healthy, probe.clone());
            let mut stuck = GroupConsumer::new(Bootstrap::new(&bootstrap)?, config("stuck"))?;
            stuck.subscribe(&["stuck"], None);
            let deadline = Instant::now() + SETTLE;
            while stuck.assignment().is_empty()
                || assignments(std::slice::from_ref(&probe))[0].len() + stuck.assignment().len()
                    != 4
            {
                if Instant::now() > deadline {
                    bail!("the two members never shared the partitions");
                }
                stuck.poll().await?;
            }
            // The application hangs: no more polls. Its partitions go to the other member.
            while assignments(std::slice::from_ref(&probe))[0].len() != 4 {
                if Instant::now() > deadline + SETTLE {
                    bail!("the stuck member's partitions never moved");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            probe.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            task.await??;
            drop(stuck);
            anyhow::Ok(())
        })
    });
}
