//! The idempotent producer with real nodes (issue 7, DESIGN.md guarantee 5): a replayed
//! request is stored once, and retries across leader kills leave no duplicates.

mod common;

use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use common::{wait_until, with_cluster};
use rill_common::record::RecordBatchBuilder;
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_client::BrokerServiceClient;
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);

#[test]
fn a_replayed_produce_request_gets_its_original_offsets_and_is_stored_once() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("once", 1, 3, &[])?;
        let leader = cluster
            .leader_of("once", 0)?
            .ok_or_else(|| anyhow!("offline"))?;
        let addr = cluster.node_addr(leader);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (first, second, third) = runtime.block_on(async {
            let mut c = BrokerServiceClient::connect(format!("http://{addr}")).await?;
            let id = c
                .init_producer_id(pb::InitProducerIdRequest {})
                .await?
                .into_inner();
            let other = c
                .init_producer_id(pb::InitProducerIdRequest {})
                .await?
                .into_inner();
            assert_ne!(
                id.producer_id, other.producer_id,
                "ids are never handed out twice"
            );
            let batch = |sequence: i32, values: &[&str]| {
                let mut b = RecordBatchBuilder::new();
                b.producer_id = id.producer_id;
                b.producer_epoch = id.producer_epoch as i16;
                b.base_sequence = sequence;
                for v in values {
                    b.push(None, Some(v.as_bytes()), 1_900_000_000_000);
                }
                Bytes::from(b.build())
            };
            let request = |records: Bytes| pb::ProduceRequest {
                topic: "once".into(),
                partition: 0,
                acks: -1,
                records,
                timeout_ms: 5000,
                transactional_id: None,
            };
            let first = c
                .produce(request(batch(0, &["a", "b", "c"])))
                .await?
                .into_inner();
            let second = c.produce(request(batch(3, &["d"]))).await?.into_inner();
            // The same request again (a retry after a lost response): original offsets.
            let replay = c
                .produce(request(batch(0, &["a", "b", "c"])))
                .await?
                .into_inner();
            assert_eq!(replay.base_offset, first.base_offset);
            let gap = c.produce(request(batch(9, &["x"]))).await.err();
            assert_eq!(
                gap.as_ref()
                    .and_then(rill_proto::status_error_code)
                    .map(|c| c.to_string())
                    .as_deref(),
                Some("OUT_OF_ORDER_SEQUENCE")
            );
            anyhow::Ok((first.base_offset, second.base_offset, replay.base_offset))
        })?;
        assert_eq!((first, second, third), (0, 3, 0));
        let d = cluster.describe("once")?;
        assert_eq!(
            d["partitions"][0]["log_end_offset"], 4,
            "the log holds the batch once: {d}"
        );
        Ok(())
    });
}

#[test]
/// At 1,000 records per second each partition has several batches in flight (up to
/// `--max-in-flight 5`): retried in any order across five leader kills, they land
/// once each and in send order (`nonmonotonic` empty).
fn pipelined_idempotent_retries_across_leader_kills_keep_order_and_leave_no_duplicates() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("exactly", 3, 3, &["min.insync.replicas=2"])?;
        cluster.wait_replicas_agree("exactly", READY)?;
        let verify = cluster.spawn_rill(&[
            "verify",
            "--topic",
            "exactly",
            "--duration-s",
            "40",
            "--rate",
            "1000",
            "--acks",
            "all",
            "--idempotent",
            "--max-in-flight",
            "5",
        ])?;
        std::thread::sleep(Duration::from_secs(2));
        for round in 0..5 {
            let leader = cluster
                .leader_of("exactly", 0)?
                .ok_or_else(|| anyhow!("partition 0 offline before kill {round}"))?;
            cluster.kill(leader);
            wait_until(Duration::from_secs(20), "a new leader", || {
                Ok(cluster
                    .leader_of("exactly", 0)?
                    .is_some_and(|l| l != leader))
            })?;
            cluster.start_node(leader)?;
            wait_until(
                Duration::from_secs(20),
                "the restarted broker in the ISR",
                || {
                    let d = cluster.describe("exactly")?;
                    Ok(common::ids(&d["partitions"][0]["isr"]).contains(&leader))
                },
            )?;
        }
        let out = verify.wait()?;
        let verdict: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| anyhow!("no verdict ({e}): {}", String::from_utf8_lossy(&out.stderr)))?;
        eprintln!("verdict: {verdict}");
        assert_eq!(verdict["ok"], true, "{verdict}");
        assert_eq!(
            verdict["lost"].as_array().map(Vec::len),
            Some(0),
            "{verdict}"
        );
        assert_eq!(
            verdict["duplicates"].as_array().map(Vec::len),
            Some(0),
            "{verdict}"
        );
        assert_eq!(
            verdict["nonmonotonic"].as_array().map(Vec::len),
            Some(0),
            "{verdict}"
        );
        cluster.wait_replicas_agree("exactly", READY)
    });
}
