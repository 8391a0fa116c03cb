//! Kafka's consumer protocol: the subscription a member sends in JoinGroup and the
//! assignment its leader sends in SyncGroup, both opaque to Kafka brokers. Rill keeps
//! the bytes as they came (relayed to the leader and the members) and reads them to know
//! what a Kafka member subscribes to and owns (`rill group describe`, topic changes, the
//! members of the gRPC protocol). Bytes that do not read are kept and relayed all the
//! same, with an empty decoded view.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedPartitions;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rill_coordinator::{Assignment, Subscription};

use crate::walk;

/// The newest layout this reads; newer versions only add fields at the end.
const NEWEST: i16 = 3;
/// What Rill writes for gRPC members seen by a Kafka leader (owned partitions and
/// generation included; readers of older versions stop at the fields they know).
const WRITTEN: i16 = NEWEST;

/// The version prefix and a body that walks at the version it can be read as.
fn body(bytes: &Bytes, layout: &walk::Message) -> Option<(i16, Bytes)> {
    let mut body = bytes.clone();
    if body.remaining() < 2 {
        return None;
    }
    let version = body.get_i16().clamp(0, NEWEST);
    walk::walk(layout, version, &body).ok()?;
    Some((version, body))
}

pub(crate) fn read_subscription(bytes: &Bytes) -> Subscription {
    let Some((version, mut body)) = body(bytes, walk::consumer_subscription()) else {
        return Subscription::default();
    };
    let Ok(s) = ConsumerProtocolSubscription::decode(&mut body, version) else {
        return Subscription::default();
    };
    Subscription {
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .flat_map(|tp| {
                tp.partitions
                    .iter()
                    .filter_map(|p| u32::try_from(*p).ok())
                    .map(|p| (tp.topic.0.to_string(), p))
            })
            .collect(),
        generation: s.generation_id,
    }
}

pub(crate) fn read_assignment(bytes: &Bytes) -> Assignment {
    let Some((version, mut body)) = body(bytes, walk::consumer_assignment()) else {
        return Assignment::new();
    };
    let Ok(a) = ConsumerProtocolAssignment::decode(&mut body, version) else {
        return Assignment::new();
    };
    let mut out = Assignment::new();
    for tp in a.assigned_partitions {
        let partitions = out.entry(tp.topic.0.to_string()).or_default();
        partitions.extend(tp.partitions.iter().filter_map(|p| u32::try_from(*p).ok()));
        partitions.sort_unstable();
    }
    out
}

fn framed(version: i16, message: &impl Encodable) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    // Encoding a value built here cannot fail; an empty body is what a failure leaves.
    if message.encode(&mut buf, version).is_err() {
        buf.truncate(2);
    }
    buf.freeze()
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(crate) fn write_subscription(s: &Subscription) -> Bytes {
    let mut owned: Vec<OwnedPartitions> = Vec::new();
    for (t, p) in &s.owned {
        match owned.last_mut() {
            Some(last) if last.topic.0.as_str() == t => last.partitions.push(*p as i32),
            _ => owned.push(
                OwnedPartitions::default()
                    .with_topic(topic(t))
                    .with_partitions(vec![*p as i32]),
            ),
        }
    }
    let message = ConsumerProtocolSubscription::default()
        .with_topics(
            s.topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_owned_partitions(owned)
        .with_generation_id(s.generation);
    framed(WRITTEN, &message)
}

pub(crate) fn write_assignment(a: &Assignment) -> Bytes {
    let message = ConsumerProtocolAssignment::default().with_assigned_partitions(
        a.iter()
            .map(|(t, ps)| {
                AssignedPartitions::default()
                    .with_topic(topic(t))
                    .with_partitions(ps.iter().map(|p| *p as i32).collect())
            })
            .collect(),
    );
    framed(WRITTEN, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let s = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned: vec![("a".into(), 0), ("a".into(), 2), ("b".into(), 1)],
            generation: 7,
        };
        assert_eq!(read_subscription(&write_subscription(&s)), s);
        let a = Assignment::from([("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])]);
        assert_eq!(read_assignment(&write_assignment(&a)), a);
    }

    #[test]
    fn garbage_reads_as_nothing_and_absurd_counts_are_not_allocated() {
        assert_eq!(
            read_subscription(&Bytes::from_static(b"\x00")),
            Subscription::default()
        );
        // Version 0, a topics array of 2^31-1 entries in four bytes.
        let huge = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(read_subscription(&huge), Subscription::default());
        assert_eq!(read_assignment(&huge), Assignment::new());
        // A newer version than this reads is read as the newest it knows.
        let mut v9 = write_subscription(&Subscription {
            topics: vec!["t".into()],
            ..Default::default()
        })
        .to_vec();
        v9[..2].copy_from_slice(&9i16.to_be_bytes());
        assert_eq!(
            read_subscription(&Bytes::from(v9)).topics,
            vec!["t".to_string()]
        );
    }
}
