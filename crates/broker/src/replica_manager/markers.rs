//! Transaction markers: the coordinator's COMMIT or ABORT written to a partition the
//! transaction touched, as the partition's leader, at acks=all.

use std::time::Duration;

use rill_common::record::{ControlMarker, ControlType};
use rill_common::transaction::TxnMarker;

use super::{now_ms, ReplicaManager};
use crate::BrokerError;

impl ReplicaManager {
    /// Appends `marker` to `topic`-`partition` as its leader and waits until every ISR
    /// member has it (the coordinator completes a transaction only when every marker is
    /// committed, so a failover cannot lose one).
    pub async fn write_marker(
        &self,
        topic: &str,
        partition: u32,
        marker: TxnMarker,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let p = self.leader_partition(topic, partition)?;
        let control = ControlMarker {
            kind: if marker.commit {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
            coordinator_epoch: marker.coordinator_epoch,
        };
        let appended =
            p.append_marker(marker.producer_id, marker.producer_epoch, control, now_ms())?;
        self.data_changed.send_modify(|n| *n += 1);
        self.make_durable(p.clone(), appended.next_offset).await?;
        self.wait_for_high_watermark(&p, appended.next_offset, timeout)
            .await
    }
}
