//! One consumer group's state machine (Kafka's group coordinator protocol), free of I/O.
//!
//! The coordinator feeds it requests (`join`, `sync`, `heartbeat`, `leave`,
//! `check_commit`) and clock ticks (`tick`) with the time passed in, and acts on the
//! returned [`Output`]s: answer a JoinGroup or SyncGroup that was waiting, or persist the
//! group. Every state change happens in this file:
//!
//! ```text
//! Empty ──join──> PreparingRebalance ──all joined / rebalance timeout──> CompletingRebalance
//!   ^                 ^       │                                                │
//!   │                 │       └──nobody left──> Empty                          │ leader's sync
//!   │                 └──join (new member or new subscription), leave,          v
//!   │                    session expiry, partition count change ─────────── Stable
//!   └──last member leaves or expires (from any state)
//! Empty ──delete──> Dead
//! ```
//! An empty group's first rebalance also waits `group.initial.rebalance.delay.ms` after
//! its latest newcomer (never past the rebalance timeout), as Kafka does.
//! Beside it: `member.rs` (a member, made on join or restored, and its persisted form)
//! and `view.rs` (what the group shows without changing).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rill_common::ErrorCode;

use crate::assignor;
use crate::types::{
    GroupDescription, GroupState, JoinRequest, JoinResponse, JoinedMember, MemberAssignment,
    Protocol, SyncRequest,
};
use member::Member;

/// The coordinator's settings (`group.min.session.timeout.ms`,
/// `group.max.session.timeout.ms`, `group.initial.rebalance.delay.ms`).
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// How long the first rebalance of an empty group waits for more members, renewed
    /// by each new member up to the rebalance timeout (Kafka's default is 3 s): consumers
    /// started together get one generation instead of one per arrival.
    pub initial_rebalance_delay: Duration,
}

/// What the coordinator must do after feeding the group an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer the JoinGroup that `member_id` is waiting on.
    Join {
        member_id: String,
        result: Result<JoinResponse, ErrorCode>,
    },
    /// Answer the SyncGroup that `member_id` is waiting on.
    Sync {
        member_id: String,
        result: Result<MemberAssignment, ErrorCode>,
    },
    /// The durable part of the group changed (a generation completed or the group
    /// emptied): write `Group::describe()` through the metadata log.
    Persist,
    /// A rebalance completed (PreparingRebalance to Stable): how long it took and how
    /// many partitions changed owner, for metrics.
    Rebalanced {
        latency: Duration,
        partitions_moved: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// When a PreparingRebalance gives up on members that did not rejoin, or a
    /// CompletingRebalance on a leader that did not sync.
    deadline: Option<Instant>,
    next_seq: u64,
    /// KIP-394: ids handed to new members that must come back with them, until when.
    pending: BTreeMap<String, Instant>,
    /// When the rebalance under way began.
    rebalance_started: Option<Instant>,
    /// The first rebalance of an empty group completes no earlier than this.
    initial_join_until: Option<Instant>,
}

impl Group {
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            deadline: None,
            next_seq: 0,
            pending: BTreeMap::new(),
            rebalance_started: None,
            initial_join_until: None,
        }
    }

    /// Rebuilds a group from its persisted description on a new coordinator: members
    /// count as heard from `now` (deadlines restart on failover). A group persisted
    /// mid-rebalance cannot happen (only stable points are persisted), but anything not
    /// Stable comes back as a rebalance.
    pub fn restore(d: &GroupDescription, now: Instant) -> Self {
        let mut group = Self::new(&d.group_id);
        group.generation = d.generation;
        group.protocol_type = d.protocol_type.clone();
        group.protocol = d.protocol.clone();
        group.leader = d.leader.clone();
        for m in &d.members {
            group.next_seq += 1;
            group
                .members
                .insert(m.member_id.clone(), Member::restore(m, now, group.next_seq));
        }
        group.state = match d.state {
            GroupState::Dead => GroupState::Dead,
            _ if group.members.is_empty() => GroupState::Empty,
            GroupState::Stable => GroupState::Stable,
            _ => {
                let mut outputs = Vec::new();
                group.prepare_rebalance(now, &mut outputs);
                GroupState::PreparingRebalance
            }
        };
        group
    }

    /// JoinGroup. The answer is in the outputs: at once, or when the rebalance completes.
    pub fn join(&mut self, now: Instant, config: &GroupConfig, req: JoinRequest) -> Vec<Output> {
        let mut out = Vec::new();
        let reject = |code| {
            vec![Output::Join {
                member_id: if req.member_id.is_empty() {
                    req.new_member_id.clone()
                } else {
                    req.member_id.clone()
                },
                result: Err(code),
            }]
        };
        if self.state == GroupState::Dead {
            return reject(ErrorCode::CoordinatorNotAvailable);
        }
        if req.session_timeout < config.min_session_timeout
            || req.session_timeout > config.max_session_timeout
        {
            return reject(ErrorCode::InvalidSessionTimeout);
        }
        if req.protocols.is_empty()
            || req.protocol_type.is_empty()
            || !self.supports(&req.protocol_type, &req.protocols, &req.member_id)
        {
            return reject(ErrorCode::InconsistentGroupProtocol);
        }

        // Which member this is: a known id, a static member's new incarnation, or new.
        let static_id = req
            .group_instance_id
            .as_ref()
            .and_then(|i| self.member_by_instance(i));
        let member_id = if req.member_id.is_empty() {
            match static_id {
                Some(old) => return self.rejoin_static(now, old, req),
                None if req.require_known_member_id && req.group_instance_id.is_none() => {
                    // Told its id, the member joins with it; a member that never comes
                    // back is forgotten after its session timeout.
                    self.pending
                        .insert(req.new_member_id.clone(), now + req.session_timeout);
                    return reject(ErrorCode::MemberIdRequired);
                }
                None => req.new_member_id.clone(),
            }
        } else if self.pending.remove(&req.member_id).is_some() {
            req.member_id.clone()
        } else {
            if !self.members.contains_key(&req.member_id) {
                return reject(ErrorCode::UnknownMemberId);
            }
            if static_id.as_ref().is_some_and(|id| *id != req.member_id) {
                return reject(ErrorCode::FencedInstanceId);
            }
            req.member_id.clone()
        };

        self.protocol_type = Some(req.protocol_type.clone());
        let is_new = !self.members.contains_key(&member_id);
        let changed = match self.members.get_mut(&member_id) {
            Some(m) => {
                let changed = m.protocols != req.protocols;
                m.protocols = req.protocols;
                m.session_timeout = req.session_timeout;
                m.rebalance_timeout = req.rebalance_timeout;
                m.last_heard = now;
                changed
            }
            None => {
                self.next_seq += 1;
                let member = Member::new(member_id.clone(), req, now, self.next_seq);
                self.members.insert(member_id.clone(), member);
                true
            }
        };

        let was_empty = self.state == GroupState::Empty;
        match self.state {
            GroupState::PreparingRebalance => {}
            // The leader rejoining means it wants a new assignment (it saw a change);
            // a follower with the same subscription just gets the current generation.
            GroupState::CompletingRebalance | GroupState::Stable
                if !changed && self.leader.as_deref() != Some(member_id.as_str()) =>
            {
                out.push(Output::Join {
                    member_id: member_id.clone(),
                    result: Ok(self.join_response(&member_id)),
                });
                return out;
            }
            _ => self.prepare_rebalance(now, &mut out),
        }
        if let Some(m) = self.members.get_mut(&member_id) {
            m.awaiting_join = true;
        }
        // An empty group's first rebalance waits for the members starting with this one;
        // each newcomer renews the wait, never past the rebalance deadline.
        if !config.initial_rebalance_delay.is_zero()
            && (was_empty || (is_new && self.initial_join_until.is_some()))
        {
            let until = now + config.initial_rebalance_delay;
            self.initial_join_until = Some(self.deadline.map_or(until, |d| until.min(d)));
        }
        self.maybe_complete_join(now, &mut out);
        out
    }

    /// A static member restarted with a new member id: it takes its old place, keeps its
    /// assignment, and (in a stable group with the same subscription) causes no rebalance.
    fn rejoin_static(&mut self, now: Instant, old_id: String, req: JoinRequest) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(mut member) = self.members.remove(&old_id) else {
            return out;
        };
        if member.awaiting_sync {
            out.push(Output::Sync {
                member_id: old_id.clone(),
                result: Err(ErrorCode::FencedInstanceId),
            });
        }
        if member.awaiting_join {
            out.push(Output::Join {
                member_id: old_id.clone(),
                result: Err(ErrorCode::FencedInstanceId),
            });
        }
        let new_id = req.new_member_id.clone();
        // A new incarnation owns nothing yet and knows no generation; only a change of
        // protocols or topics asks for a new assignment.
        let subscribed = |protocols: &[Protocol]| -> Vec<(String, Vec<String>)> {
            protocols
                .iter()
                .map(|p| (p.name.clone(), p.subscription.topics.clone()))
                .collect()
        };
        let changed = subscribed(&member.protocols) != subscribed(&req.protocols);
        member.id = new_id.clone();
        member.client_id = req.client_id;
        member.protocols = req.protocols;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.last_heard = now;
        member.awaiting_join = false;
        member.awaiting_sync = false;
        self.members.insert(new_id.clone(), member);
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if self.state == GroupState::Stable && !changed {
            out.push(Output::Join {
                member_id: new_id.clone(),
                result: Ok(self.join_response(&new_id)),
            });
            out.push(Output::Persist);
            return out;
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, &mut out);
        }
        if let Some(m) = self.members.get_mut(&new_id) {
            m.awaiting_join = true;
        }
        self.maybe_complete_join(now, &mut out);
        out
    }

    /// SyncGroup: the leader's assignment completes the rebalance; the others wait for it.
    pub fn sync(&mut self, now: Instant, req: SyncRequest) -> Vec<Output> {
        let reply = |result| {
            vec![Output::Sync {
                member_id: req.member_id.clone(),
                result,
            }]
        };
        if let Err(code) = self.check_member(&req.member_id, req.group_instance_id.as_deref()) {
            return reply(Err(code));
        }
        if req.generation != self.generation {
            return reply(Err(ErrorCode::IllegalGeneration));
        }
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.last_heard = now;
        }
        match self.state {
            GroupState::PreparingRebalance => reply(Err(ErrorCode::RebalanceInProgress)),
            GroupState::Stable => reply(Ok(self
                .members
                .get(&req.member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default())),
            GroupState::CompletingRebalance => {
                if self.leader.as_deref() != Some(req.member_id.as_str()) {
                    if let Some(m) = self.members.get_mut(&req.member_id) {
                        m.awaiting_sync = true;
                    }
                    return Vec::new();
                }
                if let Err(why) = assignor::validate(&self.member_ids(), &req.assignments) {
                    let _ = why;
                    return reply(Err(ErrorCode::InvalidAssignment));
                }
                let mut out = Vec::new();
                let owners =
                    |members: &BTreeMap<String, Member>| -> BTreeMap<(String, u32), String> {
                        members
                            .values()
                            .flat_map(|m| {
                                m.assignment.partitions.iter().flat_map(move |(t, ps)| {
                                    ps.iter().map(move |p| ((t.clone(), *p), m.id.clone()))
                                })
                            })
                            .collect()
                    };
                let before = owners(&self.members);
                for (id, m) in self.members.iter_mut() {
                    m.assignment = MemberAssignment {
                        partitions: req.assignments.get(id).cloned().unwrap_or_default(),
                        bytes: req.assignment_bytes.get(id).cloned(),
                    };
                    if m.awaiting_sync || *id == req.member_id {
                        m.awaiting_sync = false;
                        out.push(Output::Sync {
                            member_id: id.clone(),
                            result: Ok(m.assignment.clone()),
                        });
                    }
                }
                self.state = GroupState::Stable;
                self.deadline = None;
                let partitions_moved = owners(&self.members)
                    .iter()
                    .filter(|(tp, owner)| before.get(*tp) != Some(*owner))
                    .count();
                if let Some(started) = self.rebalance_started.take() {
                    out.push(Output::Rebalanced {
                        latency: now.saturating_duration_since(started),
                        partitions_moved,
                    });
                }
                out.push(Output::Persist);
                out
            }
            GroupState::Empty | GroupState::Dead => reply(Err(ErrorCode::UnknownMemberId)),
        }
    }

    /// Heartbeat: keeps the session alive; during a rebalance it tells the member to
    /// rejoin.
    pub fn heartbeat(
        &mut self,
        now: Instant,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ErrorCode> {
        self.check_member(member_id, instance_id)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heard = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(ErrorCode::RebalanceInProgress),
            _ if generation != self.generation => Err(ErrorCode::IllegalGeneration),
            _ => Ok(()),
        }
    }

    /// LeaveGroup by member id (or, for a static member, by instance id).
    pub fn leave(
        &mut self,
        now: Instant,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<Vec<Output>, ErrorCode> {
        let id = match (member_id.is_empty(), instance_id) {
            (true, Some(instance)) => self
                .member_by_instance(instance)
                .ok_or(ErrorCode::UnknownMemberId)?,
            _ => {
                self.check_member(member_id, instance_id)?;
                member_id.to_string()
            }
        };
        let mut out = Vec::new();
        self.remove_members(now, &[id], &mut out);
        Ok(out)
    }

    /// Whether `member_id` at `generation` may commit offsets now (Stable, or while the
    /// next rebalance gathers members). A commit without a member (generation < 0) is for
    /// a group nobody is in (admin tools, assign mode).
    pub fn check_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ErrorCode> {
        if generation < 0 && member_id.is_empty() {
            return match self.state {
                GroupState::Empty | GroupState::Dead => Ok(()),
                _ => Err(ErrorCode::UnknownMemberId),
            };
        }
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        // Members of the current generation keep their partitions (and so may commit)
        // until they rejoin; once the next generation is formed but not yet assigned,
        // nobody may.
        match self.state {
            GroupState::Stable | GroupState::PreparingRebalance => Ok(()),
            _ => Err(ErrorCode::RebalanceInProgress),
        }
    }

    /// The clock moved: expire silent members, give up on members that did not rejoin
    /// and on a leader that did not sync.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        self.pending.retain(|_, until| *until > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !m.awaiting_join && now.saturating_duration_since(m.last_heard) > m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        if !expired.is_empty() {
            self.remove_members(now, &expired, &mut out);
        }
        let overdue = self.deadline.is_some_and(|d| now >= d);
        match self.state {
            GroupState::PreparingRebalance if overdue => self.complete_join(now, &mut out),
            GroupState::PreparingRebalance => self.maybe_complete_join(now, &mut out),
            GroupState::CompletingRebalance if overdue => {
                // The leader never sent an assignment: start over without it.
                let leader: Vec<String> = self.leader.iter().cloned().collect();
                self.remove_members(now, &leader, &mut out);
            }
            _ => {}
        }
        out
    }

    /// Partition counts of topics changed: members subscribed to one of them need a new
    /// assignment.
    pub fn topics_changed(&mut self, now: Instant, topics: &BTreeSet<String>) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(protocol) = self.protocol.clone() else {
            return out;
        };
        let affected = self.members.values().any(|m| {
            m.subscription(&protocol)
                .topics
                .iter()
                .any(|t| topics.contains(t))
        });
        if affected
            && matches!(
                self.state,
                GroupState::Stable | GroupState::CompletingRebalance
            )
        {
            self.prepare_rebalance(now, &mut out);
        }
        out
    }

    /// An empty group can be deleted (its offsets go with it).
    pub fn delete(&mut self) -> Result<(), ErrorCode> {
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                self.state = GroupState::Dead;
                Ok(())
            }
            _ => Err(ErrorCode::NonEmptyGroup),
        }
    }

    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ErrorCode> {
        let Some(member) = self.members.get(member_id) else {
            return Err(match instance_id.and_then(|i| self.member_by_instance(i)) {
                Some(_) => ErrorCode::FencedInstanceId,
                None => ErrorCode::UnknownMemberId,
            });
        };
        if instance_id.is_some() && member.instance_id.as_deref() != instance_id {
            return Err(ErrorCode::FencedInstanceId);
        }
        Ok(())
    }

    fn member_by_instance(&self, instance_id: &str) -> Option<String> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.clone())
    }

    /// Whether a joining member's protocols fit the group: same protocol type, and one
    /// protocol every other member supports too.
    fn supports(&self, protocol_type: &str, protocols: &[Protocol], member_id: &str) -> bool {
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.id != member_id)
            .collect();
        if others.is_empty() {
            return true;
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != protocol_type)
        {
            return false;
        }
        protocols.iter().any(|p| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|q| q.name == p.name))
        })
    }

    fn remove_members(&mut self, now: Instant, ids: &[String], out: &mut Vec<Output>) {
        for id in ids {
            if let Some(m) = self.members.remove(id) {
                if m.awaiting_join {
                    out.push(Output::Join {
                        member_id: id.clone(),
                        result: Err(ErrorCode::UnknownMemberId),
                    });
                }
                if m.awaiting_sync {
                    out.push(Output::Sync {
                        member_id: id.clone(),
                        result: Err(ErrorCode::UnknownMemberId),
                    });
                }
            }
        }
        if self
            .leader
            .as_ref()
            .is_some_and(|l| !self.members.contains_key(l))
        {
            self.leader = None;
        }
        if self.members.is_empty() {
            self.become_empty(out);
        } else if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now, out);
        } else {
            self.prepare_rebalance(now, out);
        }
    }

    fn become_empty(&mut self, out: &mut Vec<Output>) {
        if self.state != GroupState::Empty {
            self.state = GroupState::Empty;
            self.rebalance_started = None;
            self.initial_join_until = None;
            self.generation += 1;
            self.protocol = None;
            self.leader = None;
            self.deadline = None;
            out.push(Output::Persist);
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, out: &mut Vec<Output>) {
        for m in self.members.values_mut() {
            if m.awaiting_sync {
                m.awaiting_sync = false;
                out.push(Output::Sync {
                    member_id: m.id.clone(),
                    result: Err(ErrorCode::RebalanceInProgress),
                });
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.state = GroupState::PreparingRebalance;
        self.rebalance_started.get_or_insert(now);
        self.deadline = Some(now + timeout);
    }

    fn maybe_complete_join(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_join_until.is_none_or(|until| now >= until)
            && self.members.values().all(|m| m.awaiting_join)
        {
            self.complete_join(now, out);
        }
    }

    /// Ends PreparingRebalance: members that did not rejoin are dropped, the generation
    /// moves on, a protocol and a leader are chosen, and every waiting join is answered.
    fn complete_join(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.initial_join_until = None;
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join)
            .map(|m| m.id.clone())
            .collect();
        for id in &missing {
            self.members.remove(id);
        }
        if self.members.is_empty() {
            self.become_empty(out);
            return;
        }
        self.generation += 1;
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.joined_seq)
                .map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let sync_timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.deadline = Some(now + sync_timeout);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.awaiting_join = false;
                m.last_heard = now;
            }
            out.push(Output::Join {
                member_id: id,
                result: Ok(response),
            });
        }
    }

    /// The protocol most members prefer among those all of them support (Kafka votes:
    /// each member votes for its most preferred candidate).
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|p| p.name.clone())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|p| p.name == *name))
            })
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(vote) = m.protocols.iter().find(|p| candidates.contains(&p.name)) {
                *votes.entry(vote.name.as_str()).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|c| {
                (
                    votes.get(c.as_str()).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|x| x == *c)),
                )
            })
            .cloned()
    }

    fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    subscription: m.subscription(&protocol),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|p| p.name == protocol)
                        .and_then(|p| p.metadata.clone()),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            generation: self.generation,
            protocol,
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }
}

mod member;
#[cfg(test)]
mod tests;
mod view;
