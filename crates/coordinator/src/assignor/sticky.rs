//! Sticky and CooperativeSticky: a balanced assignment (sizes differ by at most one
//! where subscriptions allow) that keeps as many partitions with their current owners as
//! it can. CooperativeSticky then holds back every partition that changes owner, so the
//! old owner revokes it in this rebalance and the new one gets it in the next (KIP-429).

use std::collections::{BTreeMap, BTreeSet};

use super::{add, empty_for, ordered, Assignor, RebalanceProtocol};
use crate::types::{Assignment, JoinedMember, TopicPartition};

pub struct Sticky;
pub struct CooperativeSticky;

impl Assignor for Sticky {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partition_counts: &BTreeMap<String, u32>,
        members: &[JoinedMember],
    ) -> BTreeMap<String, Assignment> {
        sticky_assign(partition_counts, members)
    }
}

impl Assignor for CooperativeSticky {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        partition_counts: &BTreeMap<String, u32>,
        members: &[JoinedMember],
    ) -> BTreeMap<String, Assignment> {
        let mut result = sticky_assign(partition_counts, members);
        let owners: BTreeMap<TopicPartition, &str> = members
            .iter()
            .flat_map(|m| {
                m.subscription
                    .owned
                    .iter()
                    .map(move |tp| (tp.clone(), m.member_id.as_str()))
            })
            .collect();
        for (member, assignment) in result.iter_mut() {
            for (topic, partitions) in assignment.iter_mut() {
                partitions.retain(|p| {
                    owners
                        .get(&(topic.clone(), *p))
                        .is_none_or(|owner| owner == member)
                });
            }
            assignment.retain(|_, partitions| !partitions.is_empty());
        }
        result
    }
}

fn sticky_assign(
    partition_counts: &BTreeMap<String, u32>,
    members: &[JoinedMember],
) -> BTreeMap<String, Assignment> {
    let order = ordered(members);
    let n = order.len();
    let mut assigned: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); n];
    let eligible = |i: usize, tp: &TopicPartition| order[i].subscription.topics.contains(&tp.0);
    let exists = |tp: &TopicPartition| {
        partition_counts
            .get(&tp.0)
            .is_some_and(|count| tp.1 < *count)
    };

    // Current owners keep what they own (the newest generation wins a dispute).
    let mut by_generation: Vec<usize> = (0..n).collect();
    by_generation.sort_by_key(|i| std::cmp::Reverse(order[*i].subscription.generation));
    let mut claimed: BTreeSet<TopicPartition> = BTreeSet::new();
    for i in by_generation {
        for tp in &order[i].subscription.owned {
            if exists(tp) && eligible(i, tp) && claimed.insert(tp.clone()) {
                assigned[i].insert(tp.clone());
            }
        }
    }

    // The rest goes to the eligible member with the fewest partitions.
    for (topic, count) in partition_counts {
        for p in 0..*count {
            let tp = (topic.clone(), p);
            if claimed.contains(&tp) {
                continue;
            }
            let least = (0..n)
                .filter(|i| eligible(*i, &tp))
                .min_by_key(|i| (assigned[*i].len(), *i));
            if let Some(i) = least {
                assigned[i].insert(tp);
            }
        }
    }

    // Balance: move one partition at a time from a member to one with at least two
    // fewer that may take it, the widest gap first, until no such pair is left. Each move
    // shrinks the sum of squared sizes, so this ends.
    loop {
        let mut best: Option<(usize, usize, usize)> = None;
        for from in 0..n {
            for to in 0..n {
                let (a, b) = (assigned[from].len(), assigned[to].len());
                if a <= b + 1 || best.is_some_and(|(gap, _, _)| a - b <= gap) {
                    continue;
                }
                if assigned[from].iter().any(|tp| eligible(to, tp)) {
                    best = Some((a - b, from, to));
                }
            }
        }
        let Some((_, from, to)) = best else { break };
        let moved = assigned[from]
            .iter()
            .rev()
            .find(|tp| eligible(to, tp))
            .cloned();
        if let Some(tp) = moved {
            assigned[from].remove(&tp);
            assigned[to].insert(tp);
        }
    }

    let mut result = empty_for(members);
    for (i, partitions) in assigned.iter().enumerate() {
        if let Some(assignment) = result.get_mut(&order[i].member_id) {
            for tp in partitions {
                add(assignment, tp);
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::assignor::partitions_of;
    use crate::assignor::test_support::{counts, member};

    fn with_owned(m: JoinedMember, owned: &Assignment) -> JoinedMember {
        let mut m = m;
        m.subscription.owned = partitions_of(owned);
        m.subscription.generation = 1;
        m
    }

    fn sizes(result: &BTreeMap<String, Assignment>) -> Vec<usize> {
        result.values().map(|a| partitions_of(a).len()).collect()
    }

    fn members(n: usize) -> Vec<JoinedMember> {
        (0..n)
            .map(|i| member(&format!("m{i:02}"), &["t", "u"]))
            .collect()
    }

    #[test]
    fn a_leaving_member_moves_only_its_own_partitions() {
        let topics = counts(&[("t", 10)]);
        let first = Sticky.assign(&topics, &members(3));
        let remaining: Vec<JoinedMember> = members(3)
            .into_iter()
            .skip(1)
            .map(|m| with_owned(m.clone(), &first[&m.member_id]))
            .collect();
        let second = Sticky.assign(&topics, &remaining);
        for m in &remaining {
            for tp in &m.subscription.owned {
                assert!(partitions_of(&second[&m.member_id]).contains(tp));
            }
        }
        assert_eq!(sizes(&second), vec![5, 5]);
    }

    #[test]
    fn cooperative_revokes_first_and_assigns_in_the_next_rebalance() {
        let topics = counts(&[("t", 4)]);
        let first = CooperativeSticky.assign(&topics, &members(1));
        assert_eq!(sizes(&first), vec![4]);
        // A second member joins: the first gives up two partitions, nobody gets them yet.
        let old = with_owned(members(1)[0].clone(), &first["m00"]);
        let joined = vec![old.clone(), members(2)[1].clone()];
        let second = CooperativeSticky.assign(&topics, &joined);
        assert_eq!(sizes(&second), vec![2, 0]);
        // The first member rejoins owning only what it kept: now the rest moves.
        let kept = with_owned(old, &second["m00"]);
        let third = CooperativeSticky.assign(&topics, &[kept, members(2)[1].clone()]);
        assert_eq!(sizes(&third), vec![2, 2]);
        assert_eq!(partitions_of(&third["m00"]), partitions_of(&second["m00"]));
    }

    proptest! {
        #[test]
        fn every_partition_once_balanced_and_sticky(
            n in 1usize..7,
            t in 0u32..20,
            u in 0u32..20,
            leaving in 0usize..7,
        ) {
            let topics = counts(&[("t", t), ("u", u)]);
            let first = Sticky.assign(&topics, &members(n));
            let all: Vec<TopicPartition> = first.values().flat_map(partitions_of).collect();
            let unique: BTreeSet<TopicPartition> = all.iter().cloned().collect();
            prop_assert_eq!(all.len(), (t + u) as usize);
            prop_assert_eq!(unique.len(), all.len());
            let s = sizes(&first);
            prop_assert!(s.iter().max().unwrap_or(&0) - s.iter().min().unwrap_or(&0) <= 1);

            // One member leaves (if there is another) and one joins: members that stay
            // keep everything they had when one left, and only lose when one joined.
            let owned: Vec<JoinedMember> = members(n)
                .into_iter()
                .map(|m| with_owned(m.clone(), &first[&m.member_id]))
                .collect();
            let mut after_leave = owned.clone();
            if n > 1 {
                after_leave.remove(leaving % n);
            }
            let second = Sticky.assign(&topics, &after_leave);
            for m in &after_leave {
                let now = partitions_of(&second[&m.member_id]);
                prop_assert!(m.subscription.owned.iter().all(|tp| now.contains(tp)));
            }
            let mut after_join = owned;
            after_join.push(member("zz", &["t", "u"]));
            let third = Sticky.assign(&topics, &after_join);
            for m in after_join.iter().filter(|m| m.member_id != "zz") {
                let now = partitions_of(&third[&m.member_id]);
                prop_assert!(now.iter().all(|tp| m.subscription.owned.contains(tp)));
            }
            let s = sizes(&third);
            prop_assert!(s.iter().max().unwrap_or(&0) - s.iter().min().unwrap_or(&0) <= 1);
        }

        #[test]
        fn range_and_round_robin_assign_every_partition_once(n in 1usize..7, t in 0u32..30) {
            let topics = counts(&[("t", t)]);
            for assignor in [super::super::by_name("range"), super::super::by_name("roundrobin")]
                .into_iter()
                .flatten()
            {
                let result = assignor.assign(&topics, &members(n));
                let all: Vec<TopicPartition> = result.values().flat_map(partitions_of).collect();
                let unique: BTreeSet<TopicPartition> = all.iter().cloned().collect();
                prop_assert_eq!(all.len(), t as usize);
                prop_assert_eq!(unique.len(), all.len());
                let s = sizes(&result);
                prop_assert!(s.iter().max().unwrap_or(&0) - s.iter().min().unwrap_or(&0) <= 1);
            }
        }
    }
}
