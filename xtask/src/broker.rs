//! A real RocketMQ name server and broker on 127.0.0.1 (crates.io `rocketmq-namesrv` and
//! `rocketmq-broker` 1.0.0), installed once into a cache folder and started with a
//! temporary store under `target/rmq-broker/`.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Result, pki, run};

const VERSION: &str = "1.0.0";
const NAMESRV_BIN: &str = "rocketmq-namesrv-rust";
const BROKER_BIN: &str = "rocketmq-broker-rust";
const BROKER_NAME: &str = "broker-a";
const CLUSTER_NAME: &str = "DefaultCluster";

/// Where a started name server and broker can be reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BrokerEnv {
    pub(crate) namesrv_addr: String,
    pub(crate) broker_addr: String,
    namesrv_pid: u32,
    broker_pid: u32,
    dir: PathBuf,
}

impl BrokerEnv {
    /// The folder with the CA and certificates both servers' TLS listeners use.
    pub(crate) fn tls_dir(&self) -> PathBuf {
        tls_dir(&self.dir)
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

fn run_dir() -> PathBuf {
    workspace_root().join("target").join("rmq-broker")
}

/// Where the brokers of a run folder keep their stores: the same path under `/dev/shm` when
/// that is a tmpfs with at least [`SHM_MIN_FREE_KIB`] free, else `run_dir` itself.
///
/// A rocketmq-broker 1.0.0 store judges its disk by `1 - available / size` and, above 90 %
/// (a cap its config cannot raise), refuses every write and fails to start. Build
/// machines of this project report 252 GB of disk with 25–80 GB available, so a broker on
/// the build disk stops working as soon as a clone's `target` grows. That is most likely
/// how the CI run on 7c9f400 lost its broker before the first real-broker test; a local CI
/// run's chaos brokers stored only 133 of ~3 800 sends that way. On tmpfs the store's disk
/// is the machine's memory; the stores written here are sparse (only the bytes written
/// take memory).
pub(crate) fn store_root(run_dir: &Path) -> PathBuf {
    if shm_free_kib(Path::new(SHM)).is_some_and(|kib| kib >= SHM_MIN_FREE_KIB) {
        shm_mirror(run_dir)
    } else {
        run_dir.to_path_buf()
    }
}

/// The tmpfs the stores go to when it has room (see [`store_root`]).
const SHM: &str = "/dev/shm";

/// `run_dir`'s path below `/dev/shm/rmq`.
fn shm_mirror(run_dir: &Path) -> PathBuf {
    let relative = run_dir.strip_prefix("/").unwrap_or(run_dir);
    Path::new(SHM).join("rmq").join(relative)
}

/// The least free room (KiB) on `/dev/shm` for the stores to go there: the bench writes
/// about 6 GB, the tests well under 1 GB.
const SHM_MIN_FREE_KIB: u64 = 8 * 1024 * 1024;

/// Free KiB of the tmpfs mounted at `dir` (`df -k`), `None` when it is not a tmpfs or
/// cannot be read.
fn shm_free_kib(dir: &Path) -> Option<u64> {
    let out = Command::new("df")
        .args(["-k", "--output=fstype,avail"])
        .arg(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut fields = text.lines().nth(1)?.split_whitespace();
    (fields.next()? == "tmpfs").then_some(())?;
    fields.next()?.parse().ok()
}

/// Removes the stores of a run folder kept in memory (see [`store_root`]); the folder and
/// its logs stay. Whether they went there is not asked again (`/dev/shm` may have less room
/// now than when they were placed, with those very stores in it).
pub(crate) fn remove_stores(run_dir: &Path) {
    let _ = fs::remove_dir_all(shm_mirror(run_dir));
}

/// Removes a run folder and its stores.
pub(crate) fn remove_run_dir(run_dir: &Path) {
    remove_stores(run_dir);
    let _ = fs::remove_dir_all(run_dir);
}

/// The certificates both servers use (see [`pki::generate`]).
fn tls_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("tls")
}

fn state_file() -> PathBuf {
    run_dir().join("state.json")
}

/// The install folder, outside the clone so that fresh clones reuse it.
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RMQ_BROKER_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set; set RMQ_BROKER_CACHE")?;
    Ok(PathBuf::from(home)
        .join(".cache/rmq")
        .join(format!("broker-{VERSION}-tls")))
}

/// Installs both servers into the cache unless they are already there; returns the bin dir.
pub(crate) fn install() -> Result<PathBuf> {
    let root = cache_dir()?;
    let bin = root.join("bin");
    if bin.join(NAMESRV_BIN).is_file() && bin.join(BROKER_BIN).is_file() {
        eprintln!("==> broker binaries cached in {}", bin.display());
        return Ok(bin);
    }
    fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    eprintln!(
        "==> installing rocketmq-namesrv and rocketmq-broker {VERSION} into {} (once; about 15 minutes on 2 cores)",
        root.display()
    );
    let started = Instant::now();
    // One target directory for both: the name server and the broker share most of their
    // dependency tree (tokio, the rocketmq-rust common and remoting crates), which
    // `cargo install` would otherwise compile twice, in a temporary directory each. The
    // directory is removed afterwards; only the binaries stay in the cache.
    let build_dir = root.join("build-target");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["install", "--locked", "--root"])
        .arg(&root)
        .arg("--target-dir")
        .arg(&build_dir)
        // `tls`: the broker's default build has no TLS listener at all (the name server's
        // default build has one); both take the feature.
        .args(["--features", "tls"])
        .arg(format!("rocketmq-namesrv@{VERSION}"))
        .arg(format!("rocketmq-broker@{VERSION}"))
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(std::env::temp_dir());
    run("cargo install rocketmq-namesrv rocketmq-broker", &mut cmd)?;
    if let Err(e) = fs::remove_dir_all(&build_dir) {
        eprintln!("==> warning: could not remove {}: {e}", build_dir.display());
    }
    eprintln!(
        "==> broker install took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for b in [NAMESRV_BIN, BROKER_BIN] {
        if !bin.join(b).is_file() {
            return Err(format!(
                "cargo install finished but {} is missing",
                bin.join(b).display()
            ));
        }
    }
    Ok(bin)
}

/// The port of a `host:port` this xtask made.
pub(crate) fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port")
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A broker port `p` with `p - 2` (the broker's fast port) free as well.
fn broker_port(avoid: &[u16]) -> Result<u16> {
    for _ in 0..100 {
        let p = free_port()?;
        if p > 1026 && !avoid.contains(&p) && !avoid.contains(&(p - 2)) && port_free(p - 2) {
            return Ok(p);
        }
    }
    Err("could not find two free ports for the broker".into())
}

/// `true` while `pid` runs (a zombie counts as stopped).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends `sig` (`-TERM`, `-KILL`) to `pid`, ignoring a process already gone.
pub(crate) fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Words of the servers' log lines that say why something failed (rocketmq-broker 1.0.0
/// logs a failed start as "Rolling back broker startup … cause=…", well before the shutdown
/// lines that end the log).
const FAILURE_WORDS: [&str; 5] = ["ERROR", "panicked", "Rolling back", "failed", "could not"];

/// The log's lines that say what failed (the first 20 before the tail), then its last 30
/// lines.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(30);
    let failures: Vec<&str> = lines[..from]
        .iter()
        .filter(|l| FAILURE_WORDS.iter().any(|w| l.contains(w)))
        .take(20)
        .copied()
        .collect();
    format!(
        "--- failures logged in {p} ---\n{}\n--- last lines of {p} ---\n{}",
        failures.join("\n"),
        lines[from..].join("\n"),
        p = path.display(),
    )
}

/// A command with the environment cleaned of anything that would steer the servers
/// elsewhere (REMOTING setups often export NAMESRV_ADDR / ROCKETMQ_HOME).
fn server_command(bin: &Path, home: &Path, log: &Path) -> Result<Command> {
    // Appended to: a restarted server keeps its earlier log.
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("ROCKETMQ")
            || k.starts_with("OTEL_")
            || k == "NAMESRV_ADDR"
            || k.starts_with("rocketmq")
        {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.env("HOME", home)
        .env("ROCKETMQ_HOME", home)
        // The servers refuse to start if any listener is not on loopback.
        .env("ROCKETMQ_SECURITY_PROFILE", "development-insecure-loopback")
        .env("ROCKETMQ_SHUTDOWN_TIMEOUT_SECONDS", "5")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir(home)
        // Own process group: a Ctrl-C meant for a test run does not hit the servers.
        .process_group(0);
    Ok(cmd)
}

fn wait_until(
    what: &str,
    limit: Duration,
    pid: u32,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if ready() {
            eprintln!("==> {what} after {:.1} s", started.elapsed().as_secs_f64());
            return Ok(());
        }
        if !alive(pid) {
            return Err(format!("{what}: process {pid} exited\n{}", log_tail(log)));
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{what}: not ready after {limit:?}\n{}",
                log_tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks the name server for the cluster (GET_BROKER_CLUSTER_INFO, code 106) and reports
/// whether `broker_addr` is registered as `broker_name`.
fn registered(namesrv: &str, broker_name: &str, broker_addr: &str) -> bool {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return false,
    };
    rt.block_on(async {
        use rmq_remoting::{RemotingClient, RemotingCommand, RemotingConfig, RequestCode};
        let client = RemotingClient::new(RemotingConfig::default());
        let req = RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO);
        let result = client.invoke(namesrv, req, Duration::from_secs(3)).await;
        client.shutdown(Duration::from_secs(1)).await;
        match result {
            Ok(resp) if resp.response_code().is_success() => {
                let body = String::from_utf8_lossy(&resp.body);
                body.contains(broker_name) && body.contains(broker_addr)
            }
            _ => false,
        }
    })
}

/// Starts a name server under `dir` (logs in `dir/namesrv.log`) on `port` or a free one,
/// and waits until it listens; returns its address and PID. With `tls` (a folder made by
/// [`pki::generate`]) it also accepts TLS on the same port ("permissive": plaintext and TLS
/// both, told apart by the first byte).
pub(crate) fn spawn_namesrv(
    bin: &Path,
    dir: &Path,
    port: Option<u16>,
    tls: Option<&Path>,
) -> Result<(String, u32)> {
    let home = dir.join("home");
    fs::create_dir_all(&home).map_err(|e| format!("create {}: {e}", home.display()))?;
    let ns_port = match port {
        Some(p) => p,
        None => free_port()?,
    };
    let namesrv_addr = format!("127.0.0.1:{ns_port}");
    let ns_log = dir.join("namesrv.log");
    let mut cmd = server_command(&bin.join(NAMESRV_BIN), &home, &ns_log)?;
    if let Some(tls) = tls {
        // The name server reads TLS settings only from a config file (TOML, flat keys).
        let config = format!(
            "tlsServerMode = \"permissive\"\ntlsServerCertPath = \"{}\"\ntlsServerKeyPath = \"{}\"\n",
            tls.join(pki::SERVER_CERT).display(),
            tls.join(pki::SERVER_KEY).display(),
        );
        let path = dir.join("namesrv.toml");
        fs::write(&path, config).map_err(|e| format!("write {}: {e}", path.display()))?;
        cmd.arg("-c").arg(path);
    }
    let namesrv = cmd
        .args([
            "--listenPort",
            &ns_port.to_string(),
            "--bindAddress",
            "127.0.0.1",
            "--rocketmqHome",
        ])
        .arg(&home)
        .spawn()
        .map_err(|e| format!("start name server: {e}"))?;
    let namesrv_pid = namesrv.id();
    let ns_sock: SocketAddr = namesrv_addr.parse().expect("valid address");
    wait_until(
        "name server listening",
        Duration::from_secs(60),
        namesrv_pid,
        &ns_log,
        || TcpStream::connect_timeout(&ns_sock, Duration::from_millis(200)).is_ok(),
    )?;
    Ok((namesrv_addr, namesrv_pid))
}

/// One broker (master) of its own broker group: name, ports, store and config under a
/// folder of its own, so that it can be stopped and started again on the same store.
#[derive(Debug, Clone)]
pub(crate) struct BrokerSpec {
    pub(crate) name: String,
    pub(crate) addr: String,
    pub(crate) namesrv_addr: String,
    pub(crate) log: PathBuf,
    home: PathBuf,
    store: PathBuf,
    config_path: PathBuf,
}

/// Writes the state file that [`running`] and [`stop`] read.
fn record(env: &BrokerEnv) -> Result<()> {
    fs::write(
        state_file(),
        serde_json::to_string_pretty(env).expect("serializable"),
    )
    .map_err(|e| format!("write state: {e}"))
}

/// How many times [`launch`] starts a broker that exits before it registers.
const START_ATTEMPTS: u32 = 3;

/// Writes a broker's config ([`BrokerSpec::new`]), starts it, hands its PID to `on_spawn`
/// (to record it) and waits until the name server lists it; returns it running, or an error
/// with it stopped.
///
/// The ports are free when picked but bound by the broker only later, so another process
/// (or an ephemeral port of some connection) may take one in between. A broker that exits
/// while starting is started again on fresh ports and an empty store, at most
/// [`START_ATTEMPTS`] times; each failure is printed with the reasons from its log.
pub(crate) fn launch(
    bin: &Path,
    dir: &Path,
    name: &str,
    namesrv_addr: &str,
    avoid: &[u16],
    tls: Option<&Path>,
    mut on_spawn: impl FnMut(&BrokerSpec, u32) -> Result<()>,
) -> Result<(BrokerSpec, u32)> {
    let mut attempt = 1;
    loop {
        let spec = BrokerSpec::new(dir, name, namesrv_addr, avoid, tls)?;
        let pid = spec.spawn(bin)?;
        let started = on_spawn(&spec, pid).and_then(|()| spec.wait_registered(pid));
        match started {
            Ok(()) => return Ok((spec, pid)),
            Err(e) if attempt < START_ATTEMPTS && !alive(pid) => {
                eprintln!("==> {name}: attempt {attempt} of {START_ATTEMPTS} failed: {e}");
                attempt += 1;
                let _ = fs::remove_dir_all(&spec.store);
            }
            Err(e) => {
                stop_pid(name, pid);
                return Err(e);
            }
        }
    }
}

impl BrokerSpec {
    /// Picks ports (avoiding `avoid`), writes the config under `dir` (`dir/<name>/…` for a
    /// named broker other than the default one). With `tls` (a folder made by
    /// [`pki::generate`]) the broker also accepts TLS on its port, and checks a client
    /// certificate against the CA when one is presented.
    pub(crate) fn new(
        dir: &Path,
        name: &str,
        namesrv_addr: &str,
        avoid: &[u16],
        tls: Option<&Path>,
    ) -> Result<Self> {
        let dir = if name == BROKER_NAME {
            dir.to_path_buf()
        } else {
            dir.join(name)
        };
        let home = dir.join("home");
        let store = store_root(&dir).join("store");
        for d in [&home, &store, &dir.join("auth")] {
            fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        let port = broker_port(avoid)?;
        let ha_port = loop {
            let p = free_port()?;
            if p != port && p != port - 2 && !avoid.contains(&p) {
                break p;
            }
        };
        let config = format!(
            r#"[broker]
listenPort = {port}
brokerIp1 = "127.0.0.1"
brokerIp2 = "127.0.0.1"
namesrvAddr = "{namesrv_addr}"
storePathRootDir = "{store}"
autoCreateTopicEnable = true
# SQL92 subscriptions (off by default, as in Java).
enablePropertyFilter = true
# Register every topic change with the whole topic table (the mapping of a static topic
# included) at once, not only the changed topic's queues: a new static topic's mapping
# otherwise reaches the name server with the periodic registration, up to 40 s later.
enableSingleTopicRegister = false
# Pop check points kept in memory until their messages are acknowledged (a Java knob, off
# by default there too). rocketmq-broker 1.0.0 cannot store a check point (it gives the
# timer the absolute revive time as a relative delay), and retries each one forever: with
# the merge off every popped batch leaked one (326 after the pop tests: 28 % of a core,
# for good); with it on, only batches not acknowledged within 1.5 s of their pop do.
enablePopBufferMerge = true
authConfigPath = "{auth}"

[broker.brokerIdentity]
brokerName = "{name}"
brokerClusterName = "{CLUSTER_NAME}"
brokerId = 0

[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[store]
storePathRootDir = "{store}"
haListenAddress = "127.0.0.1"
haListenPort = {ha_port}
"#,
            store = store.display(),
            auth = dir.join("auth").display(),
        );
        let config = match tls {
            None => config,
            // Permissive: the plaintext clients (and the broker's own registration with the
            // name server, which stays plaintext) keep working.
            Some(tls) => format!(
                r#"{config}
[broker.brokerServerConfig.tlsConfig.server]
mode = "permissive"
needClientAuth = "optional"
authClient = true
trustCertPath = "{ca}"
certPath = "{cert}"
keyPath = "{key}"
"#,
                ca = tls.join(pki::CA).display(),
                cert = tls.join(pki::SERVER_CERT).display(),
                key = tls.join(pki::SERVER_KEY).display(),
            ),
        };
        let config_path = dir.join("broker.toml");
        fs::write(&config_path, config)
            .map_err(|e| format!("write {}: {e}", config_path.display()))?;
        Ok(BrokerSpec {
            name: name.to_owned(),
            addr: format!("127.0.0.1:{port}"),
            namesrv_addr: namesrv_addr.to_owned(),
            log: dir.join("broker.log"),
            home,
            store,
            config_path,
        })
    }

    /// Starts the broker (appending to its log); returns its PID.
    pub(crate) fn spawn(&self, bin: &Path) -> Result<u32> {
        let child = server_command(&bin.join(BROKER_BIN), &self.home, &self.log)?
            .env("NAMESRV_ADDR", &self.namesrv_addr)
            // rocketmq-broker 1.0.0 stores pop check points with the absolute revive time
            // where a relative timer delay belongs, so the timer refuses every one not
            // settled in memory (a message not acknowledged within 1.5 s of its pop) and
            // the pop buffer retries it forever, warning each time: 13.9 GB of log in 15
            // minutes after a 300 000-message pop. The broker stays as users run it; only
            // that warning is silenced.
            .env("RUST_LOG", "info,rocketmq_broker::util::hook_utils=error")
            .arg("-c")
            .arg(&self.config_path)
            .spawn()
            .map_err(|e| format!("start broker {}: {e}", self.name))?;
        Ok(child.id())
    }

    /// Waits (at most 180 s) until the name server lists this broker.
    pub(crate) fn wait_registered(&self, pid: u32) -> Result<()> {
        wait_until(
            &format!("{} registered", self.name),
            Duration::from_secs(180),
            pid,
            &self.log,
            || registered(&self.namesrv_addr, &self.name, &self.addr),
        )
    }
}

/// Stops `pid` (SIGTERM, SIGKILL after 15 s).
pub(crate) fn stop_process(name: &str, pid: u32) {
    stop_pid(name, pid);
}

/// Sends SIGKILL to `pid` and waits until it is gone.
pub(crate) fn kill_process(pid: u32) {
    signal(pid, "-KILL");
    while alive(pid) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The servers recorded in the state file, if both still run.
pub(crate) fn running() -> Result<BrokerEnv> {
    let text = fs::read_to_string(state_file())
        .map_err(|_| "no broker started (run `cargo xtask broker start`)".to_string())?;
    let env: BrokerEnv = serde_json::from_str(&text).map_err(|e| format!("bad state file: {e}"))?;
    if alive(env.namesrv_pid) && alive(env.broker_pid) {
        Ok(env)
    } else {
        Err(format!(
            "broker state found but processes are gone (name server {} alive: {}, broker {} alive: {}); run `cargo xtask broker stop`",
            env.namesrv_pid,
            alive(env.namesrv_pid),
            env.broker_pid,
            alive(env.broker_pid)
        ))
    }
}

/// Starts a name server and then a broker (the broker exits if it cannot register), waits
/// until the broker is registered, and records both PIDs. Idempotent: a running pair is reused.
pub(crate) fn start() -> Result<BrokerEnv> {
    if let Ok(env) = running() {
        eprintln!(
            "==> reusing running broker {} (name server {})",
            env.broker_addr, env.namesrv_addr
        );
        return Ok(env);
    }
    let _ = stop();
    let bin = install()?;
    let dir = run_dir();
    remove_run_dir(&dir);
    let tls = tls_dir(&dir);
    pki::generate(&tls)?;
    let (namesrv_addr, namesrv_pid) = spawn_namesrv(&bin, &dir, None, Some(&tls))?;
    let ns_port = port_of(&namesrv_addr);
    let env_of = |broker_addr: &str, broker_pid| BrokerEnv {
        namesrv_addr: namesrv_addr.clone(),
        broker_addr: broker_addr.to_owned(),
        namesrv_pid,
        broker_pid,
        dir: dir.clone(),
    };
    // The PIDs are recorded before the wait for registration, so `stop` works if it fails.
    let launched = launch(
        &bin,
        &dir,
        BROKER_NAME,
        &namesrv_addr,
        &[ns_port],
        Some(&tls),
        |broker, pid| record(&env_of(&broker.addr, pid)),
    );
    let env = match launched {
        Ok((broker, pid)) => env_of(&broker.addr, pid),
        Err(e) => {
            let _ = stop();
            return Err(e);
        }
    };
    eprintln!(
        "==> name server {} (pid {}), broker {} (pid {}), logs in {}",
        env.namesrv_addr,
        env.namesrv_pid,
        env.broker_addr,
        env.broker_pid,
        dir.display()
    );
    Ok(env)
}

fn stop_pid(name: &str, pid: u32) {
    if !alive(pid) {
        return;
    }
    signal(pid, "-TERM");
    let started = Instant::now();
    while alive(pid) && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        eprintln!("==> {name} (pid {pid}) ignored SIGTERM for 15 s; killing");
        signal(pid, "-KILL");
    }
    eprintln!("==> stopped {name} (pid {pid})");
}

/// Stops the recorded broker, then the name server, by PID (SIGTERM, SIGKILL after 15 s).
pub(crate) fn stop() -> Result<()> {
    let Ok(text) = fs::read_to_string(state_file()) else {
        return Ok(());
    };
    let env: BrokerEnv = serde_json::from_str(&text).map_err(|e| format!("bad state file: {e}"))?;
    stop_pid("broker", env.broker_pid);
    stop_pid("name server", env.namesrv_pid);
    remove_stores(&env.dir);
    fs::remove_file(state_file()).map_err(|e| format!("remove state file: {e}"))?;
    Ok(())
}

/// Prints whether the servers run.
pub(crate) fn status() -> Result<()> {
    match running() {
        Ok(env) => {
            println!(
                "running: name server {} (pid {}), broker {} (pid {})",
                env.namesrv_addr, env.namesrv_pid, env.broker_addr, env.broker_pid
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}
