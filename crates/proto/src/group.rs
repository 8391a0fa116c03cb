//! The one conversion between the consumer-group domain types and their protobuf form.

use rill_common::group::{Assignment, OffsetCommit, Subscription};

use crate::v1 as pb;

pub fn assignment_to_pb(assignment: &Assignment) -> Vec<pb::TopicAssignment> {
    assignment
        .iter()
        .map(|(topic, partitions)| pb::TopicAssignment {
            topic: topic.clone(),
            partitions: partitions.clone(),
        })
        .collect()
}

pub fn assignment_from_pb(topics: Vec<pb::TopicAssignment>) -> Assignment {
    let mut assignment = Assignment::new();
    for t in topics {
        let partitions = assignment.entry(t.topic).or_default();
        partitions.extend(t.partitions);
        partitions.sort_unstable();
        partitions.dedup();
    }
    assignment
}

pub fn subscription_to_pb(s: &Subscription) -> pb::GroupSubscription {
    pb::GroupSubscription {
        topics: s.topics.clone(),
        owned: s
            .owned
            .iter()
            .map(|(topic, partition)| pb::TopicPartitionRef {
                topic: topic.clone(),
                partition: *partition,
            })
            .collect(),
        generation: s.generation,
    }
}

pub fn subscription_from_pb(s: Option<pb::GroupSubscription>) -> Subscription {
    let s = s.unwrap_or_default();
    Subscription {
        topics: s.topics,
        owned: s
            .owned
            .into_iter()
            .map(|tp| (tp.topic, tp.partition))
            .collect(),
        generation: s.generation,
    }
}

impl From<pb::PartitionOffset> for OffsetCommit {
    fn from(o: pb::PartitionOffset) -> Self {
        Self {
            topic: o.topic,
            partition: o.partition,
            offset: o.offset,
            metadata: o.metadata,
            leader_epoch: None,
        }
    }
}

impl From<OffsetCommit> for pb::PartitionOffset {
    fn from(o: OffsetCommit) -> Self {
        Self {
            topic: o.topic,
            partition: o.partition,
            offset: o.offset,
            metadata: o.metadata,
        }
    }
}
