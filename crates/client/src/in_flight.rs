//! The batches of one partition a producer has in flight, in the order they were sent.
//!
//! Shared by the producer's actor (which sends) and the tasks sending each batch:
//! - a batch refused as OUT_OF_ORDER_SEQUENCE while an earlier one is still in flight is
//!   not failed but sent again once that one is settled (its gap may yet be filled, by a
//!   retry the leader has not seen);
//! - a batch under a new producer id is not sent while batches under an older id are in
//!   flight, so a retry of an older one cannot land after it (order holds across ids).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A sent batch's place in its partition's order.
pub(crate) type Ticket = u64;

#[derive(Debug, Default)]
struct Batches {
    next: Ticket,
    /// Ticket to the producer id the batch was written under (`None`: not idempotent).
    sent: BTreeMap<Ticket, Option<i64>>,
}

/// One partition's batches in flight.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<Batches>>);

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, Batches> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many batches are in flight.
    pub fn len(&self) -> usize {
        self.lock().sent.len()
    }

    /// Whether a batch under `producer_id` may be sent now, with at most `limit` in
    /// flight: fewer are, and all of them are under that id.
    pub fn admits(&self, producer_id: Option<i64>, limit: usize) -> bool {
        let batches = self.lock();
        batches.sent.len() < limit && batches.sent.values().all(|id| *id == producer_id)
    }

    /// Records a batch sent under `producer_id`.
    pub fn sent(&self, producer_id: Option<i64>) -> Ticket {
        let mut batches = self.lock();
        let ticket = batches.next;
        batches.next += 1;
        batches.sent.insert(ticket, producer_id);
        ticket
    }

    /// Whether a batch sent before `ticket` is still in flight.
    pub fn has_earlier(&self, ticket: Ticket) -> bool {
        self.lock().sent.range(..ticket).next().is_some()
    }

    /// The batch is settled (acknowledged or failed for good).
    pub fn settled(&self, ticket: Ticket) {
        self.lock().sent.remove(&ticket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_admitted_up_to_the_limit_and_only_under_one_id() {
        let flight = InFlight::default();
        assert!(flight.admits(Some(7), 2));
        let first = flight.sent(Some(7));
        let second = flight.sent(Some(7));
        assert!(!flight.admits(Some(7), 2), "the limit");
        assert!(flight.admits(Some(7), 3));
        assert!(
            !flight.admits(Some(8), 3),
            "a new id waits for the old id's batches"
        );
        assert!(!flight.has_earlier(first));
        assert!(flight.has_earlier(second));
        flight.settled(first);
        assert!(!flight.has_earlier(second));
        flight.settled(second);
        assert_eq!(flight.len(), 0);
        assert!(flight.admits(Some(8), 1));
    }
}
