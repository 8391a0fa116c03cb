//! Producer ids for idempotent producers: this node hands them out of blocks the
//! controller allocates through the metadata log (a block is never handed out twice, so
//! neither is an id, whichever node a producer asks).

use std::sync::Arc;

use rill_broker::grpc::ProducerIdSource;
use rill_broker::BrokerError;
use rill_metadata::{ControllerReply, ControllerRequest, MetadataNode};
use tokio::sync::Mutex;

const BLOCK: u64 = 1000;

pub struct ProducerIds {
    metadata: Arc<MetadataNode>,
    /// The next id to hand out and the end of the current block.
    block: Mutex<(i64, i64)>,
}

impl ProducerIds {
    pub fn new(metadata: Arc<MetadataNode>) -> Self {
        Self {
            metadata,
            block: Mutex::new((0, 0)),
        }
    }
}

#[tonic::async_trait]
impl ProducerIdSource for ProducerIds {
    async fn next_producer_id(&self) -> Result<i64, BrokerError> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let reply = self
                .metadata
                .submit(ControllerRequest::AllocateProducerIds { count: BLOCK })
                .await
                .map_err(|e| BrokerError::NotLeader(format!("no producer ids: {e}")))?;
            let ControllerReply::ProducerIds { start, count } = reply else {
                return Err(BrokerError::Storage("unexpected producer id reply".into()));
            };
            *block = (start, start + count as i64);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}
