//! What a group shows without changing: its state, members and the persisted form.

use std::collections::BTreeSet;

use rill_common::group::CONSUMER_PROTOCOL_TYPE;

use super::member::Member;
use super::Group;
use crate::types::{Assignment, GroupDescription, GroupState};

impl Group {
    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn member_ids(&self) -> BTreeSet<String> {
        self.members.keys().cloned().collect()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    pub fn assignment_of(&self, member_id: &str) -> Option<&Assignment> {
        self.members
            .get(member_id)
            .map(|m| &m.assignment.partitions)
    }

    /// OffsetDelete's rule: the topics whose committed offsets must stay because members
    /// of this group consume them. `None`: a group with members that does not speak the
    /// consumer protocol, whose offsets all stay (NON_EMPTY_GROUP).
    pub fn topics_in_use(&self) -> Option<BTreeSet<String>> {
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        let topics = self.members.values().flat_map(|m| {
            m.protocols
                .iter()
                .filter(|p| {
                    self.protocol
                        .as_ref()
                        .is_none_or(|chosen| *chosen == p.name)
                })
                .flat_map(|p| p.subscription.topics.iter().cloned())
        });
        Some(topics.collect())
    }

    pub fn describe(&self) -> GroupDescription {
        GroupDescription {
            group_id: self.group_id.clone(),
            state: self.state,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self.members.values().map(Member::describe).collect(),
        }
    }
}
