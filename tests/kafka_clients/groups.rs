//! Consumer groups of real Kafka clients: scaling, a SIGKILLed member, a SIGKILLed
//! coordinator, cooperative rebalances, static members, offsets moved by an admin.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::Value;

use super::common::{self, wait_until, with_cluster};
use super::{kcat, python, script, KillOnDrop, CLIENTS_DIR};
use harness::{check_snapshots, partitions_of, read_events, MemberSpec, Watcher};

#[test]
fn confluent_kafka_group_scales_loses_a_member_and_its_coordinator_and_never_goes_back() {
    const RECORDS: usize = 50_000;
    const SESSION_MS: u32 = 6000;
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("scaled", 12, 3, &[])?;
        let watcher = Watcher::start(c.bootstrap(), "scaled-group");
        let spec = MemberSpec {
            topic: "scaled",
            group: "scaled-group",
            strategy: "range",
            session_ms: SESSION_MS,
        };
        let mut producer = KillOnDrop(
            Command::new(python()?)
                .arg(format!("{CLIENTS_DIR}/ck_produce.py"))
                .args([&c.kafka_bootstrap(), "scaled", &RECORDS.to_string(), "1500"])
                .stdout(std::fs::File::create(c.scratch("producer.out"))?)
                .stderr(std::fs::File::create(c.scratch("producer.err"))?)
                .spawn()?,
        );
        let mut members = BTreeMap::new();
        for name in ["m1", "m2", "m3"] {
            members.insert(name, spec.spawn(c, name, None)?);
        }
        watcher.wait_stable(&["m1", "m2", "m3"], 12, Duration::from_secs(60))?;
        for name in ["m4", "m5"] {
            members.insert(name, spec.spawn(c, name, None)?);
        }
        watcher.wait_stable(&["m1", "m2", "m3", "m4", "m5"], 12, Duration::from_secs(60))?;

        // A member dies without leaving: its partitions move once its session expires.
        let mut victim = members.remove("m2").ok_or_else(|| anyhow!("no m2"))?;
        let killed_at = Instant::now();
        victim.process.0.kill()?;
        let _ = victim.process.0.wait();
        watcher.wait_stable(&["m1", "m3", "m4", "m5"], 12, Duration::from_secs(40))?;
        let moved_after = killed_at.elapsed();
        assert!(
            moved_after >= Duration::from_millis(u64::from(SESSION_MS) - 1000),
            "m2's partitions moved {moved_after:?} after the kill, before its session expired"
        );

        // The coordinator (the controller leader) dies; the group carries on elsewhere.
        let coordinator = c
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller"))?;
        c.kill(coordinator);
        std::thread::sleep(Duration::from_secs(3));
        c.start_node(coordinator)?;

        let deadline = Instant::now() + Duration::from_secs(240);
        while producer.0.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!(
                    "the producer did not finish: {}",
                    std::fs::read_to_string(c.scratch("producer.err")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = std::fs::read_to_string(c.scratch("producer.out"))?;
        let acked: Value = serde_json::from_str(out.lines().last().unwrap_or("{}"))?;
        let acked: BTreeSet<String> = acked["acked"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        assert_eq!(acked.len(), RECORDS, "every record acknowledged");

        // Everything is consumed and committed: no lag on any partition.
        wait_until(Duration::from_secs(120), "no lag", || {
            let Some(g) = watcher.latest() else {
                return Ok(false);
            };
            let offsets = g["offsets"].as_array().cloned().unwrap_or_default();
            Ok(offsets.len() == 12 && offsets.iter().all(|o| o["lag"] == 0))
        })?;
        let mut logs = vec![victim.log.clone()];
        for (_, m) in members {
            logs.push(m.log.clone());
            m.stop()?;
        }
        let snapshots = watcher.stop();
        check_snapshots(&snapshots);
        let consumed: BTreeSet<String> = logs
            .iter()
            .flat_map(|l| read_events(l))
            .filter_map(|e| e["v"].as_str().map(str::to_string))
            .collect();
        let missing: Vec<&String> = acked.difference(&consumed).take(10).collect();
        assert!(
            missing.is_empty(),
            "acknowledged but never consumed: {missing:?}"
        );
        let generations: BTreeSet<i64> = snapshots
            .iter()
            .filter_map(|g| g["generation"].as_i64())
            .collect();
        assert!(generations.len() >= 3, "generations seen: {generations:?}");
        let events: Vec<Value> = logs.iter().flat_map(|l| read_events(l)).collect();
        let read = events.iter().filter(|e| e.get("v").is_some()).count();
        let commit_errors = events
            .iter()
            .filter(|e| e.get("commit_error").is_some())
            .count();
        println!(
            "{} acked, {read} read ({} again), m2 moved after {moved_after:?}, generations \
             {generations:?}, {} snapshots, {commit_errors} commits refused",
            acked.len(),
            read - consumed.len(),
            snapshots.len()
        );
        Ok(())
    });
}

#[test]
fn cooperative_members_keep_what_stays_and_a_static_member_returns_to_its_partitions() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("coop", 6, 3, &[])?;
        // Cooperative-sticky: a third member joins a stable group of two.
        let watcher = Watcher::start(c.bootstrap(), "coop-group");
        let spec = MemberSpec {
            topic: "coop",
            group: "coop-group",
            strategy: "cooperative-sticky",
            session_ms: 10_000,
        };
        let a = spec.spawn(c, "a", None)?;
        let b = spec.spawn(c, "b", None)?;
        let before = watcher.wait_stable(&["a", "b"], 6, Duration::from_secs(60))?;
        let third = spec.spawn(c, "c", None)?;
        let after = watcher.wait_stable(&["a", "b", "c"], 6, Duration::from_secs(60))?;
        check_snapshots(&watcher.stop());
        for (name, member) in [("a", &a), ("b", &b)] {
            let kept = partitions_of(&after, name);
            let had = partitions_of(&before, name);
            assert!(kept.is_subset(&had), "{name} gained {kept:?} from {had:?}");
            let revoked: BTreeSet<u64> = member
                .events()
                .iter()
                .filter_map(|e| e["revoke"].as_array().cloned())
                .flatten()
                .filter_map(|p| p.as_u64())
                .collect();
            assert!(
                revoked.is_disjoint(&kept),
                "{name} had {revoked:?} revoked but keeps {kept:?}"
            );
            assert!(
                member.events().iter().all(|e| e.get("lost").is_none()),
                "{name} lost partitions"
            );
        }
        assert_eq!(partitions_of(&after, "c").len(), 2, "{after}");
        for m in [a, b, third] {
            m.stop()?;
        }

        // A static member SIGKILLed and restarted within its session timeout gets its
        // partitions back in the same generation.
        c.create_topic("statics", 4, 3, &[])?;
        let watcher = Watcher::start(c.bootstrap(), "static-group");
        let spec = MemberSpec {
            topic: "statics",
            group: "static-group",
            strategy: "range",
            session_ms: 20_000,
        };
        let first = spec.spawn(c, "s1", Some("instance-1"))?;
        let other = spec.spawn(c, "s2", Some("instance-2"))?;
        let stable = watcher.wait_stable(&["s1", "s2"], 4, Duration::from_secs(60))?;
        let owned = partitions_of(&stable, "s1");
        let other_seen = other.events().len();
        drop(first); // SIGKILL: a static member sends no LeaveGroup anyway
        let again = spec.spawn(c, "s1", Some("instance-1"))?;
        wait_until(
            Duration::from_secs(15),
            "the restarted member assigned",
            || Ok(again.events().iter().any(|e| e.get("assign").is_some())),
        )?;
        let assigned: BTreeSet<u64> = again
            .events()
            .iter()
            .rev()
            .find_map(|e| e["assign"].as_array().cloned())
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_u64())
            .collect();
        assert_eq!(assigned, owned, "the restarted static member's partitions");
        let now = watcher.wait_stable(&["s1", "s2"], 4, Duration::from_secs(10))?;
        assert_eq!(
            now["generation"], stable["generation"],
            "no rebalance: {now}"
        );
        assert!(
            other.events()[other_seen..]
                .iter()
                .all(|e| e.get("revoke").is_none()),
            "the other static member keeps its partitions throughout"
        );
        check_snapshots(&watcher.stop());
        for m in [again, other] {
            m.stop()?;
        }
        Ok(())
    });
}

#[test]
fn confluent_kafka_commits_offsets_and_a_new_consumer_resumes_from_them() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("commits", 1, 3, &[])?;
        let out = script(
            "ck_commit.py",
            &[&c.kafka_bootstrap(), "commits", "billing"],
        )?;
        let first: Vec<u64> = (0..30).collect();
        let second: Vec<u64> = (30..50).collect();
        assert_eq!(out["first"], serde_json::json!(first), "{out}");
        assert_eq!(out["committed"], 30, "{out}");
        assert_eq!(out["metadata"], "checkpoint-a", "{out}");
        assert_eq!(out["second"], serde_json::json!(second), "{out}");
        // The same offsets, through the gRPC side.
        let group = c.json(&["group", "describe", "billing"])?;
        let offsets = group["offsets"].as_array().cloned().unwrap_or_default();
        assert_eq!(offsets.len(), 1, "{group}");
        assert_eq!(offsets[0]["committed"], 30, "{group}");
        // An admin moves the group back; a Kafka consumer of the group resumes there.
        let reset = c.rill(&[
            "group",
            "reset-offsets",
            "billing",
            "--topic",
            "commits",
            "--to-offset",
            "10",
        ])?;
        assert!(reset.status.success(), "{reset:?}");
        let read = kcat(
            &[
                "-b",
                &c.kafka_bootstrap(),
                "-G",
                "billing",
                "commits",
                "-e",
                "-q",
                "-f",
                "%o\n",
            ],
            None,
        )?;
        let offsets: Vec<u64> = read.lines().filter_map(|l| l.parse().ok()).collect();
        assert_eq!(offsets, (10..50).collect::<Vec<u64>>(), "{read}");
        Ok(())
    });
}

#[test]
fn confluent_kafka_consumers_share_a_topic_in_a_group_and_commit() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        for (topic, strategy) in [("shared", "range"), ("shared-coop", "cooperative-sticky")] {
            c.create_topic(topic, 4, 3, &[])?;
            let group = format!("{topic}-group");
            let out = script(
                "ck_group.py",
                &[&c.kafka_bootstrap(), topic, &group, "2000", strategy],
            )?;
            assert_eq!(out["distinct"], 2000, "{strategy}: {out}");
            let a: Vec<u64> = out["assignments"][0]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect();
            let b: Vec<u64> = out["assignments"][1]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect();
            let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
            all.sort_unstable();
            assert_eq!(
                all,
                vec![0, 1, 2, 3],
                "{strategy}: one owner per partition: {out}"
            );
            assert!(
                !a.is_empty() && !b.is_empty(),
                "{strategy}: both members hold partitions: {out}"
            );
            // The group and its offsets, through the gRPC side.
            let described = c.json(&["group", "describe", &group])?;
            let committed: u64 = described["offsets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["committed"].as_u64())
                .sum();
            assert_eq!(committed, 2000, "{strategy}: {described}");
        }
        // The coordinator counted the rebalances of both groups, and the leaders export
        // the committed-offset lag (0: everything was committed).
        let rebalances: f64 = c
            .running()
            .iter()
            .map(|id| c.metric(*id, "rill_group_rebalances_total").unwrap_or(0.0))
            .sum();
        assert!(rebalances >= 2.0, "rebalances counted: {rebalances}");
        common::wait_until(Duration::from_secs(5), "lag gauges", || {
            let series: usize = c
                .running()
                .iter()
                .map(|id| {
                    c.metrics(*id)
                        .unwrap_or_default()
                        .lines()
                        .filter(|l| l.starts_with("rill_group_lag{"))
                        .count()
                })
                .sum();
            Ok(series >= 8)
        })?;
        Ok(())
    });
}

#[test]
fn confluent_kafka_admin_lists_and_describes_a_live_group() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("described", 3, 3, &[])?;
        let out = script(
            "ck_describe_groups.py",
            &[&c.kafka_bootstrap(), "described", "watchers"],
        )?;
        let listed = out["listed"].as_array().cloned().unwrap_or_default();
        assert!(
            listed
                .iter()
                .any(|g| g[0] == "watchers" && g[1].as_str().is_some_and(|s| s.contains("STABLE"))),
            "{out}"
        );
        assert!(
            out["state"].as_str().is_some_and(|s| s.contains("STABLE")),
            "{out}"
        );
        assert_eq!(out["members"][0]["client_id"], "describer", "{out}");
        assert_eq!(
            out["members"][0]["partitions"],
            serde_json::json!([0, 1, 2]),
            "{out}"
        );
        Ok(())
    });
}

#[test]
fn kcat_balanced_consumer_and_kafka_python_subscribe_consume_and_commit() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("grouped", 3, 3, &[])?;
        let bootstrap = c.kafka_bootstrap();
        let lines: String = (0..600).map(|i| format!("k{}:v{i}\n", i % 11)).collect();
        kcat(
            &["-b", &bootstrap, "-P", "-t", "grouped", "-K:"],
            Some(lines.as_bytes()),
        )?;
        // kcat -G (librdkafka 2.0.2): a balanced consumer that commits as it goes.
        let read = kcat(
            &[
                "-b",
                &bootstrap,
                "-G",
                "kcat-group",
                "grouped",
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%s\n",
            ],
            None,
        )?;
        assert_eq!(read.lines().count(), 600);
        let out = script("kp_group.py", &[&bootstrap, "grouped", "kp-group"])?;
        assert_eq!(out["read"], 600, "{out}");
        for group in ["kcat-group", "kp-group"] {
            let described = c.json(&["group", "describe", group])?;
            let lag: i64 = described["offsets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["lag"].as_i64())
                .sum();
            let committed: i64 = described["offsets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["committed"].as_i64())
                .sum();
            assert_eq!((committed, lag), (600, 0), "{group}: {described}");
        }
        Ok(())
    });
}

#[test]
fn kafka_python_deletes_offsets_and_groups_only_where_nobody_consumes() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("kept", 3, 3, &[])?;
        let out = script("kp_group_admin.py", &[&c.kafka_bootstrap(), "kept"])?;
        // A member consumes the topic: its offsets and the group stay.
        assert_eq!(
            out["subscribed"]["0"], "GroupSubscribedToTopicError",
            "{out}"
        );
        assert_eq!(out["delete_live"]["live"], "NonEmptyGroupError", "{out}");
        // Nobody is in "other": one offset goes, then the group with the rest.
        assert_eq!(out["deleted_offset"]["0"], "NoError", "{out}");
        assert_eq!(
            out["other_left"],
            serde_json::json!([[1, 11], [2, 12]]),
            "{out}"
        );
        assert_eq!(out["delete_other"]["other"], "OK", "{out}");
        assert_eq!(out["other_after"], serde_json::json!([]), "{out}");
        assert_eq!(
            out["delete_again"]["other"], "GroupIdNotFoundError",
            "{out}"
        );
        assert_eq!(out["delete_live_after_close"]["live"], "OK", "{out}");
        let listed = c.json(&["group", "list"])?;
        assert!(!listed.to_string().contains("\"other\""), "{listed}");
        Ok(())
    });
}
