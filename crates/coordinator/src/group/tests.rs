//! The group state machine driven by events and a fake clock.

use super::*;
use crate::types::{Assignment, Subscription};

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn config() -> GroupConfig {
    GroupConfig {
        min_session_timeout: Duration::from_secs(1),
        max_session_timeout: Duration::from_secs(60),
        initial_rebalance_delay: Duration::ZERO,
    }
}

fn protocols(names: &[&str], topics: &[&str]) -> Vec<Protocol> {
    names
        .iter()
        .map(|n| Protocol {
            metadata: None,
            name: n.to_string(),
            subscription: Subscription {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            },
        })
        .collect()
}

fn join_req(member_id: &str, new_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        new_member_id: new_id.to_string(),
        group_instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols(&["range"], &["t"]),
        require_known_member_id: false,
    }
}

fn joins(out: &[Output]) -> BTreeMap<String, Result<JoinResponse, ErrorCode>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Join { member_id, result } => Some((member_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

fn syncs(out: &[Output]) -> BTreeMap<String, Result<Assignment, ErrorCode>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Sync { member_id, result } => {
                Some((member_id.clone(), result.clone().map(|a| a.partitions)))
            }
            _ => None,
        })
        .collect()
}

fn assignment(partitions: &[u32]) -> Assignment {
    BTreeMap::from([("t".to_string(), partitions.to_vec())])
}

/// A Stable group of members a (leader) and b at generation 1 (a: [0], b: [1]).
fn stable_group(t0: Instant) -> Group {
    let mut g = Group::new("g");
    let out = g.join(t0, &config(), join_req("", "a", None));
    assert!(
        joins(&out).contains_key("a"),
        "a sole member completes at once"
    );
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let out = g.sync(t0, sync_req("a", 1, &[("a", &[0, 1])]));
    assert_eq!(g.state(), GroupState::Stable);
    assert!(out.contains(&Output::Persist));
    // b joins: rebalance; a must rejoin before anyone gets an answer.
    let out = g.join(t0, &config(), join_req("", "b", None));
    assert!(joins(&out).is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(t0, "a", None, 1),
        Err(ErrorCode::RebalanceInProgress)
    );
    let out = g.join(t0, &config(), join_req("a", "", None));
    let answered = joins(&out);
    assert_eq!(answered.len(), 2);
    let leader_view = answered["a"].clone().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (leader_view.generation, leader_view.leader.as_str()),
        (2, "a")
    );
    assert_eq!(leader_view.members.len(), 2, "the leader sees every member");
    let follower_view = answered["b"].clone().unwrap_or_else(|e| panic!("{e}"));
    assert!(follower_view.members.is_empty());
    assert!(
        g.sync(t0, sync_req("b", 2, &[])).is_empty(),
        "b waits for the leader"
    );
    let out = g.sync(t0, sync_req("a", 2, &[("a", &[0]), ("b", &[1])]));
    let synced = syncs(&out);
    assert_eq!(synced["a"], Ok(assignment(&[0])));
    assert_eq!(synced["b"], Ok(assignment(&[1])));
    assert_eq!(g.state(), GroupState::Stable);
    g
}

fn sync_req(member: &str, generation: i32, assignments: &[(&str, &[u32])]) -> SyncRequest {
    SyncRequest {
        member_id: member.to_string(),
        group_instance_id: None,
        generation,
        assignments: assignments
            .iter()
            .map(|(m, ps)| (m.to_string(), assignment(ps)))
            .collect(),
        assignment_bytes: BTreeMap::new(),
    }
}

#[test]
fn joins_and_syncs_reach_a_stable_generation() {
    let g = stable_group(Instant::now());
    assert_eq!(g.generation(), 2);
    assert_eq!(g.assignment_of("b"), Some(&assignment(&[1])));
}

#[test]
fn a_silent_member_expires_and_the_rest_rebalance() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    let t1 = t0 + Duration::from_secs(6);
    assert_eq!(g.heartbeat(t1, "a", None, 2), Ok(()));
    assert!(g.tick(t1).is_empty());
    let t2 = t0 + SESSION + Duration::from_secs(1);
    g.tick(t2);
    assert_eq!(g.member_ids(), BTreeSet::from(["a".to_string()]));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let out = g.join(t2, &config(), join_req("a", "", None));
    assert_eq!(joins(&out)["a"].as_ref().map(|r| r.generation), Ok(3));
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    g.join(t0, &config(), join_req("", "c", None));
    g.join(t0, &config(), join_req("a", "", None));
    assert_eq!(
        g.state(),
        GroupState::PreparingRebalance,
        "b has not rejoined"
    );
    let out = g.tick(t0 + REBALANCE);
    let answered = joins(&out);
    assert_eq!(answered.len(), 2);
    assert_eq!(g.member_ids().len(), 2);
    assert!(!g.member_ids().contains("b"));
}

#[test]
fn leaving_rebalances_and_the_last_leave_empties_the_group() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    let out = g.leave(t0, "b", None).unwrap_or_default();
    assert!(out.is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let out = g.leave(t0, "a", None).unwrap_or_default();
    assert!(out.contains(&Output::Persist));
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.leave(t0, "a", None), Err(ErrorCode::UnknownMemberId));
    assert_eq!(g.delete(), Ok(()));
    assert_eq!(g.state(), GroupState::Dead);
}

#[test]
fn stale_generations_and_unknown_members_are_refused() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    assert_eq!(g.check_commit("a", None, 2), Ok(()));
    assert_eq!(
        g.check_commit("a", None, 1),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        g.check_commit("zz", None, 2),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        g.check_commit("", None, -1),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        g.heartbeat(t0, "a", None, 1),
        Err(ErrorCode::IllegalGeneration)
    );
    let out = g.sync(t0, sync_req("b", 1, &[]));
    assert_eq!(syncs(&out)["b"], Err(ErrorCode::IllegalGeneration));
    let before = g.describe();
    let out = g.join(t0, &config(), join_req("zz", "", None));
    assert_eq!(
        joins(&out)["zz"].clone().err(),
        Some(ErrorCode::UnknownMemberId)
    );
    assert_eq!(g.describe(), before, "nothing changed");
}

#[test]
fn session_timeouts_outside_the_bounds_are_refused() {
    let mut g = Group::new("g");
    let mut req = join_req("", "a", None);
    req.session_timeout = Duration::from_millis(10);
    let out = g.join(Instant::now(), &config(), req);
    assert_eq!(
        joins(&out)["a"].clone().err(),
        Some(ErrorCode::InvalidSessionTimeout)
    );
    assert_eq!(g.state(), GroupState::Empty);
}

#[test]
fn a_bad_assignment_is_refused_and_the_group_waits_for_a_good_one() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    g.join(t0, &config(), join_req("", "c", None));
    g.join(t0, &config(), join_req("a", "", None));
    g.join(t0, &config(), join_req("b", "", None));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let generation = g.generation();
    let twice = sync_req("a", generation, &[("a", &[0]), ("b", &[0])]);
    assert_eq!(
        syncs(&g.sync(t0, twice))["a"],
        Err(ErrorCode::InvalidAssignment)
    );
    let stranger = sync_req("a", generation, &[("a", &[0]), ("x", &[1])]);
    assert_eq!(
        syncs(&g.sync(t0, stranger))["a"],
        Err(ErrorCode::InvalidAssignment)
    );
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let good = sync_req("a", generation, &[("a", &[0]), ("b", &[1]), ("c", &[])]);
    assert!(syncs(&g.sync(t0, good))["a"].is_ok());
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn a_static_member_restarting_within_its_session_keeps_its_assignment() {
    let t0 = Instant::now();
    let mut g = Group::new("g");
    g.join(t0, &config(), join_req("", "a1", Some("app-a")));
    g.sync(t0, sync_req("a1", 1, &[("a1", &[0, 1])]));
    assert_eq!(g.state(), GroupState::Stable);
    // The process restarts: a new member id, the same instance id, no LeaveGroup, and
    // (unlike its last incarnation) no owned partitions in its subscription.
    let t1 = t0 + Duration::from_secs(5);
    let mut restarted = join_req("", "a2", Some("app-a"));
    restarted.protocols[0].subscription.generation = -1;
    let out = g.join(t1, &config(), restarted);
    let answer = joins(&out)["a2"].clone().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.generation, 1, "no rebalance");
    assert_eq!(g.state(), GroupState::Stable);
    let out = g.sync(t1, sync_req("a2", 1, &[]));
    assert_eq!(syncs(&out)["a2"], Ok(assignment(&[0, 1])));
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(t1, "a1", Some("app-a"), 1),
        Err(ErrorCode::FencedInstanceId)
    );
}

#[test]
fn a_subscription_change_or_new_partitions_trigger_a_rebalance() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    let mut req = join_req("b", "", None);
    req.protocols = protocols(&["range"], &["t", "u"]);
    g.join(t0, &config(), req);
    assert_eq!(g.state(), GroupState::PreparingRebalance);

    let mut g = stable_group(t0);
    g.topics_changed(t0, &BTreeSet::from(["other".to_string()]));
    assert_eq!(g.state(), GroupState::Stable);
    g.topics_changed(t0, &BTreeSet::from(["t".to_string()]));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn the_protocol_is_one_every_member_supports() {
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let mut a = join_req("", "a", None);
    a.protocols = protocols(&["cooperative-sticky", "range"], &["t"]);
    g.join(t0, &config(), a);
    g.sync(t0, sync_req("a", 1, &[("a", &[0])]));
    let mut b = join_req("", "b", None);
    b.protocols = protocols(&["range"], &["t"]);
    g.join(t0, &config(), b);
    let mut a = join_req("a", "", None);
    a.protocols = protocols(&["cooperative-sticky", "range"], &["t"]);
    let out = g.join(t0, &config(), a);
    assert_eq!(
        joins(&out)["a"].as_ref().map(|r| r.protocol.clone()),
        Ok("range".into())
    );
    let mut c = join_req("", "c", None);
    c.protocols = protocols(&["roundrobin"], &["t"]);
    let out = g.join(t0, &config(), c);
    assert_eq!(
        joins(&out)["c"].clone().err(),
        Some(ErrorCode::InconsistentGroupProtocol)
    );
}

#[test]
fn a_restored_group_keeps_its_generation_and_members() {
    let t0 = Instant::now();
    let g = stable_group(t0);
    let restored = Group::restore(&g.describe(), t0 + Duration::from_secs(100));
    assert_eq!(restored.describe(), g.describe());
    // Deadlines restart: nobody expires right after a failover.
    let mut restored = restored;
    assert!(restored.tick(t0 + Duration::from_secs(101)).is_empty());
}

#[test]
fn the_current_generation_may_commit_until_the_next_one_forms() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    g.join(t0, &config(), join_req("", "c", None));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.check_commit("a", None, 2),
        Ok(()),
        "a still owns its partitions"
    );
    g.join(t0, &config(), join_req("a", "", None));
    g.join(t0, &config(), join_req("b", "", None));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(
        g.check_commit("a", None, 3),
        Err(ErrorCode::RebalanceInProgress),
        "no commits until the new assignment is known"
    );
}

#[test]
fn a_new_kafka_member_is_told_its_id_first_and_joins_with_it() {
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let mut first = join_req("", "m-1", None);
    first.require_known_member_id = true;
    let out = g.join(t0, &config(), first.clone());
    assert_eq!(
        joins(&out).get("m-1"),
        Some(&Err(ErrorCode::MemberIdRequired))
    );
    assert_eq!(g.state(), GroupState::Empty, "nobody joined yet");
    // It comes back with the id it was given and becomes the (only) member.
    let mut again = join_req("m-1", "m-2", None);
    again.require_known_member_id = true;
    let out = g.join(t0, &config(), again);
    let answer = joins(&out).get("m-1").cloned().expect("answered");
    assert_eq!(
        answer.map(|r| (r.member_id, r.generation)),
        Ok(("m-1".to_string(), 1))
    );
    // An id nobody was given is still unknown; a pending id that never returns expires.
    let out = g.join(t0, &config(), join_req("made-up", "", None));
    assert_eq!(
        joins(&out).get("made-up"),
        Some(&Err(ErrorCode::UnknownMemberId))
    );
    let out = g.join(t0, &config(), {
        let mut r = join_req("", "m-3", None);
        r.require_known_member_id = true;
        r
    });
    assert_eq!(
        joins(&out).get("m-3"),
        Some(&Err(ErrorCode::MemberIdRequired))
    );
    g.tick(t0 + SESSION + Duration::from_millis(1));
    let out = g.join(t0 + SESSION * 2, &config(), join_req("m-3", "", None));
    assert_eq!(
        joins(&out).get("m-3"),
        Some(&Err(ErrorCode::UnknownMemberId))
    );
}

#[test]
fn a_static_kafka_member_needs_no_id_round_trip() {
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let mut r = join_req("", "s-1", Some("instance-1"));
    r.require_known_member_id = true;
    let out = g.join(t0, &config(), r);
    assert!(joins(&out).get("s-1").is_some_and(|r| r.is_ok()), "{out:?}");
}

#[test]
fn kafka_protocol_bytes_are_relayed_as_they_came() {
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let mut r = join_req("", "a", None);
    r.protocols[0].metadata = Some(b"a's subscription bytes".to_vec());
    let out = g.join(t0, &config(), r);
    let leader_view = joins(&out)["a"].clone().expect("a leads");
    assert_eq!(
        leader_view.members[0].metadata.as_deref(),
        Some(&b"a's subscription bytes"[..])
    );
    let mut sync = sync_req("a", 1, &[("a", &[0])]);
    sync.assignment_bytes
        .insert("a".into(), b"a's assignment bytes".to_vec());
    let out = g.sync(t0, sync);
    let got = out.iter().find_map(|o| match o {
        Output::Sync { result: Ok(a), .. } => Some(a.clone()),
        _ => None,
    });
    assert_eq!(
        got.and_then(|a| a.bytes),
        Some(b"a's assignment bytes".to_vec())
    );
    // Persisted with the group, so a new coordinator relays them too.
    let restored = Group::restore(&g.describe(), t0);
    assert_eq!(
        restored.describe().members[0].assignment_bytes.as_deref(),
        Some(&b"a's assignment bytes"[..])
    );
}

#[test]
fn a_completed_rebalance_reports_its_latency_and_the_partitions_that_moved() {
    let t0 = Instant::now();
    let mut g = Group::new("g");
    g.join(t0, &config(), join_req("", "a", None));
    let out = g.sync(
        t0 + Duration::from_millis(40),
        sync_req("a", 1, &[("a", &[0, 1])]),
    );
    assert!(out.contains(&Output::Rebalanced {
        latency: Duration::from_millis(40),
        partitions_moved: 2,
    }));
    // b joins; a rejoins; a keeps 0, 1 moves to b.
    let t1 = t0 + Duration::from_secs(1);
    g.join(t1, &config(), join_req("", "b", None));
    g.join(t1, &config(), join_req("a", "", None));
    let out = g.sync(
        t1 + Duration::from_millis(25),
        sync_req("a", 2, &[("a", &[0]), ("b", &[1])]),
    );
    assert!(
        out.contains(&Output::Rebalanced {
            latency: Duration::from_millis(25),
            partitions_moved: 1,
        }),
        "{out:?}"
    );
}

#[test]
fn offsets_of_topics_members_consume_cannot_be_deleted_and_an_empty_group_can_go() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    assert_eq!(g.topics_in_use(), Some(BTreeSet::from(["t".to_string()])));
    assert_eq!(g.delete(), Err(ErrorCode::NonEmptyGroup));
    for member in ["a", "b"] {
        assert!(g.leave(t0, member, None).is_ok());
    }
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.topics_in_use(), Some(BTreeSet::new()));
    assert_eq!(g.delete(), Ok(()));
    assert_eq!(g.state(), GroupState::Dead);
}

#[test]
fn a_group_outside_the_consumer_protocol_keeps_its_offsets_while_it_has_members() {
    let mut g = Group::new("connect");
    let mut req = join_req("", "w1", None);
    req.protocol_type = "connect".into();
    let _ = g.join(Instant::now(), &config(), req);
    assert_eq!(g.topics_in_use(), None);
}

#[test]
fn an_empty_groups_first_rebalance_waits_for_members_starting_together() {
    let delayed = GroupConfig {
        initial_rebalance_delay: Duration::from_secs(3),
        ..config()
    };
    let t0 = Instant::now();
    let mut g = Group::new("g");
    assert!(joins(&g.join(t0, &delayed, join_req("", "a", None))).is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    // b arrives 100 ms later: the wait is renewed from b's arrival.
    let t1 = t0 + Duration::from_millis(100);
    assert!(joins(&g.join(t1, &delayed, join_req("", "b", None))).is_empty());
    assert!(joins(&g.tick(t0 + Duration::from_secs(3))).is_empty());
    let out = g.tick(t1 + Duration::from_secs(3));
    let answered = joins(&out);
    assert_eq!(answered.len(), 2, "one generation holds both: {out:?}");
    assert!(answered
        .values()
        .all(|r| r.as_ref().is_ok_and(|j| j.generation == 1)));
    assert_eq!(g.state(), GroupState::CompletingRebalance);

    // Newcomers every 2 s renew the wait, but never past the rebalance timeout (30 s).
    let mut g = Group::new("g");
    g.join(t0, &delayed, join_req("", "m0", None));
    for i in 1..15u64 {
        let t = t0 + Duration::from_secs(2 * i);
        assert!(joins(&g.join(t, &delayed, join_req("", &format!("m{i}"), None))).is_empty());
        assert!(joins(&g.tick(t + Duration::from_millis(1900))).is_empty());
    }
    assert_eq!(joins(&g.tick(t0 + REBALANCE)).len(), 15);

    // A rebalance of a group that is not empty does not wait.
    let mut g = stable_group(t0);
    let out = g.join(t0, &delayed, join_req("", "c", None));
    assert!(joins(&out).is_empty());
    let out = g.join(t0, &delayed, join_req("a", "", None));
    assert!(joins(&out).is_empty(), "b has not rejoined yet");
    let out = g.join(t0, &delayed, join_req("b", "", None));
    assert_eq!(joins(&out).len(), 3, "completes as soon as all rejoined");
}
