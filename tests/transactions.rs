//! Transactions with real nodes and Rill's own client and CLI (issue 15, DESIGN.md
//! guarantee 10): a read_committed consumer sees all of a committed transaction or none
//! of it and nothing of an aborted one; a newer producer with the same transactional id
//! fences the older; `rill copy` turns input into output exactly once through broker,
//! coordinator and copier kills.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure};
use bytes::Bytes;
use common::{with_cluster, Cluster};
use rill_client::{
    Bootstrap, ConsumerGroupMetadata, ProducerConfig, ProducerRecord, TransactionalConfig,
    TransactionalProducer,
};
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);

/// `(partition, offset, value)` of every record of `topic` read from the beginning.
fn read(
    cluster: &Cluster,
    topic: &str,
    isolation: &str,
) -> anyhow::Result<Vec<(u64, u64, String)>> {
    let out = cluster.rill(&[
        "consume",
        topic,
        "--from-beginning",
        "--timeout-ms",
        "3000",
        "--json",
        "--isolation-level",
        isolation,
    ])?;
    ensure!(
        out.status.success(),
        "consume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_records(&String::from_utf8_lossy(&out.stdout))
}

fn parse_records(text: &str) -> anyhow::Result<Vec<(u64, u64, String)>> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|line| {
            let v: Value = serde_json::from_str(line)?;
            Ok((
                v["partition"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("partition"))?,
                v["offset"].as_u64().ok_or_else(|| anyhow!("offset"))?,
                v["value"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn values(records: &[(u64, u64, String)]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.2.clone()).collect();
    v.sort();
    v
}

fn record(topic: &str, partition: u32, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        partition: Some(partition),
        value: Some(Bytes::from(value.to_string())),
        ..Default::default()
    }
}

#[test]
fn the_rust_transactional_producer_commits_aborts_and_a_newer_producer_fences_it() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("tx", 3, 3, &[])?;
        let runtime = tokio::runtime::Runtime::new()?;
        let _context = runtime.enter();
        let bootstrap = Bootstrap::new(&cluster.bootstrap())?;
        let mut first = runtime.block_on(async {
            let mut p = TransactionalProducer::new(
                bootstrap.clone(),
                ProducerConfig::default(),
                TransactionalConfig::new("orders"),
            )?;
            ensure!(
                p.begin().is_err(),
                "begin before init_transactions is refused"
            );
            p.init_transactions().await?;
            // Committed: ten records over three partitions.
            p.begin()?;
            for i in 0..10 {
                drop(
                    p.send(record("tx", i % 3, &format!("committed-{i}")))
                        .await?,
                );
            }
            p.commit().await?;
            // Aborted: five records.
            p.begin()?;
            for i in 0..5 {
                drop(p.send(record("tx", i % 3, &format!("aborted-{i}"))).await?);
            }
            p.abort().await?;
            // An empty transaction commits without a call.
            p.begin()?;
            p.commit().await?;
            // Left open: three records.
            p.begin()?;
            for i in 0..3 {
                drop(p.send(record("tx", i % 3, &format!("open-{i}"))).await?);
            }
            anyhow::Ok(p)
        })?;
        // The open records are written (read_uncommitted sees them) but not committed.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let uncommitted = read(cluster, "tx", "read_uncommitted")?;
            if uncommitted.len() == 18 || Instant::now() > deadline {
                ensure!(
                    uncommitted.len() == 18,
                    "read_uncommitted sees 10 committed, 5 aborted and 3 open records: {uncommitted:?}"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let committed: Vec<String> = (0..10).map(|i| format!("committed-{i}")).collect();
        let mut expected = committed.clone();
        expected.sort();
        assert_eq!(values(&read(cluster, "tx", "read_committed")?), expected);
        let described = cluster.json(&["txn", "describe", "orders"])?;
        assert_eq!(described["state"], "Ongoing", "{described}");
        assert_eq!(
            described["partitions"].as_array().map(Vec::len),
            Some(3),
            "{described}"
        );
        let listed = cluster.json(&["txn", "list"])?;
        assert!(
            listed["transactions"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["transactional_id"] == "orders")),
            "{listed}"
        );

        // A second producer with the id fences the first and aborts its open transaction.
        let mut second = runtime.block_on(async {
            let mut p = TransactionalProducer::new(
                bootstrap.clone(),
                ProducerConfig::default(),
                TransactionalConfig::new("orders"),
            )?;
            p.init_transactions().await?;
            anyhow::Ok(p)
        })?;
        runtime.block_on(async {
            let fenced = |e: Option<rill_client::ClientError>| e.map(|e| e.code().to_string());
            let sent = match first.send(record("tx", 0, "zombie")).await {
                Ok(delivery) => delivery.await.err(),
                Err(e) => Some(e),
            };
            let commit = first.commit().await.err();
            assert_eq!(fenced(commit).as_deref(), Some("PRODUCER_FENCED"));
            assert_eq!(
                fenced(sent).as_deref(),
                Some("PRODUCER_FENCED"),
                "the fenced producer's record is refused"
            );
            let group = ConsumerGroupMetadata {
                group_id: "g".into(),
                member_id: String::new(),
                group_instance_id: None,
                generation: -1,
            };
            let offsets = first
                .send_offsets_to_transaction(&[(("tx".into(), 0), 1)], &group)
                .await
                .err();
            assert_eq!(fenced(offsets).as_deref(), Some("PRODUCER_FENCED"));
            second.begin()?;
            drop(second.send(record("tx", 1, "second-0")).await?);
            second.commit().await?;
            anyhow::Ok(())
        })?;
        let mut expected = committed.clone();
        expected.push("second-0".into());
        expected.sort();
        assert_eq!(
            values(&read(cluster, "tx", "read_committed")?),
            expected,
            "the zombie changed nothing; the open transaction was aborted"
        );
        // The CLI: all of stdin is one transaction.
        let out = cluster.rill_with_input(
            &[
                "produce",
                "tx",
                "--transactional-id",
                "cli",
                "--partition",
                "2",
            ],
            b"cli-a\ncli-b\n",
        )?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = values(&read(cluster, "tx", "read_committed")?);
        assert!(after.contains(&"cli-a".to_string()) && after.contains(&"cli-b".to_string()));
        assert!(
            !after
                .iter()
                .any(|v| v.starts_with("aborted") || v.starts_with("open")),
            "{after:?}"
        );
        runtime.block_on(async {
            second.close().await;
            first.close().await;
        });
        Ok(())
    });
}

/// Checks `output` (read_committed, `(partition, offset, value)`) against the input:
/// every input value exactly once, and each input partition's records in input order.
fn check_exactly_once(
    input: &[(u64, u64, String)],
    output: &[(u64, u64, String)],
) -> anyhow::Result<()> {
    let by_value: HashMap<&str, (u64, u64)> = input
        .iter()
        .map(|(p, o, v)| (v.as_str(), (*p, *o)))
        .collect();
    ensure!(by_value.len() == input.len(), "input values are unique");
    let mut seen = HashSet::new();
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    let mut sorted = output.to_vec();
    sorted.sort_by_key(|(p, o, _)| (*p, *o));
    for (_, _, value) in &sorted {
        let Some((in_partition, in_offset)) = by_value.get(value.as_str()) else {
            bail!("{value} is not an input value");
        };
        ensure!(seen.insert(value.clone()), "{value} copied twice");
        if let Some(prev) = last.insert(*in_partition, *in_offset) {
            ensure!(
                prev < *in_offset,
                "input partition {in_partition}: offset {in_offset} copied after {prev}"
            );
        }
    }
    ensure!(
        seen.len() == input.len(),
        "{} of {} input records copied",
        seen.len(),
        input.len()
    );
    Ok(())
}

#[test]
fn rill_copy_copies_every_record_exactly_once_through_broker_coordinator_and_copier_kills() {
    const RECORDS: usize = 100_000;
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("orders", 6, 3, &[])?;
        cluster.create_topic("orders-copy", 3, 3, &[])?;
        let input: String = (0..RECORDS).map(|i| format!("k{i},v{i}\n")).collect();
        let out = cluster.rill_with_input(
            &["produce", "orders", "--key-separator", ",", "--idempotent"],
            input.as_bytes(),
        )?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let input = read(cluster, "orders", "read_committed")?;
        ensure!(input.len() == RECORDS, "{} input records", input.len());

        let copy_args = [
            "copy",
            "--from",
            "orders",
            "--to",
            "orders-copy",
            "--group",
            "copier",
            "--transactional-id",
            "copier-1",
            "--transaction-size",
            "1000",
            "--abort-ratio",
            "0.33",
            "--timeout-ms",
            "5000",
            "--json",
        ];
        let watch_out = cluster.scratch("watcher.jsonl");
        let watcher = cluster.spawn_rill_to(
            &[
                "consume",
                "orders-copy",
                "--from-beginning",
                "--json",
                "--timeout-ms",
                "20000",
            ],
            &watch_out,
        )?;
        let mut copier = cluster.spawn_rill_to(&copy_args, &cluster.scratch("copier-a.jsonl"))?;
        let copied = |cluster: &Cluster| -> u64 {
            cluster
                .describe("orders-copy")
                .map(|d| {
                    common::partitions(&d)
                        .iter()
                        .filter_map(|p| p["last_stable_offset"].as_u64())
                        .sum()
                })
                .unwrap_or(0)
        };
        // A broker that is not the coordinator, then the coordinator's node.
        std::thread::sleep(Duration::from_secs(2));
        let coordinator = cluster
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller"))?;
        let other = (1..=3).find(|n| *n != coordinator).unwrap_or(1);
        eprintln!(
            "killing broker {other} at ~{} output offsets",
            copied(cluster)
        );
        cluster.restart(other, Duration::from_secs(2))?;
        cluster.wait_ready(READY)?;
        let coordinator = cluster
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller"))?;
        eprintln!(
            "killing the coordinator's node {coordinator} at ~{} output offsets",
            copied(cluster)
        );
        cluster.restart(coordinator, Duration::from_secs(2))?;
        cluster.wait_ready(READY)?;
        // The copier itself: its successor fences it and aborts its open transaction.
        let before = copied(cluster);
        eprintln!("killing the copier at ~{before} output offsets");
        copier.kill();
        copier = cluster.spawn_rill_to(&copy_args, &cluster.scratch("copier-b.jsonl"))?;
        let finished = copier.wait()?;
        ensure!(finished.status.success(), "the copier failed");
        let summary = std::fs::read_to_string(cluster.scratch("copier-b.jsonl"))?;
        eprintln!("second copier: {summary}");
        let output = read(cluster, "orders-copy", "read_committed")?;
        check_exactly_once(&input, &output)?;
        // The consumer that ran through the faults saw no aborted or duplicated record.
        let watched = watcher.wait()?;
        ensure!(watched.status.success(), "the watching consumer failed");
        let watched = parse_records(&std::fs::read_to_string(&watch_out)?)?;
        let mut seen = HashSet::new();
        for (_, _, v) in &watched {
            ensure!(seen.insert(v), "the watching consumer saw {v} twice");
        }
        ensure!(
            watched.len() == RECORDS,
            "the watching consumer saw {} records",
            watched.len()
        );
        let uncommitted = read(cluster, "orders-copy", "read_uncommitted")?;
        eprintln!(
            "{} records copied exactly once; {} records in the output log with aborted ones",
            output.len(),
            uncommitted.len()
        );
        ensure!(
            uncommitted.len() > output.len(),
            "some transactions were aborted"
        );
        Ok(())
    });
}

#[test]
fn rill_verify_in_transactions_with_aborts_reads_no_aborted_record_through_leader_kills() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("payments", 3, 3, &[])?;
        let verify = cluster.spawn_rill(&[
            "verify",
            "--topic",
            "payments",
            "--duration-s",
            "12",
            "--rate",
            "400",
            "--transactional-id",
            "verifier",
            "--abort-ratio",
            "0.3",
            "--transaction-size",
            "50",
        ])?;
        for partition in [0, 1] {
            std::thread::sleep(Duration::from_secs(3));
            let leader = cluster
                .leader_of("payments", partition)?
                .ok_or_else(|| anyhow!("payments-{partition} is offline"))?;
            eprintln!("killing node {leader}, the leader of payments-{partition}");
            cluster.restart(leader, Duration::from_secs(1))?;
        }
        let out = verify.wait()?;
        let verdict: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| anyhow!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
        eprintln!("verdict: {verdict}");
        assert_eq!(verdict["ok"], true, "{verdict}");
        assert_eq!(verdict["aborted_read"], serde_json::json!([]), "{verdict}");
        assert_eq!(verdict["lost"], serde_json::json!([]), "{verdict}");
        ensure!(
            verdict["acked"].as_u64().unwrap_or(0) > 1000
                && verdict["failed"].as_u64().unwrap_or(0) > 500,
            "both committed and aborted transactions: {verdict}"
        );
        Ok(())
    });
}
