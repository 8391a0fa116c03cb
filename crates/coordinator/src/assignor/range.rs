//! Range: per topic, the members subscribed to it (in order) take consecutive ranges;
//! the first `partitions % members` take one extra.

use std::collections::BTreeMap;

use super::{add, empty_for, ordered, Assignor, RebalanceProtocol};
use crate::types::{Assignment, JoinedMember};

pub struct Range;

impl Assignor for Range {
    fn name(&self) -> &'static str {
        "range"
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
        for (topic, count) in partition_counts {
            let subscribed: Vec<&str> = order
                .iter()
                .filter(|m| m.subscription.topics.contains(topic))
                .map(|m| m.member_id.as_str())
                .collect();
            if subscribed.is_empty() {
                continue;
            }
            let n = subscribed.len() as u32;
            let (per_member, extra) = (count / n, count % n);
            for (i, member) in subscribed.iter().enumerate() {
                let i = i as u32;
                let start = per_member * i + i.min(extra);
                let length = per_member + u32::from(i < extra);
                if let Some(assignment) = result.get_mut(*member) {
                    for p in start..start + length {
                        add(assignment, &(topic.clone(), p));
                    }
                }
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
    fn eight_partitions_over_three_members_as_kafka_does() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let result = Range.assign(&counts(&[("t", 8)]), &members);
        assert_eq!(
            of_topic(&result, "t"),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]
        );
    }

    #[test]
    fn ten_partitions_from_three_to_five_members() {
        let three: Vec<_> = ["a", "b", "c"].iter().map(|m| member(m, &["t"])).collect();
        let result = Range.assign(&counts(&[("t", 10)]), &three);
        assert_eq!(
            of_topic(&result, "t"),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]
        );
        let five: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|m| member(m, &["t"]))
            .collect();
        let result = Range.assign(&counts(&[("t", 10)]), &five);
        assert_eq!(
            of_topic(&result, "t"),
            vec![vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7], vec![8, 9]]
        );
    }

    #[test]
    fn only_subscribers_of_a_topic_share_it() {
        let members = [member("a", &["t", "u"]), member("b", &["u"])];
        let result = Range.assign(&counts(&[("t", 2), ("u", 3)]), &members);
        assert_eq!(of_topic(&result, "t"), vec![vec![0, 1], vec![]]);
        assert_eq!(of_topic(&result, "u"), vec![vec![0, 1], vec![2]]);
    }
}
