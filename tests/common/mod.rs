//! A test harness that runs real `rill node` processes on loopback. Every process is
//! SIGKILLed when the harness drops, also when a test fails; node logs are printed then.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

pub const RILL: &str = env!("CARGO_BIN_EXE_rill");

/// A port for a node to listen on: below Linux's ephemeral range (32768 and up), so the
/// local port of an outgoing connection cannot take it between now and the node's bind,
/// and never the same twice in one test process (tests run in parallel).
pub fn free_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const COUNT: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        rand::random_range(0..COUNT) + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port in {FIRST}..{}", FIRST + COUNT)
}

pub struct NodeSpec {
    pub id: u64,
    pub grpc: String,
    /// The node's Kafka listener (every node is a Kafka broker).
    pub kafka: String,
    pub metrics: String,
    pub voters: String,
    pub extra_args: Vec<String>,
}

pub struct Cluster {
    dir: tempfile::TempDir,
    pub nodes: BTreeMap<u64, NodeSpec>,
    children: BTreeMap<u64, Child>,
    /// Nodes stopped with SIGSTOP: left out of the bootstrap list (a paused node accepts
    /// connections and then never answers).
    paused: std::collections::BTreeSet<u64>,
    starts: u32,
    /// TLS on every listener: the directory `rill certs` filled (CA, node-<id>, admin).
    tls: Option<PathBuf>,
}

impl Cluster {
    /// Starts `n` voters with ids 1..=n.
    pub fn start(n: u64) -> anyhow::Result<Self> {
        Self::start_with(n, &[])
    }

    pub fn start_with(n: u64, extra_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_inner(n, extra_args, false)
    }

    /// Starts `n` voters with TLS on every listener and between nodes (certificates from
    /// `rill certs`); the harness's own CLI calls present the `admin` certificate.
    pub fn start_tls(n: u64, extra_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_inner(n, extra_args, true)
    }

    fn start_inner(n: u64, extra_args: &[&str], tls: bool) -> anyhow::Result<Self> {
        let mut cluster = Self {
            dir: tempfile::tempdir()?,
            nodes: BTreeMap::new(),
            children: BTreeMap::new(),
            paused: Default::default(),
            starts: 0,
            tls: None,
        };
        if tls {
            let dir = cluster.dir.path().join("tls");
            let ids: Vec<String> = (1..=n + 2).map(|i| i.to_string()).collect();
            let out = Command::new(RILL)
                .args(["certs", "--nodes", &ids.join(","), "--dir"])
                .arg(&dir)
                .args(["--client", "admin", "--client", "alice"])
                .output()?;
            if !out.status.success() {
                bail!("rill certs: {}", String::from_utf8_lossy(&out.stderr));
            }
            cluster.tls = Some(dir);
        }
        // The nodes share a cluster secret (their internal services refuse others).
        std::fs::write(
            cluster.secret_path(),
            format!("test-secret-{:032x}\n", rand::random::<u128>()),
        )?;
        let mut specs = Vec::new();
        for id in 1..=n {
            specs.push((
                id,
                format!("127.0.0.1:{}", free_port()?),
                format!("127.0.0.1:{}", free_port()?),
            ));
        }
        let voters = specs
            .iter()
            .map(|(id, grpc, _)| format!("{id}={grpc}"))
            .collect::<Vec<_>>()
            .join(",");
        for (id, grpc, metrics) in specs {
            cluster.nodes.insert(
                id,
                NodeSpec {
                    id,
                    grpc,
                    kafka: format!("127.0.0.1:{}", free_port()?),
                    metrics,
                    voters: voters.clone(),
                    extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
                },
            );
        }
        for id in 1..=n {
            cluster.start_node(id)?;
        }
        Ok(cluster)
    }

    /// Adds a node that is not in the voters list (it joins as a learner).
    pub fn add_learner(&mut self, id: u64) -> anyhow::Result<()> {
        let voters = self
            .nodes
            .values()
            .next()
            .map(|n| n.voters.clone())
            .unwrap_or_default();
        self.nodes.insert(
            id,
            NodeSpec {
                id,
                grpc: format!("127.0.0.1:{}", free_port()?),
                kafka: format!("127.0.0.1:{}", free_port()?),
                metrics: format!("127.0.0.1:{}", free_port()?),
                voters,
                extra_args: Vec::new(),
            },
        );
        self.start_node(id)
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// The `cluster.secret.file` every node of this cluster is started with.
    pub fn secret_path(&self) -> PathBuf {
        self.dir.path().join("cluster.secret")
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    /// The values of `topic` (or one partition of it) read from the beginning with
    /// `rill consume`, in the order printed.
    pub fn consume_values(
        &self,
        topic: &str,
        partition: Option<u64>,
    ) -> anyhow::Result<Vec<String>> {
        let partition = partition.map(|p| p.to_string());
        let mut args = vec![
            "consume",
            topic,
            "--from-beginning",
            "--timeout-ms",
            "3000",
            "--json",
        ];
        if let Some(p) = &partition {
            args.extend(["--partition", p.as_str()]);
        }
        let out = self.rill(&args)?;
        if !out.status.success() {
            bail!("consume: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut values = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: Value = serde_json::from_str(line)?;
            values.push(v["value"].as_str().unwrap_or_default().to_string());
        }
        Ok(values)
    }

    /// Everything node `id` has logged so far (all its incarnations).
    pub fn node_log(&self, id: u64) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    pub fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        let spec = self.nodes.get(&id).ok_or_else(|| anyhow!("no node {id}"))?;
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))?;
        let child = Command::new(RILL)
            .arg("node")
            .args(["--node-id", &id.to_string()])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .args(["--listen", &spec.grpc, "--advertise", &spec.grpc])
            .args(["--voters", &spec.voters, "--metrics-listen", &spec.metrics])
            .arg("--cluster-secret-file")
            .arg(self.secret_path())
            .args(self.tls.iter().flat_map(|dir| {
                let file = |name: String| dir.join(name).display().to_string();
                [
                    "--tls-ca-file".to_string(),
                    file("ca.pem".into()),
                    "--tls-cert-file".into(),
                    file(format!("node-{id}.pem")),
                    "--tls-key-file".into(),
                    file(format!("node-{id}-key.pem")),
                ]
            }))
            .args(
                // A test that names its own Kafka listeners replaces the default one.
                (!spec.extra_args.iter().any(|a| a == "--kafka-listeners"))
                    .then_some(["--kafka-listeners", &spec.kafka])
                    .into_iter()
                    .flatten(),
            )
            .args(&spec.extra_args)
            .env("RILL_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        self.children.insert(id, child);
        Ok(())
    }

    /// SIGTERM one node and wait for its clean exit.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = child.wait();
        }
    }

    /// SIGKILL one node and reap it.
    /// SIGKILLs node `id`, leaves it down for `down`, starts it again and waits until
    /// the cluster is ready.
    pub fn restart(&mut self, id: u64, down: Duration) -> anyhow::Result<()> {
        self.kill(id);
        std::thread::sleep(down);
        self.start_node(id)?;
        self.wait_ready(Duration::from_secs(60))
    }

    pub fn kill(&mut self, id: u64) {
        self.paused.remove(&id);
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` to a running node (SIGSTOP / SIGCONT for pause tests).
    pub fn signal(&mut self, id: u64, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let child = self
            .children
            .get(&id)
            .ok_or_else(|| anyhow!("node {id} is not running"))?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, signal)?;
        match signal {
            nix::sys::signal::Signal::SIGSTOP => self.paused.insert(id),
            nix::sys::signal::Signal::SIGCONT => self.paused.remove(&id),
            _ => false,
        };
        Ok(())
    }

    /// Starts a CLI command in the background (stdout piped); it is killed on drop.
    pub fn spawn_rill(&self, args: &[&str]) -> anyhow::Result<Background> {
        let child = Command::new(RILL)
            .args(args)
            .args(["--bootstrap", &self.bootstrap()])
            .envs(self.client_tls_env("admin"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Background { child: Some(child) })
    }

    /// Starts a CLI command in the background with stdout appended to `out` (a
    /// long-running consumer would block on a full pipe); it is killed on drop.
    pub fn spawn_rill_to(
        &self,
        args: &[&str],
        out: &std::path::Path,
    ) -> anyhow::Result<Background> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)?;
        let errors = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out.with_extension("stderr"))?;
        let child = Command::new(RILL)
            .args(args)
            .args(["--bootstrap", &self.bootstrap()])
            .envs(self.client_tls_env("admin"))
            .env("RILL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(errors)
            .spawn()?;
        Ok(Background { child: Some(child) })
    }

    /// A scratch file path inside the cluster's temp dir.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `topic describe --json`.
    pub fn describe(&self, topic: &str) -> anyhow::Result<Value> {
        self.json(&["topic", "describe", topic])
    }

    /// The leader of one partition (`None` when offline).
    pub fn leader_of(&self, topic: &str, partition: u64) -> anyhow::Result<Option<u64>> {
        let d = self.describe(topic)?;
        let p = partitions(&d)
            .into_iter()
            .find(|p| p["partition"].as_u64() == Some(partition))
            .ok_or_else(|| anyhow!("{topic} has no partition {partition}"))?;
        Ok(p["leader"].as_u64())
    }

    /// Waits until every partition of `topic` has a leader and its full replica set in
    /// the ISR, then until `rill replicas` shows every replica at the same log end with
    /// equal checksums.
    pub fn wait_replicas_agree(&self, topic: &str, timeout: Duration) -> anyhow::Result<()> {
        wait_until(timeout, "full ISRs", || {
            let d = self.describe(topic)?;
            Ok(partitions(&d).iter().all(|p| {
                !p["leader"].is_null() && ids(&p["isr"]).len() == ids(&p["replicas"]).len()
            }))
        })?;
        let count = partitions(&self.describe(topic)?).len();
        for partition in 0..count {
            let p = partition.to_string();
            wait_until(timeout, "replicas that agree", || {
                let r = self.json(&["replicas", topic, &p])?;
                let replicas = r["replicas"].as_array().cloned().unwrap_or_default();
                let first = replicas.first().cloned().unwrap_or_default();
                let agree = replicas.iter().all(|x| {
                    x["checksum"] == first["checksum"]
                        && x["log_end_offset"] == first["log_end_offset"]
                        && x["checked_up_to"] == first["checked_up_to"]
                        && x["high_watermark"] == first["high_watermark"]
                        && x.get("error").is_none()
                });
                if agree {
                    Ok(true)
                } else {
                    bail!("{topic}-{partition} replicas differ: {r}")
                }
            })?;
        }
        Ok(())
    }

    pub fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    /// Bootstrap list of the nodes that are running (and not paused).
    pub fn bootstrap(&self) -> String {
        self.children
            .keys()
            .filter(|id| !self.paused.contains(id))
            .filter_map(|id| self.nodes.get(id).map(|n| n.grpc.clone()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The Kafka listeners of the running, unpaused nodes.
    pub fn kafka_bootstrap(&self) -> String {
        self.running()
            .iter()
            .filter(|id| !self.paused.contains(id))
            .filter_map(|id| self.nodes.get(id).map(|n| n.kafka.clone()))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node_addr(&self, id: u64) -> String {
        self.nodes
            .get(&id)
            .map(|n| n.grpc.clone())
            .unwrap_or_default()
    }

    /// Runs the CLI against the running nodes.
    pub fn rill(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.rill_at(&self.bootstrap(), args)
    }

    pub fn rill_at(&self, bootstrap: &str, args: &[&str]) -> anyhow::Result<Output> {
        Ok(Command::new(RILL)
            .args(args)
            .args(["--bootstrap", bootstrap])
            .envs(self.client_tls_env("admin"))
            .stdin(Stdio::null())
            .output()?)
    }

    /// The TLS files of a TLS cluster (`ca.pem`, `node-<id>.pem`, `admin.pem`, ...).
    pub fn tls_dir(&self) -> Option<&std::path::Path> {
        self.tls.as_deref()
    }

    /// The environment that makes the CLI connect over TLS as `client` (a certificate
    /// `rill certs` made), on a TLS cluster; nothing otherwise.
    pub fn client_tls_env(&self, client: &str) -> Vec<(String, String)> {
        let Some(dir) = &self.tls else {
            return Vec::new();
        };
        let file = |name: String| dir.join(name).display().to_string();
        vec![
            ("RILL_TLS_CA".into(), file("ca.pem".into())),
            ("RILL_TLS_CERT".into(), file(format!("{client}.pem"))),
            ("RILL_TLS_KEY".into(), file(format!("{client}-key.pem"))),
        ]
    }

    /// Runs the CLI with `input` on stdin.
    pub fn rill_with_input(&self, args: &[&str], input: &[u8]) -> anyhow::Result<Output> {
        self.rill_with_input_at(&self.bootstrap(), args, input)
    }

    pub fn rill_with_input_at(
        &self,
        bootstrap: &str,
        args: &[&str],
        input: &[u8],
    ) -> anyhow::Result<Output> {
        use std::io::Write;
        let mut child = Command::new(RILL)
            .args(args)
            .args(["--bootstrap", bootstrap])
            .envs(self.client_tls_env("admin"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output()?;
        writer
            .join()
            .map_err(|_| anyhow!("stdin writer panicked"))??;
        Ok(out)
    }

    /// Creates a topic through the CLI; fails the test on error.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        rf: u32,
        configs: &[&str],
    ) -> anyhow::Result<()> {
        let (p, r) = (partitions.to_string(), rf.to_string());
        let mut args = vec![
            "topic",
            "create",
            name,
            "--partitions",
            &p,
            "--replication-factor",
            &r,
        ];
        for c in configs {
            args.extend(["--config", c]);
        }
        let out = self.rill(&args)?;
        if !out.status.success() {
            bail!("creating {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Runs a CLI command with `--json` that must succeed, and parses its output.
    pub fn json_at(&self, bootstrap: &str, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.rill_at(bootstrap, &all)?;
        if !out.status.success() {
            bail!(
                "rill {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    pub fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        self.json_at(&self.bootstrap(), args)
    }

    /// The controller leader as the running nodes report it.
    pub fn controller_leader(&self) -> Option<u64> {
        let cluster = self.json(&["cluster", "describe"]).ok()?;
        cluster["controller"]["leader_id"].as_u64()
    }

    /// Waits until every running node is ready (`/readyz`) and every running node's
    /// broker is alive in the cluster description.
    pub fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        wait_until(timeout, "every node ready", || {
            let cluster = self.json(&["cluster", "describe"])?;
            let alive: Vec<u64> = cluster["brokers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b["state"] == "alive")
                .filter_map(|b| b["id"].as_u64())
                .collect();
            let not_alive: Vec<u64> = self
                .running()
                .into_iter()
                .filter(|id| !alive.contains(id))
                .collect();
            let not_ready: Vec<u64> = self
                .running()
                .into_iter()
                .filter(|id| !self.readyz(*id))
                .collect();
            if not_alive.is_empty() && not_ready.is_empty() {
                Ok(true)
            } else {
                bail!("brokers not alive: {not_alive:?}; nodes not ready: {not_ready:?}; cluster: {cluster}")
            }
        })
    }

    /// GET over HTTPS on a TLS cluster (with curl, trusting the cluster's CA).
    fn http_get(&self, addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let Some(dir) = &self.tls else {
            return http_get(addr, path);
        };
        let out = Command::new("curl")
            .args(["-s", "--max-time", "2", "--cacert"])
            .arg(dir.join("ca.pem"))
            .args(["-w", "\n%{http_code}"])
            .arg(format!("https://{addr}{path}"))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        Ok((status.trim().parse()?, body.to_string()))
    }

    pub fn readyz(&self, id: u64) -> bool {
        let Some(spec) = self.nodes.get(&id) else {
            return false;
        };
        self.http_get(&spec.metrics, "/readyz")
            .is_ok_and(|(status, _)| status == 200)
    }

    pub fn metrics(&self, id: u64) -> anyhow::Result<String> {
        let spec = self.nodes.get(&id).ok_or_else(|| anyhow!("no node {id}"))?;
        Ok(self.http_get(&spec.metrics, "/metrics")?.1)
    }

    /// The sum over every series of one metric on a node (0 when absent).
    pub fn metric(&self, id: u64, name: &str) -> anyhow::Result<f64> {
        let text = self.metrics(id)?;
        Ok(text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

/// A CLI process running in the background; SIGKILLed if still running on drop.
pub struct Background {
    child: Option<Child>,
}

impl Background {
    /// SIGKILLs the process (a crashed client) and reaps it.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit and returns its output.
    pub fn wait(mut self) -> anyhow::Result<Output> {
        let child = self.child.take().ok_or_else(|| anyhow!("already waited"))?;
        Ok(child.wait_with_output()?)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.children.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
        if std::thread::panicking() {
            // RILL_KEEP_FAILED=DIR keeps a failed cluster's data and logs there.
            if let Some(keep) = std::env::var_os("RILL_KEEP_FAILED") {
                let status = std::process::Command::new("cp")
                    .arg("-r")
                    .arg(self.dir.path())
                    .arg(&keep)
                    .status();
                eprintln!("---- cluster directory copied to {keep:?}: {status:?} ----");
            }
            let clients = std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "stderr"));
            for path in clients.collect::<Vec<_>>() {
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                eprintln!("---- client {} (last 15 lines) ----", path.display());
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
            for id in self.nodes.keys() {
                let log = std::fs::read_to_string(self.log_path(*id)).unwrap_or_default();
                // A panic's message is often far above the tail its consequences fill.
                let lines: Vec<&str> = log.lines().collect();
                for (at, _) in lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.contains("panicked at"))
                {
                    eprintln!("---- node {id} panic ----");
                    for line in lines.iter().skip(at).take(4) {
                        eprintln!("{line}");
                    }
                }
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- node {id} log (last 40 lines) ----");
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Runs a test body against a fresh cluster of `n` voters. An error panics while the
/// cluster is still up, so its node logs are printed.
pub fn with_cluster(
    n: u64,
    extra_args: &[&str],
    body: impl FnOnce(&mut Cluster) -> anyhow::Result<()>,
) {
    run_on(Cluster::start_with(n, extra_args), body);
}

/// `with_cluster` with TLS on every listener and between nodes (`Cluster::start_tls`).
pub fn with_tls_cluster(
    n: u64,
    extra_args: &[&str],
    body: impl FnOnce(&mut Cluster) -> anyhow::Result<()>,
) {
    run_on(Cluster::start_tls(n, extra_args), body);
}

fn run_on(started: anyhow::Result<Cluster>, body: impl FnOnce(&mut Cluster) -> anyhow::Result<()>) {
    let mut cluster = match started {
        Ok(c) => c,
        Err(e) => panic!("cannot start the cluster: {e:#}"),
    };
    if let Err(e) = body(&mut cluster) {
        panic!("{e:#}");
    }
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match check() {
            Ok(true) => return Ok(()),
            Ok(false) => last = "condition false".into(),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.0 GET, enough for /readyz and /metrics.
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP response"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Partitions of a `topic describe --json` document.
pub fn partitions(topic: &Value) -> Vec<Value> {
    topic["partitions"].as_array().cloned().unwrap_or_default()
}

pub fn ids(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect()
}

/// Parses `rill verify`'s verdict and fails with it unless it is clean.
pub fn assert_verified(out: &std::process::Output) -> anyhow::Result<Value> {
    let verdict: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow!(
            "verify printed no verdict ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let empty = |k: &str| verdict[k].as_array().is_some_and(Vec::is_empty);
    if verdict["ok"] != true
        || !empty("lost")
        || !empty("inconsistent_offsets")
        || !empty("nonmonotonic")
    {
        bail!("verify failed: {verdict}");
    }
    if verdict["acked"].as_u64().unwrap_or(0) == 0 {
        bail!("verify acknowledged nothing: {verdict}");
    }
    Ok(verdict)
}
