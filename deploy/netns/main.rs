//! `rill-netns`: the docker-compose cluster's twin in Linux network namespaces (root and
//! iproute2 needed, no Docker). It reads `deploy/docker-compose.yml` and runs every
//! service's command with exactly its environment in its own namespace: a veth pair to a
//! bridge in a hub namespace (nothing is added to the host's own network), the service
//! names resolvable through `/etc/netns/<ns>/hosts`, a volume's container path mapped to
//! a directory under the state dir, a secret's `/run/secrets/<name>` mapped to its file
//! (made by `up` when missing, as `rill dev` makes its cluster secret). A `client`
//! namespace on the same bridge runs tools.
//!
//! ```text
//! rill-netns [--compose FILE] [--state DIR] [--rill BIN] plan|up|down|status
//! rill-netns kill|start|pause|resume NODE
//! rill-netns partition NODE...    # these nodes reach only each other
//! rill-netns heal
//! rill-netns exec NS -- CMD...    # NS: a service name or `client`
//! ```
//! Everything it creates is named with its prefix (`rillnet-` unless `--prefix`) and
//! `down` removes all of it, also after a failed run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

const SUBNET: &str = "10.200.0";
const CLIENT: &str = "client";
const CLIENT_HOST: u8 = 100;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "deploy/docker-compose.yml")]
    compose: PathBuf,
    /// Pids, logs and the services' volumes.
    #[arg(long, default_value = "/tmp/rill-netns")]
    state: PathBuf,
    /// The `rill` binary that stands for the image's entrypoint.
    #[arg(long, default_value = "target/release/rill")]
    rill: PathBuf,
    /// Prefix of every namespace this twin creates (two twins need two prefixes).
    #[arg(long, default_value = "rillnet-")]
    prefix: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print what `up` runs: per service, its namespace, address, argv and environment.
    Plan,
    Up,
    Down,
    /// Every service's pid and whether it runs.
    Status,
    Kill {
        node: String,
    },
    Start {
        node: String,
    },
    Pause {
        node: String,
    },
    Resume {
        node: String,
    },
    Partition {
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    Heal,
    Exec {
        namespace: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretSource>,
}

/// A top-level secret: a file, relative to the compose file.
#[derive(Debug, Deserialize)]
struct SecretSource {
    file: PathBuf,
}

/// Where compose mounts a service's secret.
const SECRETS_DIR: &str = "/run/secrets";

#[derive(Debug, Deserialize)]
struct Service {
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    volumes: Vec<String>,
    #[serde(default)]
    secrets: Vec<ServiceSecret>,
}

/// A service's secret: `name`, or `{source, target}` (mounted at /run/secrets/TARGET).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ServiceSecret {
    Name(String),
    Long {
        source: String,
        target: Option<String>,
    },
}

impl ServiceSecret {
    fn source_and_target(&self) -> (&str, &str) {
        match self {
            Self::Name(name) => (name, name),
            Self::Long { source, target } => (source, target.as_deref().unwrap_or(source)),
        }
    }
}

/// The one secret `up` makes when its file is missing (as `rill dev` does); certificates
/// must be made first (`rill certs`).
const CLUSTER_SECRET: &str = "cluster_secret";

/// One service as the twin runs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Planned {
    pub service: String,
    pub namespace: String,
    pub address: String,
    /// argv[0] is the image's entrypoint (`rill`).
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The cluster secret file the service reads, if any (made by `up` when missing).
    pub cluster_secret: Option<PathBuf>,
}

fn plan(cli: &Cli) -> anyhow::Result<Vec<Planned>> {
    let text = fs::read_to_string(&cli.compose)
        .with_context(|| format!("reading {}", cli.compose.display()))?;
    // Services share settings through a YAML anchor and merge keys (`<<: *rill-node`).
    let mut value: serde_norway::Value =
        serde_norway::from_str(&text).context("parsing the compose file")?;
    value.apply_merge().context("resolving merge keys")?;
    let compose: Compose = serde_norway::from_value(value).context("reading the services")?;
    let compose_dir = fs::canonicalize(&cli.compose)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let rill = fs::canonicalize(&cli.rill)
        .with_context(|| format!("the rill binary {}", cli.rill.display()))?;
    let mut planned = Vec::new();
    for (i, (name, service)) in compose.services.iter().enumerate() {
        // Named volumes become directories under the state dir, mounted at the same
        // container path: rewrite environment values under that path.
        let mut env = service.environment.clone();
        let mut map = |target: &str, host: &Path| {
            for value in env.values_mut() {
                if let Some(rest) = value.strip_prefix(target) {
                    *value = format!("{}{rest}", host.display());
                }
            }
        };
        for volume in &service.volumes {
            let Some((source, target)) = volume.split_once(':') else {
                continue;
            };
            map(target, &cli.state.join("volumes").join(source));
        }
        let mut cluster_secret = None;
        for secret in &service.secrets {
            let (source, target) = secret.source_and_target();
            let declared = compose
                .secrets
                .get(source)
                .with_context(|| format!("{name}: secret {source} is not declared"))?;
            let relative = declared.file.strip_prefix(".").unwrap_or(&declared.file);
            let host = compose_dir.join(relative);
            map(&format!("{SECRETS_DIR}/{target}"), &host);
            if source == CLUSTER_SECRET {
                cluster_secret = Some(host);
            } else if !host.exists() {
                bail!(
                    "{name}: the file of secret {source} ({}) is missing (certificates: rill certs)",
                    host.display()
                );
            }
        }
        let mut argv = vec![rill.display().to_string()];
        argv.extend(service.command.iter().cloned());
        planned.push(Planned {
            service: name.clone(),
            namespace: format!("{}{name}", cli.prefix),
            address: format!("{SUBNET}.{}", i + 1),
            argv,
            env,
            cluster_secret,
        });
    }
    Ok(planned)
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed: {status}", args.join(" "));
    }
    Ok(())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args)
}

fn hub(cli: &Cli) -> String {
    format!("{}hub", cli.prefix)
}

/// Namespaces left by this tool (also by a run that failed).
fn our_namespaces(cli: &Cli) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&cli.prefix))
        .map(str::to_string)
        .collect()
}

fn pid_file(cli: &Cli, service: &str) -> PathBuf {
    cli.state.join(format!("{service}.pid"))
}

fn read_pid(cli: &Cli, service: &str) -> Option<i32> {
    fs::read_to_string(pid_file(cli, service))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

fn signal(cli: &Cli, service: &str, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
    let pid = read_pid(cli, service).ok_or_else(|| anyhow!("{service} was not started"))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
        .with_context(|| format!("signalling {service} (pid {pid})"))?;
    Ok(())
}

fn hosts_file(planned: &[Planned]) -> String {
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for p in planned {
        hosts.push_str(&format!("{} {}\n", p.address, p.service));
    }
    hosts.push_str(&format!("{SUBNET}.{CLIENT_HOST} {CLIENT}\n"));
    hosts
}

/// A namespace on the bridge with `address`, and the service names in its hosts file.
fn attach(cli: &Cli, name: &str, address: &str, hosts: &str) -> anyhow::Result<()> {
    let namespace = format!("{}{name}", cli.prefix);
    let namespace = namespace.as_str();
    let hub = hub(cli);
    ip(&["netns", "add", namespace])?;
    let hub_end = format!("v{name}");
    ip(&[
        "link", "add", &hub_end, "netns", &hub, "type", "veth", "peer", "name", "eth0", "netns",
        namespace,
    ])?;
    ip(&["-n", &hub, "link", "set", &hub_end, "master", "br0", "up"])?;
    ip(&[
        "-n",
        namespace,
        "addr",
        "add",
        &format!("{address}/24"),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", namespace, "link", "set", "eth0", "up"])?;
    ip(&["-n", namespace, "link", "set", "lo", "up"])?;
    let dir = Path::new("/etc/netns").join(namespace);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("hosts"), hosts)?;
    Ok(())
}

fn start(cli: &Cli, p: &Planned) -> anyhow::Result<()> {
    if read_pid(cli, &p.service).is_some_and(alive) {
        bail!("{} is already running", p.service);
    }
    for value in p.env.values() {
        let path = Path::new(value);
        if path.is_absolute() && path.starts_with(&cli.state) {
            fs::create_dir_all(path)?;
        }
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cli.state.join(format!("{}.log", p.service)))?;
    let child = Command::new("ip")
        .args(["netns", "exec", &p.namespace])
        .args(&p.argv)
        .env_clear()
        .envs(&p.env)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", p.service))?;
    // `ip netns exec` execs the command: the pid is the service's.
    fs::write(pid_file(cli, &p.service), child.id().to_string())?;
    Ok(())
}

fn up(cli: &Cli) -> anyhow::Result<()> {
    let planned = plan(cli)?;
    if !our_namespaces(cli).is_empty() {
        bail!("a twin is already up (run `down` first)");
    }
    fs::create_dir_all(&cli.state)?;
    let hub = hub(cli);
    ip(&["netns", "add", &hub])?;
    ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &hub, "link", "set", "br0", "up"])?;
    let hosts = hosts_file(&planned);
    for p in &planned {
        attach(cli, &p.service, &p.address, &hosts)?;
    }
    attach(cli, CLIENT, &format!("{SUBNET}.{CLIENT_HOST}"), &hosts)?;
    for path in planned.iter().filter_map(|p| p.cluster_secret.as_ref()) {
        if rill_proto::ClusterSecret::create_file(path)
            .with_context(|| format!("creating {}", path.display()))?
        {
            println!("made the secret {}", path.display());
        }
    }
    for p in &planned {
        start(cli, p)?;
    }
    println!("up: {} services", planned.len());
    Ok(())
}

fn down(cli: &Cli) -> anyhow::Result<()> {
    if let Ok(entries) = fs::read_dir(&cli.state) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pid") {
                if let Some(pid) = fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                {
                    let pid = nix::unistd::Pid::from_raw(pid);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
                let _ = fs::remove_file(&path);
            }
        }
    }
    for ns in our_namespaces(cli) {
        let _ = ip(&["netns", "del", &ns]);
        let _ = fs::remove_dir_all(Path::new("/etc/netns").join(&ns));
    }
    println!("down");
    Ok(())
}

/// The listed services reach only each other; everything else (the other services and
/// the client) reaches only the rest. Packets across the cut are dropped silently.
fn partition(cli: &Cli, nodes: &[String]) -> anyhow::Result<()> {
    let planned = plan(cli)?;
    for n in nodes {
        if !planned.iter().any(|p| p.service == *n) {
            bail!("no service {n}");
        }
    }
    let mut all: Vec<(String, String, bool)> = planned
        .iter()
        .map(|p| {
            (
                p.namespace.clone(),
                p.address.clone(),
                nodes.contains(&p.service),
            )
        })
        .collect();
    all.push((
        format!("{}{CLIENT}", cli.prefix),
        format!("{SUBNET}.{CLIENT_HOST}"),
        false,
    ));
    for (ns, _, inside) in &all {
        for (_, address, other_inside) in &all {
            if inside != other_inside {
                ip(&[
                    "-n",
                    ns,
                    "route",
                    "replace",
                    "blackhole",
                    &format!("{address}/32"),
                ])?;
            }
        }
    }
    Ok(())
}

fn heal(cli: &Cli) -> anyhow::Result<()> {
    for ns in our_namespaces(cli) {
        if ns != hub(cli) {
            let _ = ip(&["-n", &ns, "route", "flush", "type", "blackhole"]);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Plan => plan(&cli).and_then(|p| {
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(())
        }),
        Cmd::Up => up(&cli).inspect_err(|_| {
            let _ = down(&cli);
        }),
        Cmd::Down => down(&cli),
        Cmd::Status => plan(&cli).map(|planned| {
            for p in planned {
                let pid = read_pid(&cli, &p.service);
                let state = if pid.is_some_and(alive) {
                    "running"
                } else {
                    "stopped"
                };
                println!(
                    "{}\t{}\t{}\t{state}",
                    p.service,
                    p.address,
                    pid.unwrap_or(0)
                );
            }
        }),
        Cmd::Kill { node } => signal(&cli, node, nix::sys::signal::Signal::SIGKILL),
        Cmd::Pause { node } => signal(&cli, node, nix::sys::signal::Signal::SIGSTOP),
        Cmd::Resume { node } => signal(&cli, node, nix::sys::signal::Signal::SIGCONT),
        Cmd::Start { node } => plan(&cli).and_then(|planned| {
            let p = planned
                .iter()
                .find(|p| p.service == *node)
                .ok_or_else(|| anyhow!("no service {node}"))?;
            start(&cli, p)
        }),
        Cmd::Partition { nodes } => partition(&cli, nodes),
        Cmd::Heal => heal(&cli),
        Cmd::Exec { namespace, command } => {
            let ns = format!("{}{namespace}", cli.prefix);
            Command::new("ip")
                .args(["netns", "exec", &ns])
                .args(command)
                .status()
                .map_err(anyhow::Error::from)
                .and_then(|s| {
                    if s.success() {
                        Ok(())
                    } else {
                        Err(anyhow!("exit status {s}"))
                    }
                })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
