//! The deployment (issue 6): the docker-compose file, its network-namespace twin
//! (`rill-netns`), a leader partitioned away by the network (not killed), and a short run
//! of the chaos suite. The namespace tests need root and iproute2 (`.ci/run` installs
//! it); elsewhere they say so and pass without running.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use common::{wait_until, RILL};
use serde_json::Value;

const NETNS: &str = env!("CARGO_BIN_EXE_rill-netns");
const COMPOSE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/docker-compose.yml");

fn compose() -> anyhow::Result<serde_norway::Value> {
    let mut value: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(COMPOSE)?)?;
    value.apply_merge()?;
    Ok(value)
}

#[test]
fn the_compose_file_declares_three_nodes_configured_only_by_rill_variables() {
    let c = compose().unwrap_or_else(|e| panic!("{e:#}"));
    let services = c["services"].as_mapping().cloned().unwrap_or_default();
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(names, ["node1", "node2", "node3"]);
    for (i, name) in names.iter().enumerate() {
        let s = &c["services"][*name];
        assert_eq!(
            s["command"][0].as_str(),
            Some("node"),
            "{name} runs `rill node`"
        );
        let env = s["environment"].as_mapping().cloned().unwrap_or_default();
        let keys: Vec<&str> = env.keys().filter_map(|k| k.as_str()).collect();
        assert!(
            keys.iter().all(|k| k.starts_with("RILL_")),
            "{name}: {keys:?}"
        );
        for required in [
            "RILL_NODE_ID",
            "RILL_DATA_DIR",
            "RILL_LISTEN",
            "RILL_ADVERTISE",
            "RILL_VOTERS",
        ] {
            assert!(keys.contains(&required), "{name} lacks {required}");
        }
        assert_eq!(
            s["environment"]["RILL_NODE_ID"].as_str(),
            Some((i + 1).to_string().as_str())
        );
        let health = format!("{:?}", s["healthcheck"]["test"]);
        assert!(health.contains("/readyz"), "{name} healthcheck: {health}");
        assert!(
            s["restart"].as_str().is_some(),
            "{name} has a restart policy"
        );
        assert!(
            s["volumes"].as_sequence().is_some_and(|v| !v.is_empty()),
            "{name} has a volume"
        );
        assert!(
            s["ports"].as_sequence().is_some_and(|v| !v.is_empty()),
            "{name} publishes its port"
        );
        // The internal services refuse callers without the nodes' shared secret.
        assert_eq!(
            s["environment"]["RILL_CLUSTER_SECRET_FILE"].as_str(),
            Some("/run/secrets/cluster_secret"),
            "{name} reads the cluster secret"
        );
        assert_eq!(
            s["secrets"][0].as_str(),
            Some("cluster_secret"),
            "{name} mounts the cluster secret"
        );
    }
    assert_eq!(
        c["secrets"]["cluster_secret"]["file"].as_str(),
        Some("./cluster.secret")
    );
}

#[test]
fn the_secure_variant_runs_the_same_nodes_with_tls_sasl_and_each_its_own_certificate() {
    let run = || -> anyhow::Result<()> {
        // A copy beside certificates of its own, so nothing is written into deploy/.
        let dir = tempfile::tempdir()?;
        let secure = dir.path().join("docker-compose.secure.yml");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/deploy/docker-compose.secure.yml"
            ),
            &secure,
        )?;
        let tls = dir.path().join("tls");
        let made = Command::new(RILL)
            .args(["certs", "--nodes", "1,2,3", "--host", "node{id}", "--dir"])
            .arg(&tls)
            .output()?;
        ensure!(made.status.success(), "rill certs: {made:?}");
        let out = Command::new(NETNS)
            .arg("--compose")
            .arg(&secure)
            .args(["--rill", RILL, "plan"])
            .output()?;
        ensure!(out.status.success(), "plan: {out:?}");
        let plan: Vec<Value> = serde_json::from_slice(&out.stdout)?;
        let plain = compose()?;
        ensure!(plan.len() == 3, "{plan:?}");
        for (i, p) in plan.iter().enumerate() {
            let id = i + 1;
            let name = p["service"].as_str().unwrap_or_default();
            let env = &p["env"];
            let file = |name: &str| tls.join(name).display().to_string();
            ensure!(
                env["RILL_TLS_CA_FILE"] == file("ca.pem").as_str(),
                "{name}: {env}"
            );
            ensure!(
                env["RILL_TLS_CERT_FILE"] == file(&format!("node-{id}.pem")).as_str(),
                "{name}: {env}"
            );
            ensure!(
                env["RILL_TLS_KEY_FILE"] == file(&format!("node-{id}-key.pem")).as_str(),
                "{name}: {env}"
            );
            ensure!(env["RILL_SASL_ENABLED_MECHANISMS"].is_string(), "{name}");
            // The rest is the plain file's: the same node, listeners and command.
            for key in [
                "RILL_NODE_ID",
                "RILL_ADVERTISE",
                "RILL_VOTERS",
                "RILL_KAFKA_LISTENERS",
            ] {
                ensure!(
                    env[key].as_str() == plain["services"][name]["environment"][key].as_str(),
                    "{name} {key}"
                );
            }
        }
        Ok(())
    };
    run().unwrap_or_else(|e| panic!("{e:#}"));
}

/// The namespace tests run one at a time: each brings up three nodes.
static NETNS_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Root and `ip` are there (the namespace tests need both).
fn netns_available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && ip) {
        eprintln!("skipped: network namespaces need root and iproute2 (root: {root}, ip: {ip})");
    }
    root && ip
}

/// A twin with its own namespace prefix and state dir; `down` on drop, also on failure.
struct Twin {
    prefix: String,
    state: tempfile::TempDir,
}

impl Twin {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let twin = Self {
            prefix: prefix.to_string(),
            state: tempfile::tempdir()?,
        };
        let _ = twin.run(&["down"]);
        Ok(twin)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(NETNS)
            .args([
                "--compose",
                COMPOSE,
                "--rill",
                RILL,
                "--prefix",
                &self.prefix,
            ])
            .arg("--state")
            .arg(self.state.path())
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "rill-netns {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A `rill` client command in the client namespace.
    fn client(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Ok(Command::new("ip")
            .args(["netns", "exec", &format!("{}client", self.prefix), RILL])
            .args(args)
            .args(["--bootstrap", "node1:19291,node2:19291,node3:19291"])
            .stdin(Stdio::null())
            .output()?)
    }

    fn client_json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.client(&all)?;
        if !out.status.success() {
            bail!("rill {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn namespaces(&self) -> Vec<String> {
        let out = Command::new("ip").args(["netns", "list"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&self.prefix))
            .map(str::to_string)
            .collect()
    }

    fn logs(&self) {
        for n in 1..=3 {
            let log = std::fs::read_to_string(self.state.path().join(format!("node{n}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("---- node{n} (last 20 lines) ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.logs();
        }
        let _ = self.run(&["down"]);
    }
}

/// argv and environment of a running process, from /proc.
fn process_view(pid: u32) -> anyhow::Result<(Vec<String>, BTreeMap<String, String>)> {
    let split = |path: String| -> anyhow::Result<Vec<String>> {
        Ok(std::fs::read(&path)
            .with_context(|| path.clone())?
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    };
    let argv = split(format!("/proc/{pid}/cmdline"))?;
    let env = split(format!("/proc/{pid}/environ"))?
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    Ok((argv, env))
}

fn leader_of(twin: &Twin, topic: &str) -> anyhow::Result<Option<u64>> {
    let d = twin.client_json(&["topic", "describe", topic])?;
    Ok(d["partitions"][0]["leader"].as_u64())
}

#[test]
fn the_netns_twin_runs_the_compose_commands_and_a_partitioned_leader_is_fenced() {
    if !netns_available() {
        return;
    }
    let _serial = NETNS_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let twin = Twin::new("rilltest-").unwrap_or_else(|e| panic!("{e:#}"));
    if let Err(e) = twin_body(&twin) {
        panic!("{e:#}");
    }
    drop(twin);
    let left = Twin::new("rilltest-")
        .map(|t| t.namespaces())
        .unwrap_or_default();
    assert!(left.is_empty(), "down left namespaces behind: {left:?}");
}

fn twin_body(twin: &Twin) -> anyhow::Result<()> {
    // The plan is the compose file: argv = entrypoint + command, environment as declared
    // (a volume's container path mapped under the state dir, a secret's to its file).
    let plan: Vec<Value> = serde_json::from_str(&twin.run(&["plan"])?)?;
    let c = compose()?;
    assert_eq!(plan.len(), 3);
    for p in &plan {
        let name = p["service"].as_str().unwrap_or_default();
        let declared = &c["services"][name];
        let command: Vec<String> = declared["command"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let argv: Vec<String> = p["argv"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        assert_eq!(argv[1..], command[..], "{name}'s command");
        let env = declared["environment"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        assert_eq!(p["env"].as_object().map(|e| e.len()), Some(env.len()));
        for (k, v) in env {
            let (k, v) = (
                k.as_str().unwrap_or_default(),
                v.as_str().unwrap_or_default(),
            );
            let planned = p["env"][k].as_str().unwrap_or_default();
            let rewritten = v.strip_prefix("/var/lib/rill").is_some_and(|rest| {
                planned.ends_with(rest)
                    && planned.starts_with(twin.state.path().to_str().unwrap_or("?"))
            }) || (v == "/run/secrets/cluster_secret"
                && Path::new(planned)
                    == Path::new(COMPOSE)
                        .with_file_name("cluster.secret")
                        .as_path());
            assert!(
                planned == v || rewritten,
                "{name} {k}: declared {v}, planned {planned}"
            );
        }
    }

    twin.run(&["up"])?;
    // The running processes are exactly the plan.
    for p in &plan {
        let name = p["service"].as_str().unwrap_or_default();
        let pid: u32 = std::fs::read_to_string(twin.state.path().join(format!("{name}.pid")))?
            .trim()
            .parse()?;
        let planned_argv: Vec<String> = serde_json::from_value(p["argv"].clone())?;
        // `ip netns exec` execs the service: wait until that exec is done.
        let mut view = process_view(pid)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while view.0.first() != planned_argv.first() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            view = process_view(pid)?;
        }
        let (argv, env) = view;
        let planned_env: BTreeMap<String, String> = serde_json::from_value(p["env"].clone())?;
        assert_eq!(argv, planned_argv, "{name}'s argv");
        assert_eq!(env, planned_env, "{name}'s environment");
    }
    wait_until(Duration::from_secs(60), "three alive brokers", || {
        let d = twin.client_json(&["cluster", "describe"])?;
        Ok(d["brokers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["state"] == "alive")
            .count()
            == 3)
    })?;
    let out = twin.client(&[
        "topic",
        "create",
        "fenced",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ])?;
    if !out.status.success() {
        bail!("create: {}", String::from_utf8_lossy(&out.stderr));
    }
    let produce = |input: &str| -> anyhow::Result<bool> {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}client", twin.prefix),
                RILL,
                "produce",
                "fenced",
                "--acks",
                "all",
            ])
            .args(["--bootstrap", "node1:19291,node2:19291,node3:19291"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        use std::io::Write;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("stdin"))?
            .write_all(input.as_bytes())?;
        Ok(child.wait()?.success())
    };
    wait_until(
        Duration::from_secs(30),
        "a first acknowledged write",
        || produce("before\n"),
    )?;
    let old = leader_of(twin, "fenced")?.ok_or_else(|| anyhow!("offline"))?;

    // The network cuts the leader off (it keeps running). A write sent to it from its own
    // side is never acknowledged; the majority elects a new leader.
    twin.run(&["partition", &format!("node{old}")])?;
    let mut zombie = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}node{old}", twin.prefix),
            RILL,
            "produce",
            "fenced",
            "--acks",
            "all",
        ])
        .args(["--bootstrap", &format!("node{old}:19291")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    {
        use std::io::Write;
        zombie
            .stdin
            .take()
            .ok_or_else(|| anyhow!("stdin"))?
            .write_all(b"zombie\n")?;
    }
    wait_until(
        Duration::from_secs(20),
        "a leader on the majority side",
        || Ok(leader_of(twin, "fenced")?.is_some_and(|l| l != old)),
    )?;
    assert!(produce("during\n")?, "the majority side takes writes");
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && zombie.try_wait()?.is_none() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let acked = match zombie.try_wait()? {
        Some(status) => status.success(),
        None => {
            zombie.kill()?;
            zombie.wait()?;
            false
        }
    };
    assert!(
        !acked,
        "the partitioned leader acknowledged an acks=all write"
    );

    twin.run(&["heal"])?;
    wait_until(
        Duration::from_secs(30),
        "the old leader back in the ISR",
        || {
            let d = twin.client_json(&["topic", "describe", "fenced"])?;
            Ok(d["partitions"][0]["isr"].as_array().map_or(0, Vec::len) == 3)
        },
    )?;
    let mut values = String::new();
    wait_until(
        Duration::from_secs(20),
        "both acknowledged records readable",
        || {
            let out = twin.client(&[
                "consume",
                "fenced",
                "--from-beginning",
                "--timeout-ms",
                "2000",
            ])?;
            values = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(values.contains("before") && values.contains("during"))
        },
    )
    .map_err(|e| {
        anyhow!(
            "{e}: read {values:?}; {:?}",
            twin.client_json(&["topic", "describe", "fenced"])
        )
    })?;
    assert!(
        !values.contains("zombie"),
        "the partitioned leader's write is visible: {values}"
    );
    let r = twin.client_json(&["replicas", "fenced", "0"])?;
    let sums: Vec<&Value> = r["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| &x["checksum"])
        .collect();
    assert!(
        sums.windows(2).all(|w| w[0] == w[1]),
        "replicas differ: {r}"
    );
    Ok(())
}

/// Seed 8 starts with a leader partitioned away from the client (issue 7: the client is
/// cut off from the leader after sending; its retries must not duplicate anything).
#[test]
fn a_short_chaos_run_passes() {
    if !netns_available() {
        return;
    }
    let _serial = NETNS_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chaos/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["--duration-s", "45", "--seed", "8"])
        .env("RILL", RILL)
        .env("RILL_NETNS", NETNS)
        .env("RILL_NETNS_PREFIX", "rillci-")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running the chaos suite: {e}"));
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(
        out.status.success(),
        "the chaos run failed: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&report).unwrap_or_default();
    assert_eq!(report["lost"], 0);
    assert_eq!(
        report["duplicates"], 0,
        "the idempotent producer stores each record once"
    );
    assert!(report["faults_injected"].as_u64() > Some(0));
}
