//! Partition assignors, as Kafka defines them. The group leader runs one over every
//! member's subscription; the coordinator only checks the result (`validate`).
//! Members are ordered by `group.instance.id` when they have one, else by member id
//! (KIP-345), so a static member keeps its place across restarts.

mod range;
mod round_robin;
mod sticky;

use std::collections::{BTreeMap, BTreeSet};

pub use range::Range;
pub use round_robin::RoundRobin;
pub use sticky::{CooperativeSticky, Sticky};

use crate::types::{Assignment, JoinedMember, TopicPartition};

/// Eager: every member gives up all its partitions before it rejoins. Cooperative
/// (KIP-429): members keep what they own; a partition that moves is first revoked by
/// one rebalance and assigned by the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    Eager,
    Cooperative,
}

pub trait Assignor: Send + Sync {
    /// The protocol name members announce (`range`, `roundrobin`, `sticky`,
    /// `cooperative-sticky`).
    fn name(&self) -> &'static str;
    fn rebalance_protocol(&self) -> RebalanceProtocol;
    /// Every member's assignment (members without partitions get an empty one), given
    /// the partition count of each topic.
    fn assign(
        &self,
        partition_counts: &BTreeMap<String, u32>,
        members: &[JoinedMember],
    ) -> BTreeMap<String, Assignment>;
}

/// The assignor with this protocol name.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(Range)),
        "roundrobin" => Some(Box::new(RoundRobin)),
        "sticky" => Some(Box::new(Sticky)),
        "cooperative-sticky" => Some(Box::new(CooperativeSticky)),
        _ => None,
    }
}

/// Members in assignment order: by instance id if static, else by member id.
pub(crate) fn ordered(members: &[JoinedMember]) -> Vec<&JoinedMember> {
    let mut sorted: Vec<&JoinedMember> = members.iter().collect();
    sorted.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
    sorted
}

fn sort_key(m: &JoinedMember) -> &str {
    m.group_instance_id.as_deref().unwrap_or(&m.member_id)
}

/// An empty assignment for every member, to fill in.
pub(crate) fn empty_for(members: &[JoinedMember]) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect()
}

pub(crate) fn add(assignment: &mut Assignment, (topic, partition): &TopicPartition) {
    let partitions = assignment.entry(topic.clone()).or_default();
    if let Err(at) = partitions.binary_search(partition) {
        partitions.insert(at, *partition);
    }
}

/// Every (topic, partition) in an assignment.
pub fn partitions_of(assignment: &Assignment) -> Vec<TopicPartition> {
    assignment
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect()
}

/// Checks a leader's assignment: it names only group members, and gives no partition
/// to two members.
pub fn validate(
    members: &BTreeSet<String>,
    assignments: &BTreeMap<String, Assignment>,
) -> Result<(), String> {
    if let Some(stranger) = assignments.keys().find(|m| !members.contains(*m)) {
        return Err(format!("the assignment names {stranger}, not a member"));
    }
    let mut owner: BTreeMap<TopicPartition, &str> = BTreeMap::new();
    for (member, assignment) in assignments {
        for tp in partitions_of(assignment) {
            if let Some(other) = owner.insert(tp.clone(), member) {
                return Err(format!(
                    "{}-{} is assigned to both {other} and {member}",
                    tp.0, tp.1
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::types::Subscription;

    pub fn member(id: &str, topics: &[&str]) -> JoinedMember {
        JoinedMember {
            member_id: id.to_string(),
            group_instance_id: None,
            metadata: None,
            subscription: Subscription {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                owned: Vec::new(),
                generation: 0,
            },
        }
    }

    pub fn counts(topics: &[(&str, u32)]) -> BTreeMap<String, u32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    /// Each member's partitions of one topic, in member order.
    pub fn of_topic(result: &BTreeMap<String, Assignment>, topic: &str) -> Vec<Vec<u32>> {
        result
            .values()
            .map(|a| a.get(topic).cloned().unwrap_or_default())
            .collect()
    }
}
