//! Long-running confluent-kafka group members (`ck_member.py`) and a watcher that polls
//! `rill group describe`, with the checks over what it saw.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::Value;

use crate::common::{self, wait_until, Cluster};
use crate::{python, KillOnDrop, CLIENTS_DIR};

/// One `ck_member.py` process and the log it appends to.
pub(super) struct Member {
    pub(super) process: KillOnDrop,
    pub(super) log: PathBuf,
}

pub(super) struct MemberSpec<'a> {
    pub(super) topic: &'a str,
    pub(super) group: &'a str,
    pub(super) strategy: &'a str,
    pub(super) session_ms: u32,
}

impl MemberSpec<'_> {
    /// Starts member `name` (its client id); a restarted member gets a log of its own.
    pub(super) fn spawn(
        &self,
        c: &Cluster,
        name: &str,
        instance: Option<&str>,
    ) -> anyhow::Result<Member> {
        let log = (0..)
            .map(|n| c.scratch(&format!("{}-{name}-{n}.jsonl", self.group)))
            .find(|path| !path.exists())
            .ok_or_else(|| anyhow!("no log name left"))?;
        let mut command = Command::new(python()?);
        command
            .arg(format!("{CLIENTS_DIR}/ck_member.py"))
            .args([&c.kafka_bootstrap(), self.topic, self.group, name])
            .arg(&log)
            .args([self.strategy, &self.session_ms.to_string()])
            .args(instance)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Ok(Member {
            process: KillOnDrop(command.spawn()?),
            log,
        })
    }
}

impl Member {
    pub(super) fn events(&self) -> Vec<Value> {
        read_events(&self.log)
    }

    /// Asks the member to leave cleanly (SIGTERM: it closes its consumer).
    pub(super) fn stop(mut self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.process.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.process.0.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("a member did not close within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

pub(super) fn read_events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `rill group describe` polled every 200 ms on another thread, through any node.
pub(super) struct Watcher {
    snapshots: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub(super) fn start(bootstrap: String, group: &str) -> Self {
        let snapshots = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (into, stopped, group) = (snapshots.clone(), stop.clone(), group.to_string());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let out = Command::new(common::RILL)
                    .args([
                        "group",
                        "describe",
                        &group,
                        "--json",
                        "--bootstrap",
                        &bootstrap,
                    ])
                    .stdin(Stdio::null())
                    .output();
                if let Ok(out) = out {
                    if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
                        into.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Self {
            snapshots,
            stop,
            thread: Some(thread),
        }
    }

    pub(super) fn latest(&self) -> Option<Value> {
        self.snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }

    /// Waits for a Stable group of `members` (by client id) that owns every partition of
    /// a `partitions`-partition topic.
    pub(super) fn wait_stable(
        &self,
        members: &[&str],
        partitions: u32,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let want: BTreeSet<String> = members.iter().map(|m| m.to_string()).collect();
        let mut found = None;
        wait_until(timeout, &format!("a stable group of {members:?}"), || {
            let Some(g) = self.latest() else {
                return Ok(false);
            };
            let clients: BTreeSet<String> = member_list(&g)
                .iter()
                .filter_map(|m| m["client_id"].as_str().map(str::to_string))
                .collect();
            let owned: usize = owners(&g).len();
            let stable = g["state"] == "Stable" && clients == want && owned == partitions as usize;
            if stable {
                found = Some(g);
            }
            Ok(stable)
        })?;
        found.ok_or_else(|| anyhow!("no snapshot"))
    }

    pub(super) fn stop(mut self) -> Vec<Value> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.snapshots.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub(super) fn member_list(group: &Value) -> Vec<Value> {
    group["members"].as_array().cloned().unwrap_or_default()
}

/// Partition -> the client ids owning it in a group description (more than one is a bug).
pub(super) fn owners(group: &Value) -> BTreeMap<u64, Vec<String>> {
    let mut owners: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for m in member_list(group) {
        let client = m["client_id"].as_str().unwrap_or_default().to_string();
        for a in m["assignment"].as_array().into_iter().flatten() {
            for p in a["partitions"].as_array().into_iter().flatten() {
                if let Some(p) = p.as_u64() {
                    owners.entry(p).or_default().push(client.clone());
                }
            }
        }
    }
    owners
}

pub(super) fn partitions_of(group: &Value, client: &str) -> BTreeSet<u64> {
    owners(group)
        .into_iter()
        .filter(|(_, o)| o.iter().any(|c| c == client))
        .map(|(p, _)| p)
        .collect()
}

/// Within a generation no partition has two owners and the assignment does not change;
/// committed offsets never go backwards.
pub(super) fn check_snapshots(snapshots: &[Value]) {
    let mut by_generation: BTreeMap<i64, BTreeMap<u64, Vec<String>>> = BTreeMap::new();
    let mut committed: BTreeMap<u64, i64> = BTreeMap::new();
    for g in snapshots {
        if g["state"] == "Stable" {
            let owners = owners(g);
            for (p, o) in &owners {
                assert_eq!(o.len(), 1, "partition {p} has owners {o:?}: {g}");
            }
            let generation = g["generation"].as_i64().unwrap_or(-1);
            let first = by_generation
                .entry(generation)
                .or_insert_with(|| owners.clone());
            assert_eq!(
                *first, owners,
                "generation {generation} changed its assignment"
            );
        }
        for o in g["offsets"].as_array().into_iter().flatten() {
            let (Some(p), Some(offset)) = (o["partition"].as_u64(), o["committed"].as_i64()) else {
                continue;
            };
            let before = committed.insert(p, offset).unwrap_or(-1);
            assert!(
                offset >= before,
                "partition {p}: committed {before} then {offset}"
            );
        }
    }
}
