//! The broker side of liveness: register with the controller, then heartbeat; register
//! again (new epoch) when the controller no longer knows this incarnation.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rill_common::ErrorCode;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::MetadataNode;
use crate::types::{ControllerReply, ControllerRequest};

impl MetadataNode {
    pub(super) async fn broker_lifecycle(self: Arc<Self>, cancel: CancellationToken) {
        let interval = self.config.broker_heartbeat_interval;
        let mut epoch = None;
        loop {
            let request = match epoch {
                None => ControllerRequest::RegisterBroker {
                    broker_id: self.config.node_id,
                    addr: self.config.advertise.clone(),
                    listeners: self.config.listeners.clone(),
                    store: self.config.store.clone(),
                },
                Some(broker_epoch) => ControllerRequest::BrokerHeartbeat {
                    broker_id: self.config.node_id,
                    broker_epoch,
                    storage_failing: self.storage_failing.load(Ordering::Relaxed),
                },
            };
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.submit(request) => r,
            };
            match result {
                Ok(ControllerReply::BrokerRegistered { broker_epoch }) => {
                    info!(broker_epoch, "registered as a broker");
                    epoch = Some(broker_epoch);
                    self.broker_epoch.send_replace(epoch);
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.code(),
                        ErrorCode::StaleBrokerEpoch | ErrorCode::BrokerNotAvailable
                    ) =>
                {
                    warn!(
                        "controller does not know this broker incarnation ({e}); registering again"
                    );
                    epoch = None;
                }
                Err(e) if epoch.is_none() => debug!("broker registration pending: {e}"),
                Err(e) => warn!("broker heartbeat failed: {e}"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
