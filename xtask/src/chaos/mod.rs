//! `cargo xtask chaos [--short]`: faults on a real cluster, with loss and duplicate
//! accounting. A name server and two broker groups (broker-a, broker-b) run on loopback;
//! consumers are `rmq consume` processes that reach the brokers through a fault proxy each
//! (`--broker-addr-map`); a producer inside the xtask sends a steady stream of numbered
//! messages straight to the brokers and records which were stored, when, and on which
//! queue. Each scenario injects one fault, bounded in time, and is scored:
//!
//! - lost: stored messages never printed by any consumer (those stored on a broker group
//!   a scenario takes away for good are counted apart, as unavailable);
//! - duplicates: printed more than once (allowed only after a crash: at-least-once);
//! - recovery: from the end of the fault until every queue that received messages after
//!   it delivered one of them, in seconds.
//!
//! The table is printed at the end; the run fails if anything was lost, a clean scenario
//! duplicated, or a recovery target was missed. Server and consumer logs are kept under
//! `target/rmq-chaos/`.

mod proxy;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_client_core::{ClientConfig, ClientInstance, Message, Producer};

use crate::broker::{self, BrokerSpec};
use crate::{Result, cargo, run};
use proxy::{Fault, Proxy};

/// Messages per second the producer sends during a scenario.
const RATE: u64 = 200;
/// Longest wait, after the producer stopped, for every stored message to be consumed.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// One consumed message, as `rmq consume --format json` printed it.
struct Consumed {
    at: Instant,
    body: String,
}

/// One stored message.
struct Sent {
    at: Instant,
    queue: (String, i32),
}

/// A consumer process and the thread reading its output.
struct Member {
    child: Child,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The running cluster; dropping it stops every server.
struct Cluster {
    bin: PathBuf,
    namesrv_addr: String,
    namesrv_port: u16,
    namesrv_pid: u32,
    dir: PathBuf,
    brokers: Vec<(BrokerSpec, u32)>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (spec, pid) in &self.brokers {
            broker::stop_process(&spec.name, *pid);
        }
        broker::stop_process("name server", self.namesrv_pid);
        broker::remove_stores(&self.dir);
    }
}

impl Cluster {
    fn start() -> Result<Cluster> {
        let bin = broker::install()?;
        let dir = broker::workspace_root().join("target").join("rmq-chaos");
        broker::remove_run_dir(&dir);
        let (namesrv_addr, namesrv_pid) = broker::spawn_namesrv(&bin, &dir, None, None)?;
        let namesrv_port = broker::port_of(&namesrv_addr);
        let mut cluster = Cluster {
            bin,
            namesrv_addr,
            namesrv_port,
            namesrv_pid,
            dir,
            brokers: Vec::new(),
        };
        let mut avoid = vec![namesrv_port];
        for name in ["broker-a", "broker-b"] {
            let (spec, pid) = broker::launch(
                &cluster.bin,
                &cluster.dir,
                name,
                &cluster.namesrv_addr,
                &avoid,
                None,
                |_, _| Ok(()),
            )?;
            avoid.push(broker::port_of(&spec.addr));
            cluster.brokers.push((spec, pid));
        }
        Ok(cluster)
    }

    /// Stops broker `i` (SIGTERM), waits `down`, starts it again on its store; returns when
    /// it accepts connections again.
    fn restart_broker(&mut self, i: usize, down: Duration) -> Result<Instant> {
        let (spec, pid) = self.brokers[i].clone();
        broker::stop_process(&spec.name, pid);
        std::thread::sleep(down);
        let pid = spec.spawn(&self.bin)?;
        self.brokers[i].1 = pid;
        let addr: std::net::SocketAddr = spec.addr.parse().expect("own address");
        let started = Instant::now();
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("{} did not come back within 60 s", spec.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Instant::now())
    }

    /// Waits until the name server lists every broker (after a name-server restart they
    /// register again within their 30 s period).
    fn wait_registered(&self) -> Result<()> {
        for (spec, pid) in &self.brokers {
            spec.wait_registered(*pid)?;
        }
        Ok(())
    }

    /// Kills the name server, waits `down`, starts it again on the same port.
    fn restart_namesrv(&mut self, down: Duration) -> Result<()> {
        broker::kill_process(self.namesrv_pid);
        std::thread::sleep(down);
        let (_, pid) = broker::spawn_namesrv(&self.bin, &self.dir, Some(self.namesrv_port), None)?;
        self.namesrv_pid = pid;
        Ok(())
    }
}

/// Everything a scenario works with.
struct Ctx<'a> {
    rmq: PathBuf,
    cluster: &'a mut Cluster,
    proxies: Vec<Proxy>,
    rt: &'a tokio::runtime::Runtime,
    topic: String,
    group: String,
    members: Vec<Member>,
    /// Members running in this process (the poison scenario needs a failing listener).
    lib_members: Vec<rmq_push_consumer::PushConsumer>,
    instance: ClientInstance,
    consumed: Arc<Mutex<Vec<Consumed>>>,
    sent: Arc<Mutex<HashMap<String, Sent>>>,
    producing: Arc<AtomicBool>,
    producer: Option<tokio::task::JoinHandle<()>>,
}

impl Ctx<'_> {
    /// Starts one more `rmq consume` member of the group, through the proxies.
    fn start_member(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.rmq);
        cmd.arg("--namesrv").arg(&self.cluster.namesrv_addr);
        for (advertised, dial) in self.through_proxies() {
            cmd.arg("--broker-addr-map")
                .arg(format!("{advertised}={dial}"));
        }
        cmd.args([
            "consume",
            "--topic",
            &self.topic,
            "--group",
            &self.group,
            "--from",
            "first",
            "--format",
            "json",
            "--quiet",
        ])
        .env("RMQ_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(self.member_log()?);
        let mut child = cmd.spawn().map_err(|e| format!("start rmq consume: {e}"))?;
        let out = child.stdout.take().expect("piped");
        let consumed = Arc::clone(&self.consumed);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(body) = v["body"].as_str() {
                    consumed.lock().expect("not poisoned").push(Consumed {
                        at: Instant::now(),
                        body: body.to_owned(),
                    });
                }
            }
        });
        self.members.push(Member {
            child,
            reader: Some(reader),
        });
        Ok(())
    }

    /// Starts a member in this process, through the proxies, whose listener consumes
    /// every message but those whose body holds `-poison-`, which it always fails
    /// (RECONSUME_LATER, at most 2 retries, then the DLQ).
    fn start_failing_member(&mut self) -> Result<()> {
        use rmq_push_consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, listener_fn};
        let mut config = ClientConfig::default()
            .namesrv_addr(&self.cluster.namesrv_addr)
            .client_ip("127.0.0.1")
            .instance_name(format!("chaos-member-{}", self.lib_members.len()));
        for (advertised, dial) in self.through_proxies() {
            config = config.map_broker_addr(advertised, dial);
        }
        let consumed = Arc::clone(&self.consumed);
        let builder = rmq_push_consumer::PushConsumer::builder(&self.group)
            .client_config(config)
            .subscribe(&self.topic, "*")
            .consume_from_where(ConsumeFromWhere::FirstOffset)
            .max_reconsume_times(Some(2))
            .listener(listener_fn(move |msgs, _ctx| {
                let consumed = Arc::clone(&consumed);
                async move {
                    let bodies: Vec<String> = msgs
                        .iter()
                        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                        .collect();
                    if bodies.iter().any(|b| b.contains("-poison-")) {
                        return ConsumeConcurrentlyStatus::ReconsumeLater;
                    }
                    let at = Instant::now();
                    let mut c = consumed.lock().expect("not poisoned");
                    c.extend(bodies.into_iter().map(|body| Consumed { at, body }));
                    ConsumeConcurrentlyStatus::ConsumeSuccess
                }
            }));
        let member = self
            .rt
            .block_on(builder.start())
            .map_err(|e| format!("start an in-process member: {e}"))?;
        self.lib_members.push(member);
        Ok(())
    }

    /// Sends `n` poison messages (bodies `<topic>-poison-<k>`).
    fn send_poison(&self, n: usize) -> Result<()> {
        let p = Producer::unregistered(&self.instance, "chaos_poison_producer");
        for k in 0..n {
            let body = format!("{}-poison-{k}", self.topic);
            self.rt
                .block_on(p.send(Message::new(&self.topic, body)))
                .map_err(|e| format!("send poison: {e}"))?;
        }
        Ok(())
    }

    /// Poison messages in the group's DLQ, read back with `rmq pull` from every broker.
    fn poison_in_dlq(&self) -> usize {
        let dlq = rmq_client_core::namespace::dlq_topic(&self.group);
        let mut n = 0;
        for (spec, _) in &self.cluster.brokers {
            let out = Command::new(&self.rmq)
                .args(["--namesrv", &self.cluster.namesrv_addr])
                .args([
                    "pull",
                    "--topic",
                    &dlq,
                    "--queue-id",
                    "0",
                    "--broker",
                    &spec.name,
                ])
                .args(["--count", "1000", "--format", "json"])
                .stderr(Stdio::null())
                .output();
            if let Ok(out) = out {
                n += String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains("-poison-"))
                    .count();
            }
        }
        n
    }

    /// The log file of the next member: `target/rmq-chaos/<group>-<n>.log`.
    fn member_log(&self) -> Result<std::fs::File> {
        let path = self
            .cluster
            .dir
            .join(format!("{}-{}.log", self.group, self.members.len()));
        std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))
    }

    fn signal(&mut self, i: usize, sig: &str) {
        broker::signal(self.members[i].child.id(), sig);
    }

    /// Each broker's advertised address and the proxy address members dial instead.
    fn through_proxies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.cluster
            .brokers
            .iter()
            .zip(&self.proxies)
            .map(|((spec, _), proxy)| (spec.addr.as_str(), proxy.addr.as_str()))
    }

    /// kill -9 of member `i`; returns when it is gone.
    fn kill9(&mut self, i: usize) -> Instant {
        self.signal(i, "-KILL");
        let at = Instant::now();
        let _ = self.members[i].child.wait();
        at
    }

    /// SIGTERM to member `i` and a wait for its exit (clean shutdown).
    fn sigterm(&mut self, i: usize) -> Result<Instant> {
        self.signal(i, "-TERM");
        let at = Instant::now();
        let status = self.members[i]
            .child
            .wait()
            .map_err(|e| format!("wait: {e}"))?;
        if !status.success() {
            return Err(format!("rmq consume exited with {status} on SIGTERM"));
        }
        Ok(at)
    }

    fn set_fault(&self, f: Fault) {
        for p in &self.proxies {
            p.set(f);
        }
    }

    fn stop_producing(&mut self) {
        self.producing.store(false, Ordering::SeqCst);
        if let Some(p) = self.producer.take() {
            let _ = self.rt.block_on(p);
        }
    }
}

/// A scenario: its name, what it does (returns the fault's end), the recovery target and
/// whether duplicates are acceptable (after a crash).
struct Scenario {
    name: &'static str,
    members: usize,
    target: Duration,
    duplicates_ok: bool,
    /// A broker group that the scenario takes away for good: what it stored and nobody
    /// consumed is unavailable, not lost.
    gone: Option<&'static str>,
    /// Poison messages the scenario sends; all must reach the DLQ.
    poison: usize,
    act: fn(&mut Ctx<'_>) -> Result<Instant>,
}

impl Scenario {
    /// A scenario with `members` CLI members, a recovery target in seconds, no duplicates
    /// allowed, no broker taken away and no poison.
    fn new(
        name: &'static str,
        members: usize,
        target_s: u64,
        act: fn(&mut Ctx<'_>) -> Result<Instant>,
    ) -> Self {
        Scenario {
            name,
            members,
            target: Duration::from_secs(target_s),
            duplicates_ok: false,
            gone: None,
            poison: 0,
            act,
        }
    }

    /// Duplicates allowed (a crash, or commits a broker had not stored yet).
    fn at_least_once(mut self) -> Self {
        self.duplicates_ok = true;
        self
    }
}

impl Ctx<'_> {
    /// Applies `f` on every proxy for `d`, then passes again; returns when it did.
    fn fault_for(&self, f: Fault, d: Duration) -> Instant {
        self.set_fault(f);
        std::thread::sleep(d);
        self.set_fault(Fault::Pass);
        Instant::now()
    }
}

fn scenarios(short: bool) -> Vec<Scenario> {
    let all = vec![
        Scenario::new("kill -9 one of two", 2, 3, |c| Ok(c.kill9(0))).at_least_once(),
        Scenario::new("kill -9 and restart", 1, 3, |c| {
            let at = c.kill9(0);
            c.start_member()?;
            Ok(at)
        })
        .at_least_once(),
        Scenario::new("kill -9 one of three", 3, 3, |c| Ok(c.kill9(0))).at_least_once(),
        Scenario::new("SIGTERM one of two", 2, 3, |c| c.sigterm(0)),
        Scenario::new("churn of four (3 stop/start)", 4, 5, |c| {
            let mut at = Instant::now();
            for i in 0..3 {
                at = c.sigterm(i)?;
                c.start_member()?;
                std::thread::sleep(Duration::from_secs(2));
            }
            Ok(at)
        }),
        Scenario::new("broker-a restart", 2, 2, |c| {
            c.cluster.restart_broker(0, Duration::from_secs(3))
        })
        .at_least_once(),
        Scenario::new("name server down 10 s", 2, 2, |c| {
            c.cluster.restart_namesrv(Duration::from_secs(10))?;
            Ok(Instant::now())
        }),
        Scenario::new("connections reset 10 s", 2, 2, |c| {
            Ok(c.fault_for(Fault::Reset, Duration::from_secs(10)))
        })
        .at_least_once(),
        Scenario::new("black hole 10 s", 2, 2, |c| {
            Ok(c.fault_for(Fault::BlackHole, Duration::from_secs(10)))
        })
        .at_least_once(),
        // Every answer held back past the 30 s pull timeout.
        Scenario::new("slow broker 35 s", 2, 2, |c| {
            Ok(c.fault_for(
                Fault::Delay(Duration::from_secs(31)),
                Duration::from_secs(35),
            ))
        })
        .at_least_once(),
        Scenario {
            gone: Some("broker-b"),
            ..Scenario::new("broker-b gone for good", 2, 2, |c| {
                broker::kill_process(c.cluster.brokers[1].1);
                Ok(Instant::now())
            })
        },
        Scenario {
            poison: 5,
            ..Scenario::new("poison messages (always fail)", 0, 2, |c| {
                c.start_failing_member()?;
                c.start_failing_member()?;
                std::thread::sleep(Duration::from_secs(2));
                c.send_poison(5)?;
                Ok(Instant::now())
            })
        },
    ];
    // RMQ_CHAOS_ONLY=<part of a name> runs the matching scenarios only (debugging).
    if let Ok(only) = std::env::var("RMQ_CHAOS_ONLY") {
        return all.into_iter().filter(|s| s.name.contains(&only)).collect();
    }
    if short {
        all.into_iter()
            .filter(|s| matches!(s.name, "kill -9 and restart" | "connections reset 10 s"))
            .collect()
    } else {
        all
    }
}

/// One row of the table.
struct Row {
    name: &'static str,
    produced: usize,
    /// Stored on a broker group that went away for good, not consumed.
    unavailable: usize,
    unique: usize,
    lost: usize,
    duplicates: usize,
    recovery: Option<Duration>,
    verdict: String,
}

fn run_scenario(
    s: &Scenario,
    n: usize,
    cluster: &mut Cluster,
    rt: &tokio::runtime::Runtime,
    rmq: &std::path::Path,
) -> Result<Row> {
    eprintln!("==> chaos: {}", s.name);
    let stamp = rmq_client_core::now_millis();
    let topic = format!("chaos_{n}_{stamp}");
    let group = format!("chaos_g_{n}_{stamp}");
    let config = ClientConfig::default()
        .namesrv_addr(&cluster.namesrv_addr)
        .client_ip("127.0.0.1")
        .instance_name(format!("chaos-producer-{n}-{stamp}"));
    let instance = rt
        .block_on(async { ClientInstance::get_or_create(&config) })
        .map_err(|e| e.to_string())?;
    rt.block_on(instance.create_topic(&topic, 4))
        .map_err(|e| format!("create topic: {e}"))?;
    let proxies = cluster
        .brokers
        .iter()
        .map(|(spec, _)| rt.block_on(Proxy::start(spec.addr.clone())))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("proxy: {e}"))?;
    let sent: Arc<Mutex<HashMap<String, Sent>>> = Arc::default();
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (sent, producing, topic) = (Arc::clone(&sent), Arc::clone(&producing), topic.clone());
        let p = Producer::new(&instance, &format!("chaos_pg_{n}_{stamp}"))
            .map_err(|e| e.to_string())?;
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
            let mut i = 0u64;
            while producing.load(Ordering::SeqCst) {
                tick.tick().await;
                let body = format!("{topic}-{i}");
                i += 1;
                // A failed send is not stored: it is not counted.
                if let Ok(r) = p.send(Message::new(&topic, body.clone())).await {
                    sent.lock().expect("not poisoned").insert(
                        body,
                        Sent {
                            at: Instant::now(),
                            queue: (r.queue.broker_name.clone(), r.queue.queue_id),
                        },
                    );
                }
            }
            p.shutdown().await;
        })
    };
    let mut ctx = Ctx {
        rmq: rmq.to_path_buf(),
        cluster,
        proxies,
        rt,
        topic,
        group,
        members: Vec::new(),
        lib_members: Vec::new(),
        instance: instance.clone(),
        consumed: Arc::default(),
        sent,
        producing,
        producer: Some(producer),
    };
    let result: Result<Instant> = (|| {
        for _ in 0..s.members {
            ctx.start_member()?;
        }
        std::thread::sleep(Duration::from_secs(4));
        let end = (s.act)(&mut ctx)?;
        std::thread::sleep(Duration::from_secs(5));
        ctx.stop_producing();
        // Wait (bounded) until every stored message was printed.
        let deadline = Instant::now() + DRAIN_LIMIT;
        loop {
            let missing = {
                let sent = ctx.sent.lock().expect("not poisoned");
                let seen: HashSet<String> = ctx
                    .consumed
                    .lock()
                    .expect("not poisoned")
                    .iter()
                    .map(|c| c.body.clone())
                    .collect();
                sent.keys().filter(|b| !seen.contains(*b)).count()
            };
            if missing == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Poison goes to the DLQ after two retries (delay levels 3 and 4: 10 s + 30 s).
        let deadline = Instant::now() + Duration::from_secs(90);
        while s.poison > 0 && ctx.poison_in_dlq() < s.poison && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(2));
        }
        Ok(end)
    })();
    ctx.stop_producing();
    for i in 0..ctx.members.len() {
        if matches!(ctx.members[i].child.try_wait(), Ok(None)) {
            ctx.signal(i, "-TERM");
        }
    }
    for m in &mut ctx.members {
        let _ = m.child.wait();
        if let Some(r) = m.reader.take() {
            let _ = r.join();
        }
    }
    for m in ctx.lib_members.drain(..) {
        rt.block_on(m.shutdown());
    }
    let in_dlq = if s.poison > 0 { ctx.poison_in_dlq() } else { 0 };
    rt.block_on(instance.shutdown(Duration::from_secs(2)));
    let end = result?;
    let mut row = score(s, &ctx, end);
    if in_dlq < s.poison {
        let fault = format!("{in_dlq} of {} poison messages in the DLQ", s.poison);
        row.verdict = if row.verdict == "ok" {
            fault
        } else {
            format!("{}, {fault}", row.verdict)
        };
    }
    Ok(row)
}

fn score(s: &Scenario, ctx: &Ctx<'_>, end: Instant) -> Row {
    let sent = ctx.sent.lock().expect("not poisoned");
    let consumed = ctx.consumed.lock().expect("not poisoned");
    let mut times: HashMap<&str, Vec<Instant>> = HashMap::new();
    for c in consumed.iter() {
        times.entry(c.body.as_str()).or_default().push(c.at);
    }
    let unique = sent
        .keys()
        .filter(|b| times.contains_key(b.as_str()))
        .count();
    // Stored on a broker group the scenario took away, and never consumed: unavailable.
    let unavailable = sent
        .iter()
        .filter(|(b, m)| s.gone == Some(m.queue.0.as_str()) && !times.contains_key(b.as_str()))
        .count();
    let lost = sent.len() - unique - unavailable;
    let duplicates: usize = times.values().map(|t| t.len().saturating_sub(1)).sum();
    // Per queue: the first delivery of a message stored after the fault ended.
    let mut first_after: BTreeMap<&(String, i32), Option<Instant>> = BTreeMap::new();
    for (body, m) in sent.iter().filter(|(_, m)| m.at >= end) {
        let got = times
            .get(body.as_str())
            .and_then(|t| t.iter().min().copied());
        let e = first_after.entry(&m.queue).or_insert(None);
        *e = match (*e, got) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let recovery = if first_after.values().all(Option::is_some) {
        first_after
            .values()
            .map(|t| t.expect("checked").saturating_duration_since(end))
            .max()
            .or(Some(Duration::ZERO))
    } else {
        None
    };
    let mut faults = Vec::new();
    if lost > 0 {
        faults.push(format!("{lost} lost"));
    }
    if duplicates > 0 && !s.duplicates_ok {
        faults.push(format!("{duplicates} duplicates"));
    }
    match recovery {
        Some(r) if r > s.target => faults.push(format!("recovery over {:?}", s.target)),
        None => faults.push("a queue never recovered".into()),
        _ => {}
    }
    Row {
        name: s.name,
        produced: sent.len(),
        unavailable,
        unique,
        lost,
        duplicates,
        recovery,
        verdict: if faults.is_empty() {
            "ok".into()
        } else {
            faults.join(", ")
        },
    }
}

/// `cargo xtask chaos [--short]`; returns how many scenarios passed (all of them).
pub(crate) fn chaos(short: bool) -> Result<usize> {
    run(
        "build rmq (the consumer under test)",
        cargo().args(["build", "-q", "-p", "rmq-cli"]),
    )?;
    let rmq = broker::workspace_root().join("target/debug/rmq");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut cluster = Cluster::start()?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for (n, s) in scenarios(short).iter().enumerate() {
        rows.push(run_scenario(s, n, &mut cluster, &rt, &rmq)?);
        if let Some(gone) = s.gone {
            // Back for the scenarios after it.
            let i = cluster
                .brokers
                .iter()
                .position(|(b, _)| b.name == gone)
                .expect("a broker of the cluster");
            cluster.restart_broker(i, Duration::ZERO)?;
        }
        cluster.wait_registered()?;
    }
    drop(cluster);
    println!(
        "\n| scenario | produced | consumed unique | unavailable | lost | duplicates | recovery s | target s | verdict |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let all = scenarios(short);
    for (row, s) in rows.iter().zip(&all) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            row.produced,
            row.unique,
            row.unavailable,
            row.lost,
            row.duplicates,
            row.recovery
                .map_or("never".into(), |r| format!("{:.2}", r.as_secs_f64())),
            s.target.as_secs(),
            row.verdict
        );
    }
    eprintln!("==> chaos took {:.0} s", started.elapsed().as_secs_f64());
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.verdict != "ok")
        .map(|r| r.name)
        .collect();
    if failed.is_empty() {
        Ok(rows.len())
    } else {
        Err(format!("chaos: failed scenarios: {}", failed.join("; ")))
    }
}
