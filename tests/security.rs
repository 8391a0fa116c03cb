//! Security with real nodes (issue 16, DESIGN.md guarantee 11). Node-to-node services
//! admit only the nodes of the cluster (the cluster secret): an outsider's forged Raft
//! votes and appends, controller calls, follower fetches and transaction markers are
//! refused, and the controller term and the metadata do not move.

mod common;

use std::time::Duration;

use anyhow::anyhow;
use common::with_cluster;
use rill_proto::v1 as pb;
use rill_proto::v1::broker_service_client::BrokerServiceClient;
use rill_proto::v1::controller_service_client::ControllerServiceClient;
use rill_proto::v1::raft_service_client::RaftServiceClient;
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);

fn refused<T>(result: Result<T, tonic::Status>) -> Option<String> {
    result
        .err()
        .and_then(|s| rill_proto::status_error_code(&s))
        .map(|c| c.to_string())
}

/// The controller term and every broker's epoch, as the cluster reports them.
fn quorum_view(cluster: &common::Cluster) -> anyhow::Result<(Value, Value)> {
    let d = cluster.json(&["cluster", "describe"])?;
    Ok((d["controller"]["term"].clone(), d["brokers"].clone()))
}

#[test]
fn an_outsider_cannot_call_the_internal_services_and_moves_neither_term_nor_metadata() {
    with_cluster(3, &[], |cluster| {
        cluster.wait_ready(READY)?;
        cluster.create_topic("guarded", 1, 3, &[])?;
        let before = quorum_view(cluster)?;
        let leader = cluster
            .leader_of("guarded", 0)?
            .ok_or_else(|| anyhow!("offline"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            for id in 1..=3 {
                let url = format!("http://{}", cluster.node_addr(id));
                let mut raft = RaftServiceClient::connect(url.clone()).await?;
                for term in [100u64, 1000] {
                    // What an outsider sent with curl: a vote for a made-up leader.
                    let vote = serde_json::json!({
                        "vote": {"leader_id": {"term": term, "node_id": id % 3 + 1},
                                 "committed": false},
                        "last_log_id": null
                    });
                    let payload = pb::RaftPayload {
                        data: serde_json::to_vec(&vote)?.into(),
                    };
                    let voted = raft.vote(payload.clone()).await;
                    assert_eq!(
                        refused(voted).as_deref(),
                        Some("CLUSTER_AUTHORIZATION_FAILED")
                    );
                    let appended = raft.append_entries(payload).await;
                    assert_eq!(
                        refused(appended).as_deref(),
                        Some("CLUSTER_AUTHORIZATION_FAILED")
                    );
                }
                let mut controller = ControllerServiceClient::connect(url.clone()).await?;
                let registered = controller
                    .register_broker(pb::RegisterBrokerRequest {
                        broker_id: id,
                        addr: "127.0.0.1:1".into(),
                        ..Default::default()
                    })
                    .await;
                assert_eq!(
                    refused(registered).as_deref(),
                    Some("CLUSTER_AUTHORIZATION_FAILED")
                );
                let altered = controller
                    .alter_partition(pb::AlterPartitionRequest {
                        broker_id: leader,
                        topic: "guarded".into(),
                        isr: vec![leader],
                        ..Default::default()
                    })
                    .await;
                assert_eq!(
                    refused(altered).as_deref(),
                    Some("CLUSTER_AUTHORIZATION_FAILED")
                );
                let forwarded = controller
                    .forward(pb::ForwardRequest {
                        data: b"{}".to_vec().into(),
                    })
                    .await;
                assert_eq!(
                    refused(forwarded).as_deref(),
                    Some("CLUSTER_AUTHORIZATION_FAILED")
                );
                let mut broker = BrokerServiceClient::connect(url).await?;
                let fetch = |replica_id: i64| pb::FetchRequest {
                    replica_id,
                    max_wait_ms: 0,
                    max_bytes: 1 << 20,
                    partitions: vec![pb::FetchPartition {
                        topic: "guarded".into(),
                        partition: 0,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let as_follower = broker.fetch(fetch(i64::try_from(id % 3 + 1)?)).await;
                assert_eq!(
                    refused(as_follower).as_deref(),
                    Some("CLUSTER_AUTHORIZATION_FAILED"),
                    "a follower fetch moves the ISR and the high watermark"
                );
                assert!(
                    broker.fetch(fetch(-1)).await.is_ok(),
                    "a consumer's fetch needs no secret"
                );
                let marker = broker
                    .write_txn_marker(pb::WriteTxnMarkerRequest {
                        topic: "guarded".into(),
                        partition: 0,
                        producer_id: 1,
                        ..Default::default()
                    })
                    .await;
                assert_eq!(
                    refused(marker).as_deref(),
                    Some("CLUSTER_AUTHORIZATION_FAILED")
                );
                let verified = broker
                    .verify_txn_partition(pb::VerifyTxnPartitionRequest {
                        transactional_id: "t".into(),
                        topic: "guarded".into(),
                        ..Default::default()
                    })
                    .await;
                assert_eq!(
                    refused(verified).as_deref(),
                    Some("CLUSTER_AUTHORIZATION_FAILED")
                );
            }
            anyhow::Ok(())
        })?;
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            quorum_view(cluster)?,
            before,
            "the controller term and the brokers' epochs did not move"
        );
        // The nodes, which hold the secret, still replicate and serve.
        let out = cluster.rill_with_input(&["produce", "guarded"], b"after\n")?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            cluster.consume_values("guarded", None)?,
            vec!["after".to_string()]
        );
        Ok(())
    });
}
