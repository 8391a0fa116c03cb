//! The port through which a partition leader asks the transaction coordinator whether a
//! transactional batch belongs to an open transaction that includes the partition
//! (KIP-890's verification of a transaction's first write to a partition). The node
//! provides it: the coordinator itself when it runs here, else a call to the node where
//! it runs. The broker never talks to the coordinator crate directly.

use rill_common::group::TopicPartition;
use rill_common::transaction::ProducerIdAndEpoch;
use rill_common::ErrorCode;

#[tonic::async_trait]
pub trait TxnVerifier: Send + Sync {
    async fn verify(
        &self,
        transactional_id: &str,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), ErrorCode>;
}
