//! Partition reassignment through a Kafka AdminClient (kafka-python).

use std::time::Duration;

use super::common::{ids, partitions, wait_until, with_cluster};
use super::script;

#[test]
fn kafka_python_reassigns_a_partition_lists_and_cancels_the_move() {
    with_cluster(3, &[], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        c.create_topic("moved", 2, 3, &[])?;
        // Broker 4 registers, then stops: a move onto it stays in progress.
        c.add_learner(4)?;
        wait_until(Duration::from_secs(30), "broker 4 alive", || {
            let cluster = c.json(&["cluster", "describe"])?;
            Ok(cluster["brokers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| b["id"] == 4 && b["state"] == "alive"))
        })?;
        c.stop(4);
        let before = ids(&partitions(&c.describe("moved")?)[0]["replicas"]);
        let target = format!("4,{},{}", before[1], before[2]);
        let out = script("kp_reassign.py", &[&c.kafka_bootstrap(), "moved", &target])?;
        assert_eq!(out["alter"], "ok", "{out}");
        let moving = &out["in_progress"]["moved-0"];
        assert_eq!(ids(&moving["adding_replicas"]), vec![4], "{out}");
        assert_eq!(ids(&moving["removing_replicas"]), vec![before[0]], "{out}");
        assert_eq!(
            out["in_progress"].as_object().map(|o| o.len()),
            Some(1),
            "{out}"
        );
        assert_eq!(out["filtered"], 0, "partition 1 is not moving: {out}");
        assert_eq!(out["cancel"], "ok", "{out}");
        assert_eq!(out["after_cancel"], serde_json::json!({}), "{out}");
        assert_eq!(
            out["cancel_again"], "NoReassignmentInProgressError",
            "{out}"
        );
        // Code 39, INVALID_REPLICA_ASSIGNMENT (kafka-python's name for it).
        assert_eq!(
            out["unknown_broker"], "InvalidReplicationAssignmentError",
            "{out}"
        );
        assert_eq!(
            out["unknown_topic"], "UnknownTopicOrPartitionError",
            "{out}"
        );
        let after = partitions(&c.describe("moved")?)[0].clone();
        let mut replicas = ids(&after["replicas"]);
        replicas.sort_unstable();
        let mut original = before.clone();
        original.sort_unstable();
        assert_eq!(
            replicas, original,
            "cancelled: the original replicas, {after}"
        );
        assert!(
            after["adding_replicas"]
                .as_array()
                .is_none_or(|a| a.is_empty()),
            "{after}"
        );
        Ok(())
    });
}
