//! Moving replicas: `rill topic reassign`, `rill cluster rebalance`, `rill broker
//! decommission`, and waiting for the moves to finish.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use rill_client::{
    AdminClient, PartitionReassignment, PlannedMoves, ReassignmentOutcome, ReassignmentPlan,
};
use rill_common::ErrorCode;
use serde_json::json;

use super::ClientArgs;

/// Reads a plan file (kafka-reassign-partitions' JSON); every entry must be of `topic`.
pub fn read_plan(path: &Path, topic: &str) -> anyhow::Result<Vec<PartitionReassignment>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: reading {}", ErrorCode::InvalidRequest, path.display()))?;
    let plan: ReassignmentPlan = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: {} is not a plan like {{\"version\":1,\"partitions\":[{{\"topic\":\"{topic}\",\
             \"partition\":0,\"replicas\":[1,2,3]}}]}}",
            ErrorCode::InvalidRequest,
            path.display()
        )
    })?;
    if plan.version != 1 {
        bail!(
            "{}: plan version {} (1 expected)",
            ErrorCode::InvalidRequest,
            plan.version
        );
    }
    if let Some(other) = plan.partitions.iter().find(|p| p.topic != topic) {
        bail!(
            "{}: the plan names topic {:?}, not {topic:?}",
            ErrorCode::InvalidRequest,
            other.topic
        );
    }
    Ok(plan.partitions)
}

/// Prints each outcome; fails if any move was refused.
pub fn report(
    out: &ClientArgs,
    value: &impl serde::Serialize,
    outcomes: &[ReassignmentOutcome],
) -> anyhow::Result<()> {
    out.print(value, || {
        outcomes
            .iter()
            .map(|o| match &o.error_code {
                None => format!("{}-{}: started", o.topic, o.partition),
                Some(code) => format!(
                    "{}-{}: {code}: {}",
                    o.topic,
                    o.partition,
                    o.error_message.clone().unwrap_or_default()
                ),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    if let Some(refused) = outcomes.iter().find(|o| o.error_code.is_some()) {
        bail!(
            "{}: {}-{}: {}",
            refused.error_code.clone().unwrap_or_default(),
            refused.topic,
            refused.partition,
            refused.error_message.clone().unwrap_or_default()
        );
    }
    Ok(())
}

/// Prints a rebalance's or decommission's plan (in the plan file format) and outcomes.
pub fn report_planned(
    out: &ClientArgs,
    moves: &PlannedMoves,
    executed: bool,
) -> anyhow::Result<()> {
    if !executed || moves.plan.partitions.is_empty() {
        return out.print(moves, || {
            if moves.plan.partitions.is_empty() {
                "Nothing to move.".to_string()
            } else {
                let plan = serde_json::to_string_pretty(&moves.plan).unwrap_or_default();
                format!("Proposed moves (apply with --execute):\n{plan}")
            }
        });
    }
    report(out, moves, &moves.results)
}

/// Waits until none of `partitions` is being reassigned, printing progress to stderr.
pub async fn wait_for(
    admin: &AdminClient,
    partitions: &[(String, u32)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let wanted: BTreeSet<&(String, u32)> = partitions.iter().collect();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let moving: Vec<_> = admin
            .list_reassignments(&[])
            .await?
            .into_iter()
            .filter(|r| wanted.contains(&(r.topic.clone(), r.partition)))
            .collect();
        if moving.is_empty() {
            eprintln!("all {} move(s) done", wanted.len());
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{}: {} of {} move(s) still in progress after {timeout:?}",
                ErrorCode::RequestTimedOut,
                moving.len(),
                wanted.len()
            );
        }
        eprintln!("{} of {} move(s) in progress", moving.len(), wanted.len());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The partitions of the moves that were started.
pub fn started(outcomes: &[ReassignmentOutcome]) -> Vec<(String, u32)> {
    outcomes
        .iter()
        .filter(|o| o.error_code.is_none())
        .map(|o| (o.topic.clone(), o.partition))
        .collect()
}

/// `rill topic reassign NAME (--plan FILE [--cancel] | --status)`.
pub async fn topic_reassign(
    out: &ClientArgs,
    topic: &str,
    plan: Option<&Path>,
    cancel: bool,
    wait: Option<Duration>,
) -> anyhow::Result<()> {
    let admin = out.admin()?;
    let Some(plan) = plan else {
        let status = admin.list_reassignments(&[topic.to_string()]).await?;
        return out.print(&json!({ "reassignments": status }), || {
            if status.is_empty() {
                return format!("No reassignment of {topic} in progress.");
            }
            status
                .iter()
                .map(|r| {
                    format!(
                        "{}-{}\treplicas {:?}\tadding {:?}\tremoving {:?}\tisr {:?}\tleader {}",
                        r.topic,
                        r.partition,
                        r.replicas,
                        r.adding_replicas,
                        r.removing_replicas,
                        r.isr,
                        r.leader.map_or("none".into(), |l| l.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
    };
    let partitions = read_plan(plan, topic)?;
    let outcomes = admin.alter_reassignments(&partitions, cancel).await?;
    report(out, &json!({ "results": outcomes }), &outcomes)?;
    if let Some(timeout) = wait {
        wait_for(&admin, &started(&outcomes), timeout).await?;
    }
    Ok(())
}
