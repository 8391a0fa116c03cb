//! End-to-end tests of the data path with real `rill node` processes (issue 3).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use common::{partitions, wait_until, with_cluster, Cluster, RILL};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill_common::record::RecordBatchBuilder;
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_client::BrokerServiceClient;
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);

/// (partition, offset) -> value, from `--json` lines of produce or consume.
fn by_offset(stdout: &[u8]) -> anyhow::Result<BTreeMap<(u64, u64), String>> {
    let mut out = BTreeMap::new();
    for line in stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line)?;
        let key = (
            v["partition"]
                .as_u64()
                .ok_or_else(|| anyhow!("no partition: {v}"))?,
            v["offset"]
                .as_u64()
                .ok_or_else(|| anyhow!("no offset: {v}"))?,
        );
        let value = v["value"].as_str().unwrap_or_default().to_string();
        if out.insert(key, value).is_some() {
            bail!("offset {key:?} seen twice");
        }
    }
    Ok(out)
}

/// Every partition's offsets are dense from 0.
fn assert_dense(records: &BTreeMap<(u64, u64), String>) {
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    for (partition, offset) in records.keys() {
        let expected = next.entry(*partition).or_insert(0);
        assert_eq!(
            *offset, *expected,
            "partition {partition} offsets are dense"
        );
        *expected += 1;
    }
}

fn consume_all(
    cluster: &Cluster,
    topic: &str,
    count: usize,
) -> anyhow::Result<BTreeMap<(u64, u64), String>> {
    let max = count.to_string();
    let out = cluster.rill(&[
        "consume",
        topic,
        "--from-beginning",
        "--max-messages",
        &max,
        "--timeout-ms",
        "15000",
        "--json",
    ])?;
    if !out.status.success() {
        bail!("consume failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    by_offset(&out.stdout)
}

#[test]
fn a_hundred_thousand_records_round_trip_through_the_cli_and_a_restart() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("big", 6, 1, &[])?;
        // Values of random sizes from 1 B to 10 KiB, log-uniform so every size class is
        // well represented; slices of a random alphanumeric pool keep generation fast.
        let mut rng = StdRng::seed_from_u64(3);
        let pool: Vec<u8> = (0..1 << 20)
            .map(|_| rng.sample(rand::distr::Alphanumeric))
            .collect();
        let mut input = Vec::new();
        let mut total_bytes = 0usize;
        for i in 0..100_000 {
            let size = (10_240f64.powf(rng.random::<f64>()))
                .round()
                .clamp(1.0, 10_240.0) as usize;
            let start = rng.random_range(0..pool.len() - size);
            total_bytes += size;
            write!(input, "key{}:", i % 5_000)?;
            input.extend_from_slice(&pool[start..start + size]);
            input.push(b'\n');
        }
        eprintln!("producing 100000 records, {total_bytes} value bytes");
        let out = cluster.rill_with_input(
            &["produce", "big", "--key-separator", ":", "--json"],
            &input,
        )?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let acked = by_offset(&out.stdout)?;
        assert_eq!(acked.len(), 100_000);
        assert_dense(&acked);

        let consumed = consume_all(cluster, "big", 100_000)?;
        assert!(
            consumed == acked,
            "consumed records equal acknowledged records"
        );

        for id in cluster.running() {
            cluster.kill(id);
        }
        for id in 1..=3 {
            cluster.start_node(id)?;
        }
        cluster.wait_ready(READY)?;
        let again = consume_all(cluster, "big", 100_000)?;
        assert!(again == acked, "the same after every node restarted");
        Ok(())
    });
}

#[test]
fn acknowledged_records_survive_a_sigkill_mid_stream() {
    with_cluster(1, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("crash", 3, 1, &[])?;
        let mut producer = Command::new(RILL)
            .args([
                "produce",
                "crash",
                "--acks",
                "1",
                "--json",
                "--key-separator",
                ":",
            ])
            .args(["--bootstrap", &cluster.bootstrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = producer.stdin.take().ok_or_else(|| anyhow!("stdin"))?;
        let stdout = producer.stdout.take().ok_or_else(|| anyhow!("stdout"))?;
        let writer = std::thread::spawn(move || {
            for i in 0..2_000_000u64 {
                if writeln!(stdin, "k{}:value-{i}", i % 97).is_err() {
                    return;
                }
                if i % 500 == 0 {
                    let _ = stdin.flush();
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let acks = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    acks.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            })
        };
        wait_until(Duration::from_secs(60), "20000 acks", || {
            Ok(acks.lock().unwrap_or_else(|e| e.into_inner()).len() >= 20_000)
        })?;
        cluster.kill(1);
        std::thread::sleep(Duration::from_millis(300));
        let _ = producer.kill();
        let _ = producer.wait();
        let _ = writer.join();
        let _ = reader.join();
        let lines = acks.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
        let acked = by_offset(lines.as_bytes())?;
        eprintln!("{} records acknowledged before the kill", acked.len());

        cluster.start_node(1)?;
        cluster.wait_ready(READY)?;
        let topic = cluster.json(&["topic", "describe", "crash"])?;
        let total: u64 = partitions(&topic)
            .iter()
            .filter_map(|p| p["high_watermark"].as_u64())
            .sum();
        let consumed = consume_all(cluster, "crash", total as usize)?;
        assert_dense(&consumed);
        for (key, value) in &acked {
            assert_eq!(
                consumed.get(key),
                Some(value),
                "acknowledged record {key:?} is readable"
            );
        }
        Ok(())
    });
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn batch(values: &[&str]) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    for v in values {
        b.push(None, Some(v.as_bytes()), 1);
    }
    Bytes::from(b.build())
}

fn code(status: &tonic::Status) -> String {
    rill_proto::status_error_code(status)
        .map(|c| c.to_string())
        .unwrap_or_default()
}

#[test]
fn bad_input_gets_clear_error_codes_and_stores_nothing() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("small", 1, 1, &["max.message.bytes=1024"])?;
        let big = "x".repeat(2000);
        let out = cluster.rill_with_input(&["produce", "small"], format!("{big}\n").as_bytes())?;
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("MESSAGE_TOO_LARGE"));
        let out = cluster.rill_with_input(&["produce", "missing"], b"x\n")?;
        assert!(String::from_utf8_lossy(&out.stderr).contains("UNKNOWN_TOPIC_OR_PARTITION"));
        let out = cluster.rill(&["consume", "missing", "--timeout-ms", "100"])?;
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("UNKNOWN_TOPIC_OR_PARTITION"));

        let topic = cluster.json(&["topic", "describe", "small"])?;
        let leader = partitions(&topic)[0]["leader"].as_u64().unwrap_or(0);
        let other = (1..=3).find(|id| *id != leader).unwrap_or(1);
        let (leader_addr, other_addr) = (cluster.node_addr(leader), cluster.node_addr(other));
        runtime()?.block_on(async {
            let mut client = BrokerServiceClient::connect(format!("http://{leader_addr}")).await?;
            let produce = |records: Bytes, topic: &str| pb::ProduceRequest {
                topic: topic.to_string(),
                partition: 0,
                acks: -1,
                records,
                timeout_ms: 5000,
                transactional_id: None,
            };
            let mut corrupt = batch(&["good", "data"]).to_vec();
            let last = corrupt.len() - 1;
            corrupt[last] ^= 0x55;
            let err = client
                .produce(produce(Bytes::from(corrupt), "small"))
                .await
                .err();
            assert_eq!(err.as_ref().map(code).as_deref(), Some("CORRUPT_MESSAGE"));
            let err = client
                .produce(produce(Bytes::from_static(b"not a batch"), "small"))
                .await
                .err();
            assert_eq!(err.as_ref().map(code).as_deref(), Some("CORRUPT_MESSAGE"));
            let err = client
                .produce(produce(batch(&["x"]), "missing"))
                .await
                .err();
            assert_eq!(
                err.as_ref().map(code).as_deref(),
                Some("UNKNOWN_TOPIC_OR_PARTITION")
            );
            // A transactional batch that names no transactional id (and so no
            // coordinator vouches for it) would open a transaction nobody ends.
            let mut txn = RecordBatchBuilder::new();
            txn.producer_id = 77;
            txn.producer_epoch = 0;
            txn.base_sequence = 0;
            txn.transactional = true;
            txn.push(None, Some(b"orphan"), 1);
            let err = client
                .produce(produce(Bytes::from(txn.build()), "small"))
                .await
                .err();
            assert_eq!(err.as_ref().map(code).as_deref(), Some("INVALID_REQUEST"));
            let mut follower = BrokerServiceClient::connect(format!("http://{other_addr}")).await?;
            let err = follower
                .produce(produce(batch(&["x"]), "small"))
                .await
                .err();
            assert_eq!(
                err.as_ref().map(code).as_deref(),
                Some("NOT_LEADER_OR_FOLLOWER")
            );
            let ok = client.produce(produce(batch(&["one"]), "small")).await?;
            assert_eq!(
                ok.into_inner().base_offset,
                0,
                "nothing was stored by the bad requests"
            );

            let fetch = |offset: u64, topic: &str| pb::FetchRequest {
                replica_id: -1,
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: 1 << 20,
                isolation_level: pb::IsolationLevel::ReadCommitted.into(),
                partitions: vec![pb::FetchPartition {
                    topic: topic.to_string(),
                    partition: 0,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    current_leader_epoch: None,
                    last_fetched_epoch: None,
                }],
            };
            let r = client.fetch(fetch(5, "small")).await?.into_inner();
            assert_eq!(r.partitions[0].error_code, "OFFSET_OUT_OF_RANGE");
            let r = client.fetch(fetch(0, "missing")).await?.into_inner();
            assert_eq!(r.partitions[0].error_code, "UNKNOWN_TOPIC_OR_PARTITION");
            let r = client.fetch(fetch(0, "small")).await?.into_inner();
            assert_eq!(r.partitions[0].error_code, "");
            assert_eq!(r.partitions[0].high_watermark, 1);
            anyhow::Ok(())
        })?;
        let out = cluster.rill(&[
            "consume",
            "small",
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ])?;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "one\n",
            "only the good record is visible"
        );
        Ok(())
    });
}

#[test]
fn the_producer_follows_a_partition_to_its_new_leader() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("moving", 1, 2, &[])?;
        let topic = cluster.json(&["topic", "describe", "moving"])?;
        let old_leader = partitions(&topic)[0]["leader"].as_u64().unwrap_or(0);
        let bootstrap = cluster.bootstrap();
        let before = cluster.rill_with_input(&["produce", "moving", "--json"], b"before\n")?;
        assert!(before.status.success());
        cluster.kill(old_leader);
        // The client learns the new leader (after the old one's session expires) and
        // retries there; no error reaches the user.
        let out = Command::new(RILL)
            .args(["produce", "moving", "--json", "--bootstrap", &bootstrap])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(b"after\n")?;
                }
                child.wait_with_output()
            })?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let topic = cluster.json(&["topic", "describe", "moving"])?;
        let new_leader = partitions(&topic)[0]["leader"].as_u64();
        assert!(
            new_leader.is_some() && new_leader != Some(old_leader),
            "{topic}"
        );
        Ok(())
    });
}

#[test]
fn retention_trims_old_data_and_a_deleted_topic_leaves_nothing_behind() {
    with_cluster(
        1,
        &["--log-retention-check-interval-ms", "200"],
        |cluster| {
            cluster.wait_ready(READY)?;
            cluster.create_topic("trimmed", 1, 1, &["retention.bytes=20000"])?;
            let lines: String = (0..2000)
                .map(|i| format!("record-{i:05}-{}\n", "x".repeat(90)))
                .collect();
            let out = cluster.rill_with_input(
                &[
                    "produce",
                    "trimmed",
                    "--linger-ms",
                    "0",
                    "--batch-size",
                    "2048",
                ],
                lines.as_bytes(),
            )?;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            wait_until(
                Duration::from_secs(10),
                "retention to move the log start",
                || {
                    let t = cluster.json(&["topic", "describe", "trimmed"])?;
                    let p = &partitions(&t)[0];
                    Ok(p["log_start_offset"].as_u64().unwrap_or(0) > 1000
                        && p["log_end_offset"] == 2000)
                },
            )?;
            let out = cluster.rill(&[
                "consume",
                "trimmed",
                "--from-beginning",
                "--timeout-ms",
                "1000",
            ])?;
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.lines().count() < 1000, "old records are gone");
            assert!(
                text.lines()
                    .last()
                    .is_some_and(|l| l.starts_with("record-01999")),
                "the newest remain"
            );

            // Deleting the topic deletes its data: a new topic of the same name starts empty.
            assert!(cluster
                .rill(&["topic", "delete", "trimmed"])?
                .status
                .success());
            cluster.create_topic("trimmed", 1, 1, &[])?;
            wait_until(Duration::from_secs(10), "the new topic to be empty", || {
                let t = cluster.json(&["topic", "describe", "trimmed"])?;
                let p = &partitions(&t)[0];
                Ok(p["leader"].is_u64() && p["log_end_offset"] == 0 && p["log_start_offset"] == 0)
            })?;
            Ok(())
        },
    );
}

#[test]
fn a_steady_stream_faster_than_the_linger_is_sent_while_it_flows() {
    // Records every 2.5 ms with a 5 ms linger: batches must be sealed by time while
    // records keep coming, not only when the stream pauses or a batch fills up.
    use rill_client::{Bootstrap, Producer, ProducerConfig, ProducerRecord};
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("stream", 4, 1, &[])?;
        let bootstrap = cluster.bootstrap();
        runtime()?.block_on(async {
            let producer = Producer::new(
                Bootstrap::new(&bootstrap)?,
                ProducerConfig {
                    acks: 1,
                    linger: Duration::from_millis(5),
                    ..Default::default()
                },
            );
            let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let mut acked_before_end = 0;
            for i in 0..1000u32 {
                let delivery = producer
                    .send(ProducerRecord {
                        topic: "stream".into(),
                        partition: Some(i % 4),
                        value: Some(format!("r{i}").into()),
                        ..Default::default()
                    })
                    .await;
                let counter = acked.clone();
                tokio::spawn(async move {
                    if delivery.await.is_ok() {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
                tokio::time::sleep(Duration::from_micros(2500)).await;
                acked_before_end = acked.load(std::sync::atomic::Ordering::SeqCst);
            }
            producer.close().await;
            assert!(
                acked_before_end > 500,
                "only {acked_before_end} of 1000 records were acknowledged while the stream flowed"
            );
            anyhow::Ok(())
        })
    });
}
