//! RoundRobin: every subscribed partition in (topic, partition) order goes to the next
//! member in a circle, skipping members not subscribed to its topic.

use std::collections::BTreeMap;

use super::{add, empty_for, ordered, Assignor, RebalanceProtocol};
use crate::types::{Assignment, JoinedMember};

pub struct RoundRobin;

impl Assignor for RoundRobin {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partition_counts: &BTreeMap<String, u32>,
        members: &[JoinedMember],
    ) -> BTreeMap<String, Assignment> {
        let mut result = empty_for(members);
        let order = ordered(members);
        if order.is_empty() {
            return result;
        }
        let mut next = 0usize;
        for (topic, count) in partition_counts {
            if !order.iter().any(|m| m.subscription.topics.contains(topic)) {
                continue;
            }
            for p in 0..*count {
                // Some member subscribes, so this finds one within a full circle.
                while !order[next % order.len()]
                    .subscription
                    .topics
                    .contains(topic)
                {
                    next += 1;
                }
                let member = &order[next % order.len()].member_id;
                if let Some(assignment) = result.get_mut(member) {
                    add(assignment, &(topic.clone(), p));
                }
                next += 1;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignor::test_support::{counts, member, of_topic};

    #[test]
    fn six_partitions_over_three_members_as_kafka_does() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let result = RoundRobin.assign(&counts(&[("t", 6)]), &members);
        assert_eq!(
            of_topic(&result, "t"),
            vec![vec![0, 3], vec![1, 4], vec![2, 5]]
        );
    }

    #[test]
    fn members_not_subscribed_are_skipped() {
        let members = [member("a", &["t"]), member("b", &["t", "u"])];
        let result = RoundRobin.assign(&counts(&[("t", 3), ("u", 2)]), &members);
        assert_eq!(of_topic(&result, "t"), vec![vec![0, 2], vec![1]]);
        assert_eq!(of_topic(&result, "u"), vec![vec![], vec![0, 1]]);
    }
}
