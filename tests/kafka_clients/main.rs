//! Real Kafka clients against a real cluster: kcat (librdkafka 2.0.2), confluent-kafka (a
//! recent librdkafka) and kafka-python, installed by `setup.sh` on first use; and a fuzzer
//! that throws broken frames at the Kafka port.

#[path = "../common/mod.rs"]
mod common;
mod groups;
mod reassignments;
mod security;
mod transactions;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use common::with_cluster;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_clients");

/// The Python of a virtual environment with the Kafka clients (and kcat on PATH); set up
/// once per test process.
fn python() -> anyhow::Result<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = concat!(env!("CARGO_TARGET_TMPDIR"), "/kafka-clients-venv");
            let out = Command::new("bash")
                .arg(format!("{CLIENTS_DIR}/setup.sh"))
                .arg(venv)
                .output()
                .map_err(|e| format!("running setup.sh: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "setup.sh failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(PathBuf::from(
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            ))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn checked(out: Output, what: &str) -> anyhow::Result<Output> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs a client script; its last stdout line is JSON.
fn script(name: &str, args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(python()?)
        .arg(format!("{CLIENTS_DIR}/{name}"))
        .args(args)
        .output()?;
    let out = checked(out, name)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .last()
        .ok_or_else(|| anyhow!("{name} printed nothing"))?;
    serde_json::from_str(last).with_context(|| format!("{name} printed {last:?}"))
}

fn kcat(args: &[&str], input: Option<&[u8]>) -> anyhow::Result<String> {
    python()?; // installs kcat too
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(data)?;
    }
    let out = checked(child.wait_with_output()?, &format!("kcat {args:?}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `count` keyed lines `key:value`, values unique.
fn keyed_lines(prefix: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("k{}", i % 13), format!("{prefix}-{i}")))
        .collect()
}

/// Checks that `read` (partition, key, value in offset order per partition) holds
/// exactly `sent`, and that each key's values come back in the order sent.
fn same_records_in_key_order(
    sent: &[(String, String)],
    read: &[(i64, String, String)],
) -> anyhow::Result<()> {
    let mut sent_sorted: Vec<&(String, String)> = sent.iter().collect();
    sent_sorted.sort();
    let mut read_sorted: Vec<(String, String)> = read
        .iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect();
    read_sorted.sort();
    if sent_sorted.len() != read_sorted.len()
        || sent_sorted.iter().zip(&read_sorted).any(|(a, b)| *a != b)
    {
        bail!(
            "sent {} records, read {} (or different ones)",
            sent.len(),
            read.len()
        );
    }
    let mut per_key_sent: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in sent {
        per_key_sent.entry(k).or_default().push(v);
    }
    let mut per_key_read: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut partition_of: HashMap<&str, i64> = HashMap::new();
    for (p, k, v) in read {
        per_key_read.entry(k).or_default().push(v);
        if *partition_of.entry(k).or_insert(*p) != *p {
            bail!("key {k} is in two partitions");
        }
    }
    if per_key_sent != per_key_read {
        bail!("some key's values came back out of order");
    }
    Ok(())
}

/// Reads a topic with kcat: (partition, key, value) in offset order per partition.
fn kcat_read(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<(i64, String, String)>> {
    let text = kcat(
        &[
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-e",
            "-q",
            "-f",
            "%p %k %s\n",
        ],
        None,
    )?;
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(p), Some(k), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("kcat printed {line:?}");
        };
        rows.push((p.parse()?, k.to_string(), v.to_string()));
    }
    Ok(rows)
}

#[test]
fn kcat_lists_the_cluster_and_round_trips_compressed_keyed_lines_both_ways() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("lines", 3, 3, &[])?;
        let bootstrap = c.kafka_bootstrap();
        let listing: Value = serde_json::from_str(&kcat(&["-b", &bootstrap, "-L", "-J"], None)?)?;
        let brokers = listing["brokers"].as_array().map_or(0, Vec::len);
        assert_eq!(brokers, 3, "kcat -L: {listing}");
        let topics: Vec<&str> = listing["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["topic"].as_str())
            .collect();
        assert!(topics.contains(&"lines"), "kcat -L: {listing}");

        let mut sent = Vec::new();
        for codec in ["lz4", "gzip"] {
            let lines = keyed_lines(codec, 10_000);
            let input: String = lines.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
            kcat(
                &["-b", &bootstrap, "-P", "-t", "lines", "-K:", "-z", codec],
                Some(input.as_bytes()),
            )?;
            sent.extend(lines);
        }
        let read = kcat_read(&bootstrap, "lines")?;
        same_records_in_key_order(&sent, &read)?;

        // What a Kafka client produced, `rill consume` reads identically.
        let mut values = c.consume_values("lines", None)?;
        let mut sent_values: Vec<String> = sent.iter().map(|(_, v)| v.clone()).collect();
        values.sort();
        sent_values.sort();
        assert_eq!(
            values, sent_values,
            "rill consume of kcat's compressed batches"
        );

        // What `rill produce` wrote (compressed and not), kcat reads.
        c.create_topic("from-rill", 1, 3, &[])?;
        let mut expected = Vec::new();
        for codec in ["none", "zstd", "snappy"] {
            let lines = keyed_lines(&format!("rill-{codec}"), 2_000);
            let input: String = lines.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
            let out = c.rill_with_input(
                &[
                    "produce",
                    "from-rill",
                    "--key-separator",
                    ":",
                    "--compression",
                    codec,
                ],
                input.as_bytes(),
            )?;
            checked(out, "rill produce")?;
            expected.extend(lines);
        }
        let read = kcat_read(&bootstrap, "from-rill")?;
        same_records_in_key_order(&expected, &read)?;
        Ok(())
    });
}

#[test]
fn confluent_kafka_idempotent_producer_loses_and_duplicates_nothing_through_leader_kills() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("idem", 3, 3, &[])?;
        let python = python()?;
        let out_path = c.scratch("idem.out");
        let child = Command::new(&python)
            .arg(format!("{CLIENTS_DIR}/ck_idempotent.py"))
            .args([&c.kafka_bootstrap(), "idem", "100000"])
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(out_path.with_extension("err"))?)
            .spawn()?;
        let mut producer = KillOnDrop(child);
        for round in 0..3u64 {
            // Kill the leader of a partition while records flow.
            common::wait_until(
                Duration::from_secs(60),
                "the producer to make progress",
                || Ok(progress(&out_path, "sent") >= (round + 1) * 20_000),
            )?;
            let leader = c
                .leader_of("idem", round % 3)?
                .ok_or_else(|| anyhow!("no leader"))?;
            c.restart(leader, Duration::from_secs(2))?;
        }
        let status = producer.wait_exit(Duration::from_secs(240), "the producer")?;
        assert!(
            status.success(),
            "producer: {}",
            std::fs::read_to_string(out_path.with_extension("err"))?
        );
        let text = std::fs::read_to_string(&out_path)?;
        let summary: Value = serde_json::from_str(text.lines().last().unwrap_or("{}"))?;
        let acked = summary["acked"].as_array().cloned().unwrap_or_default();
        let failed = summary["failed"].as_array().map_or(0, Vec::len);
        assert!(
            acked.len() >= 90_000,
            "only {} acked, {failed} failed",
            acked.len()
        );

        let read = script(
            "ck_read.py",
            &[
                &c.kafka_bootstrap(),
                "idem",
                &acked.len().to_string(),
                "120",
            ],
        )?;
        let rows = read.as_array().cloned().unwrap_or_default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut per_partition: BTreeMap<i64, Vec<(i64, u64)>> = BTreeMap::new();
        for row in &rows {
            let value = row[3].as_str().unwrap_or_default().to_string();
            assert!(seen.insert(value.clone()), "{value} read twice");
            per_partition
                .entry(row[0].as_i64().unwrap_or(-1))
                .or_default()
                .push((row[1].as_i64().unwrap_or(-1), value.parse()?));
        }
        for a in &acked {
            let value = a[2].as_str().unwrap_or_default();
            assert!(
                seen.contains(value),
                "acknowledged {value} was not read back"
            );
        }
        for (partition, mut records) in per_partition {
            records.sort();
            assert!(
                records.windows(2).all(|w| w[0].1 < w[1].1),
                "partition {partition}: values out of the order they were sent"
            );
        }
        Ok(())
    });
}

#[test]
fn confluent_kafka_admin_client_manages_topics_and_configs() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        let out = script("ck_admin.py", &[&c.kafka_bootstrap(), "admin-topic"])?;
        assert_eq!(out["create_again"], "TOPIC_ALREADY_EXISTS", "{out}");
        assert_eq!(out["brokers"], serde_json::json!([1, 2, 3]), "{out}");
        assert_eq!(out["partitions"], 3, "{out}");
        assert_eq!(out["replicas"], serde_json::json!([3, 3, 3]), "{out}");
        assert_eq!(out["retention_before"], "3600000", "{out}");
        assert_eq!(out["retention_after"], "7200000", "{out}");
        assert_eq!(out["partitions_after"], 5, "{out}");
        assert_eq!(out["topics_after_delete"], serde_json::json!([]), "{out}");
        Ok(())
    });
}

#[test]
fn kafka_python_produces_gzip_and_snappy_and_consumes_by_assign() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("kp", 2, 3, &[])?;
        let out = script("kp_roundtrip.py", &[&c.kafka_bootstrap(), "kp", "2000"])?;
        assert_eq!(out["acked"], 4000, "{out}");
        let read: HashSet<String> = out["read"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r[2].as_str().map(str::to_string))
            .collect();
        for codec in ["gzip", "snappy"] {
            for i in 0..2000 {
                assert!(
                    read.contains(&format!("{codec}-{i}")),
                    "{codec}-{i} missing"
                );
            }
        }
        assert_eq!(read.len(), 4000);
        Ok(())
    });
}

/// Frames a client could send: valid ones (to mutate) built by hand.
fn valid_frames() -> Vec<Vec<u8>> {
    fn frame(api_key: i16, version: i16, flexible: bool, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&api_key.to_be_bytes());
        f.extend_from_slice(&version.to_be_bytes());
        f.extend_from_slice(&7i32.to_be_bytes());
        f.extend_from_slice(&4i16.to_be_bytes());
        f.extend_from_slice(b"fuzz");
        if flexible {
            f.push(0);
        }
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend(f);
        out
    }
    let mut batch = rill_common::record::RecordBatchBuilder::new();
    batch.push(Some(b"k"), Some(b"fuzzed value"), 1);
    let batch = batch.build();
    // Produce v3: transactional id null, acks 1, timeout, [topic "fz" [partition 0, records]].
    let mut produce = vec![
        0xff, 0xff, 0, 1, 0, 0, 0x13, 0x88, 0, 0, 0, 1, 0, 2, b'f', b'z',
    ];
    produce.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    produce.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    produce.extend_from_slice(&batch);
    // Fetch v4: replica -1, wait 10, min 1, max 1 MiB, isolation 0, [topic "fz" [p0, offset 0, 1 MiB]].
    let mut fetch = vec![
        0xff, 0xff, 0xff, 0xff, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0x10, 0, 0, 0,
    ];
    fetch.extend_from_slice(&[0, 0, 0, 1, 0, 2, b'f', b'z', 0, 0, 0, 1, 0, 0, 0, 0]);
    fetch.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]);
    vec![
        frame(18, 0, false, &[]),
        frame(18, 3, true, &[5, b'f', b'u', b'z', b'z', 2, b'1', 0]),
        frame(3, 1, false, &[0, 0, 0, 1, 0, 2, b'f', b'z']),
        frame(3, 9, true, &[2, 3, b'f', b'z', 0, 1, 0, 0]),
        frame(0, 3, false, &produce),
        frame(1, 4, false, &fetch),
        frame(
            2,
            1,
            false,
            &[
                0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 2, b'f', b'z', 0, 0, 0, 1, 0, 0, 0, 0, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
    ]
}

/// One fuzzed frame: garbage, a truncated or mutated valid frame, a huge length or
/// count, or a wrong version.
fn fuzzed(rng: &mut rand::rngs::StdRng, valid: &[Vec<u8>]) -> Vec<u8> {
    let base = valid[rng.random_range(0..valid.len())].clone();
    match rng.random_range(0..6) {
        0 => (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
        1 => base[..rng.random_range(0..base.len())].to_vec(),
        2 => {
            let mut f = base;
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(4..f.len());
                f[at] = rng.random();
            }
            f
        }
        3 => {
            let mut f = base;
            let huge: i32 = rng.random_range(0x0100_0000..i32::MAX);
            f[..4].copy_from_slice(&huge.to_be_bytes());
            f
        }
        4 => {
            // An absurd count somewhere in the body.
            let mut f = base;
            if f.len() > 20 {
                let at = rng.random_range(18..f.len() - 3);
                f[at..at + 4].copy_from_slice(&0x7fff_fff0i32.to_be_bytes());
            }
            f
        }
        _ => {
            let mut f = base;
            let version: i16 = rng.random_range(-5..100);
            f[6..8].copy_from_slice(&version.to_be_bytes());
            f
        }
    }
}

#[test]
fn fuzzed_frames_close_their_connection_and_nothing_else() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("fz", 1, 3, &[])?;
        let addrs: Vec<String> = c.nodes.values().map(|n| n.kafka.clone()).collect();
        let valid = valid_frames();
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261130);
        let mut reused: Option<(usize, TcpStream)> = None;
        for i in 0..10_000 {
            let frame = fuzzed(&mut rng, &valid);
            let node = i % addrs.len();
            let mut stream = match reused.take() {
                Some((n, s)) if n == node => s,
                _ => TcpStream::connect(&addrs[node])?,
            };
            stream.set_read_timeout(Some(Duration::from_millis(25)))?;
            if stream.write_all(&frame).is_err() {
                continue;
            }
            // Whatever comes back (an answer, a close, nothing yet) is fine; keep the
            // connection for the next frame if the node left it open.
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => {}
                Ok(_) => reused = Some((node, stream)),
            }
        }
        for id in c.running() {
            assert!(c.readyz(id), "node {id} is not ready after the fuzzing");
        }
        // The tour still works.
        let bootstrap = c.kafka_bootstrap();
        let listing: Value = serde_json::from_str(&kcat(&["-b", &bootstrap, "-L", "-J"], None)?)?;
        assert_eq!(listing["brokers"].as_array().map_or(0, Vec::len), 3);
        kcat(
            &["-b", &bootstrap, "-P", "-t", "fz", "-K:"],
            Some(b"a:after\n"),
        )?;
        let values = c.consume_values("fz", None)?;
        assert!(values.iter().any(|v| v == "after"), "{values:?}");
        Ok(())
    });
}

struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    /// Waits for the process to exit on its own, at most `limit`.
    fn wait_exit(&mut self, limit: Duration, what: &str) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{what} did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The largest `field` over the JSON lines a script printed to `path` so far (its
/// progress).
fn progress(path: &std::path::Path, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v[field].as_u64())
        .max()
        .unwrap_or(0)
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn each_client_is_told_the_addresses_of_the_listener_it_came_through() {
    let ports: Vec<u16> = (0..3)
        .map(|_| common::free_port())
        .collect::<anyhow::Result<_>>()
        .unwrap_or_default();
    assert_eq!(ports.len(), 3);
    let (internal, external, grpc_external) = (ports[0], ports[1], ports[2]);
    let kafka = format!("INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}");
    let kafka_advertised =
        format!("INTERNAL://node1.internal:{internal},EXTERNAL://localhost:{external}");
    let grpc = format!("EXTERNAL://127.0.0.1:{grpc_external}");
    let grpc_advertised = format!("EXTERNAL://localhost:{grpc_external}");
    with_cluster(
        1,
        &[
            "--kafka-listeners",
            &kafka,
            "--kafka-advertised-listeners",
            &kafka_advertised,
            "--grpc-listeners",
            &grpc,
            "--grpc-advertised-listeners",
            &grpc_advertised,
        ],
        |c| {
            c.wait_ready(Duration::from_secs(30))?;
            for (port, expected) in [(internal, "node1.internal"), (external, "localhost")] {
                let listing: Value = serde_json::from_str(&kcat(
                    &["-b", &format!("127.0.0.1:{port}"), "-L", "-J"],
                    None,
                )?)?;
                let name = listing["brokers"][0]["name"].as_str().unwrap_or_default();
                assert_eq!(
                    name,
                    format!("{expected}:{port}"),
                    "kcat -L through {port}: {listing}"
                );
            }
            let inside = c.json(&["cluster", "describe"])?;
            assert_eq!(
                inside["brokers"][0]["addr"],
                c.node_addr(1).as_str(),
                "{inside}"
            );
            let outside = c.json_at(
                &format!("127.0.0.1:{grpc_external}"),
                &["cluster", "describe"],
            )?;
            assert_eq!(
                outside["brokers"][0]["addr"],
                format!("localhost:{grpc_external}").as_str(),
                "{outside}"
            );
            Ok(())
        },
    );
}

#[test]
fn confluent_kafka_lists_offsets_deletes_records_and_elects_leaders() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("offsets", 1, 3, &[])?;
        let out = script("ck_offsets.py", &[&c.kafka_bootstrap(), "offsets"])?;
        assert_eq!(out["earliest"], 0, "{out}");
        assert_eq!(out["latest"], 100, "{out}");
        assert_eq!(out["for_1010"], 10, "{out}");
        // The first offset (not the closest timestamp) at or after 1050: 42 holds 5000.
        assert_eq!(out["for_1050"], 42, "{out}");
        assert_eq!(out["for_9999"], -1, "{out}");
        assert_eq!(out["max_timestamp"], 42, "{out}");
        assert_eq!(out["low_watermark"], 60, "{out}");
        assert_eq!(out["earliest_after_delete"], 60, "{out}");
        // The preferred replica already leads a new topic.
        assert_eq!(out["elect"], "ELECTION_NOT_NEEDED", "{out}");
        // Followers moved their log start too.
        let described = c.describe("offsets")?;
        assert_eq!(
            common::partitions(&described)[0]["log_start_offset"],
            60,
            "{described}"
        );
        Ok(())
    });
}
