//! Many partitions on a small cluster (issue 17): 2,000 partitions of RF 3 on three
//! nodes keep every guarantee through a leader kill. Functional, not timed: the times
//! are bench/partitions.sh's.

mod common;

use std::time::Duration;

use anyhow::anyhow;
use common::{ids, partitions, wait_until, with_cluster, Cluster};
use serde_json::Value;

const PARTITIONS: u32 = 2_000;
const READY: Duration = Duration::from_secs(30);

/// Partitions led by a broker other than `excluded`, and those whose ISR holds every
/// replica.
fn led_and_whole(
    cluster: &Cluster,
    topic: &str,
    excluded: Option<u64>,
) -> anyhow::Result<(usize, usize)> {
    let d = cluster.describe(topic)?;
    let all = partitions(&d);
    let led = all
        .iter()
        .filter(|p| p["leader"].as_u64().is_some_and(|l| Some(l) != excluded))
        .count();
    let whole = all
        .iter()
        .filter(|p| ids(&p["isr"]).len() == ids(&p["replicas"]).len())
        .count();
    Ok((led, whole))
}

#[test]
fn two_thousand_partitions_keep_every_guarantee_through_a_leader_kill() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("many", PARTITIONS, 3, &["min.insync.replicas=2"])?;
        let count = PARTITIONS as usize;
        wait_until(
            Duration::from_secs(60),
            "every partition led, ISRs whole",
            || Ok(led_and_whole(cluster, "many", None)? == (count, count)),
        )?;
        let verify = cluster.spawn_rill(&[
            "verify",
            "--topic",
            "many",
            "--duration-s",
            "25",
            "--rate",
            "500",
            "--acks",
            "all",
            "--idempotent",
        ])?;
        std::thread::sleep(Duration::from_secs(5));
        let victim = cluster
            .leader_of("many", 0)?
            .ok_or_else(|| anyhow!("partition 0 offline before the kill"))?;
        cluster.kill(victim);
        wait_until(
            Duration::from_secs(30),
            "every partition led by a survivor",
            || Ok(led_and_whole(cluster, "many", Some(victim))?.0 == count),
        )?;
        cluster.start_node(victim)?;
        let out = verify.wait()?;
        let verdict: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| anyhow!("no verdict ({e}): {}", String::from_utf8_lossy(&out.stderr)))?;
        eprintln!("verdict: {verdict}");
        assert_eq!(verdict["ok"], true, "{verdict}");
        assert!(verdict["acked"].as_u64().unwrap_or(0) > 5_000, "{verdict}");
        for list in ["lost", "duplicates", "nonmonotonic", "failed_visible"] {
            assert_eq!(
                verdict[list].as_array().map(Vec::len),
                Some(0),
                "{list}: {verdict}"
            );
        }
        wait_until(Duration::from_secs(120), "every ISR whole again", || {
            Ok(led_and_whole(cluster, "many", None)? == (count, count))
        })?;
        // The replicas of the partitions holding the most records agree byte for byte.
        let d = cluster.describe("many")?;
        let mut by_size: Vec<(u64, u64)> = partitions(&d)
            .iter()
            .filter_map(|p| Some((p["log_end_offset"].as_u64()?, p["partition"].as_u64()?)))
            .collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        assert!(
            by_size.first().is_some_and(|(end, _)| *end > 0),
            "no data: {d}"
        );
        for (_, partition) in by_size.into_iter().take(20) {
            let p = partition.to_string();
            wait_until(READY, "replicas that agree", || {
                let r = cluster.json(&["replicas", "many", &p])?;
                let replicas = r["replicas"].as_array().cloned().unwrap_or_default();
                Ok(replicas.len() == 3
                    && replicas.iter().all(|x| {
                        x["checksum"] == replicas[0]["checksum"]
                            && x["log_end_offset"] == replicas[0]["log_end_offset"]
                            && x.get("error").is_none()
                    }))
            })?;
        }
        Ok(())
    });
}
