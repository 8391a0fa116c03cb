//! Kafka transactions with a real client (confluent-kafka): commits and aborts seen
//! through read_committed and read_uncommitted, a zombie fenced by its successor, a
//! transaction the coordinator aborts at its timeout, and an exactly-once copy through
//! coordinator and leader kills.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::anyhow;
use serde_json::Value;

use super::common::{self, wait_until, with_cluster};
use super::{progress, python, script, KillOnDrop, CLIENTS_DIR};

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// How many times each value occurs.
fn counts(values: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    counts
}

/// Every partition's LSO reaches its high watermark (no transaction left open).
fn wait_stable(c: &common::Cluster, topic: &str) -> anyhow::Result<()> {
    common::wait_until(Duration::from_secs(30), "the LSO to reach the HW", || {
        let t = c.describe(topic)?;
        Ok(common::partitions(&t).iter().all(|p| {
            p["last_stable_offset"].as_u64().is_some()
                && p["last_stable_offset"] == p["high_watermark"]
        }))
    })
}

#[test]
fn confluent_kafka_read_committed_sees_every_committed_transaction_once_and_no_aborted_one() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("txn", 3, 3, &[])?;
        let out = script(
            "ck_transactions.py",
            &[&c.kafka_bootstrap(), "txn", "50", "cacac"],
        )?;
        let committed = strings(&out["committed"]);
        let aborted = strings(&out["aborted"]);
        let read_committed = strings(&out["read_committed"]);
        let read_uncommitted = strings(&out["read_uncommitted"]);
        assert_eq!((committed.len(), aborted.len()), (150, 100));
        let seen = counts(&read_committed);
        for v in &committed {
            assert_eq!(seen.get(v.as_str()), Some(&1), "{v} read once");
        }
        for v in &aborted {
            assert!(!seen.contains_key(v.as_str()), "aborted {v} was read");
        }
        assert_eq!(read_committed.len(), committed.len());
        // read_uncommitted sees the aborted records too.
        let all = counts(&read_uncommitted);
        assert!(committed
            .iter()
            .chain(&aborted)
            .all(|v| all.contains_key(v.as_str())));
        wait_stable(c, "txn")?;
        Ok(())
    });
}

#[test]
fn a_zombie_is_fenced_by_its_successor_and_a_forgotten_transaction_is_aborted_at_its_timeout() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("zombie", 2, 3, &[])?;
        let out = script("ck_zombie.py", &[&c.kafka_bootstrap(), "zombie"])?;
        let a_error = &out["a_error"];
        assert!(
            a_error["fatal"].as_bool() == Some(true),
            "the zombie's commit must fail for good: {a_error}"
        );
        let seen = strings(&out["read_committed"]);
        let mut expected = strings(&out["b"]);
        let mut got = seen.clone();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "only the successor's records are read");
        // The timed-out transaction no longer holds the LSO back.
        wait_stable(c, "zombie")?;
        // The coordinator counted it (A's fenced transaction was aborted, B's committed).
        let coordinator = c
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller leader"))?;
        assert!(c.metric(coordinator, "rill_transactions_expired_total")? >= 1.0);
        assert!(c.metric(coordinator, "rill_transactions_completed_total")? >= 3.0);
        let txns = c.json(&["topic", "describe", "zombie"])?;
        let total_hw: u64 = common::partitions(&txns)
            .iter()
            .filter_map(|p| p["high_watermark"].as_u64())
            .sum();
        // 30 records and at least three markers (A's abort, B's commit, C's abort).
        assert!(total_hw >= 33, "records and markers: {total_hw}");
        let err = out["c"].as_array().ok_or_else(|| anyhow!("no C values"))?;
        assert_eq!(err.len(), 10);
        Ok(())
    });
}

#[test]
fn confluent_kafka_copies_exactly_once_through_coordinator_and_leader_kills() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("copy-in", 3, 3, &[])?;
        c.create_topic("copy-out", 3, 3, &[])?;
        let produced = script(
            "ck_produce.py",
            &[&c.kafka_bootstrap(), "copy-in", "6000", "6000"],
        )?;
        let input = strings(&produced["acked"]);
        assert_eq!(input.len(), 6000, "every input record acknowledged");
        let out_path = c.scratch("copy.out");
        let child = Command::new(python()?)
            .arg(format!("{CLIENTS_DIR}/ck_copy.py"))
            .args([
                &c.kafka_bootstrap(),
                "copy-in",
                "copy-out",
                "copier",
                "copier-txn",
                "6000",
            ])
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(out_path.with_extension("err"))?)
            .spawn()?;
        let mut copier = KillOnDrop(child);
        let copied = |path: &std::path::Path| progress(path, "copied");
        // Kill the transaction coordinator (the controller leader), then a leader of
        // the output, each while transactions are under way.
        wait_until(Duration::from_secs(120), "the copy to start", || {
            Ok(copied(&out_path) >= 1000)
        })?;
        let coordinator = c
            .controller_leader()
            .ok_or_else(|| anyhow!("no controller leader"))?;
        c.restart(coordinator, Duration::from_secs(2))?;
        let before = copied(&out_path);
        wait_until(Duration::from_secs(120), "the copy to go on", || {
            Ok(copied(&out_path) >= before + 1000)
        })?;
        let leader = c
            .leader_of("copy-out", 0)?
            .ok_or_else(|| anyhow!("no leader"))?;
        c.restart(leader, Duration::from_secs(2))?;
        let status = copier.wait_exit(Duration::from_secs(300), "the copy")?;
        let log = std::fs::read_to_string(&out_path)?;
        assert!(status.success(), "the copier failed: {log}");
        let last = log.lines().last().unwrap_or_default();
        let errors = std::fs::read_to_string(out_path.with_extension("err"))?;
        let tail: Vec<&str> = errors.lines().rev().take(5).collect();
        println!("copier: {last}; its last diagnostics: {tail:?}");
        let summary: Value = serde_json::from_str(last)?;
        assert_eq!(
            summary["finished"],
            Value::Bool(true),
            "the group's committed offsets reach the end of the input"
        );
        // Exactly once: every input value once in the output, nothing else.
        let read = script(
            "ck_read.py",
            &[&c.kafka_bootstrap(), "copy-out", "6000", "60"],
        )?;
        let output: Vec<String> = read
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r[3].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let seen = counts(&output);
        let missing: Vec<&String> = input
            .iter()
            .filter(|v| !seen.contains_key(v.as_str()))
            .collect();
        let twice: Vec<(&&str, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            missing.is_empty(),
            "{} input records not copied: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        assert!(twice.is_empty(), "copied more than once: {twice:?}");
        assert_eq!(output.len(), input.len());
        wait_stable(c, "copy-out")?;
        Ok(())
    });
}

#[test]
fn kafka_python_lists_and_describes_transactions_and_producers_and_cannot_tear_a_running_one() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("txadmin", 2, 3, &[])?;
        let out = script("kp_txn_admin.py", &[&c.kafka_bootstrap(), "txadmin"])?;
        let id = "admin-txadmin";
        assert!(
            out["listed"]
                .as_array()
                .is_some_and(|l| l.iter().any(|t| t[0] == id && t[1] == "Ongoing")),
            "{out}"
        );
        assert_eq!(out["listed_ongoing"], serde_json::json!([id]), "{out}");
        let d = &out["described"];
        assert_eq!(d["state"], "Ongoing", "{out}");
        assert_eq!(
            d["partitions"],
            serde_json::json!([["txadmin", 0]]),
            "{out}"
        );
        assert!(d["started"].as_i64().is_some_and(|s| s > 0), "{out}");
        let producers = out["producers"].as_array().cloned().unwrap_or_default();
        assert!(
            producers
                .iter()
                .any(|p| p["producer_id"] == d["producer_id"] && p["txn_start"] == 0),
            "the open transaction starts at offset 0: {out}"
        );
        assert_eq!(
            out["abort_error"], "InvalidTxnStateError",
            "a transaction its coordinator runs cannot be torn: {out}"
        );
        assert_eq!(
            out["unknown_error"], "TransactionalIdNotFoundError",
            "{out}"
        );
        assert_eq!(out["after_commit"], "CompleteCommit", "{out}");
        // The CLI's view of the same partition, and its refusal of an abort.
        let producers = c.json(&["txn", "producers", "--topic", "txadmin", "--partition", "0"])?;
        assert!(
            producers["producers"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["producer_id"] == d["producer_id"])),
            "{producers}"
        );
        let pid = d["producer_id"].to_string();
        let refused = c.rill(&[
            "txn",
            "abort",
            "--topic",
            "txadmin",
            "--partition",
            "0",
            "--producer-id",
            &pid,
        ])?;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains("INVALID_TXN_STATE"),
            "no open transaction to abort any more: {stderr}"
        );
        Ok(())
    });
}
