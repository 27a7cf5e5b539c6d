//! `cargo xtask`: developer tasks for rmq.
//!
//! - `cargo xtask ci`: fmt check, clippy, rustdoc warnings, unit tests, then a real name
//!   server and broker, the integration tests against them, and the broker stopped again
//!   whatever happened; then `chaos --short`.
//! - `cargo xtask chaos [--short]`: faults on a real name server and two broker groups,
//!   consumers behind a loopback fault proxy; a table of loss, duplicates and recovery.
//! - `cargo xtask broker start|stop|status|install`: a real RocketMQ name server and broker
//!   (crates.io `rocketmq-namesrv` / `rocketmq-broker` 1.0.0) on 127.0.0.1.
//!
//! The servers are installed once with `cargo install --locked --root <cache>` into a folder
//! outside the clone (`$RMQ_BROKER_CACHE`, default `~/.cache/rmq/broker-1.0.0-tls`) and
//! reused afterwards. They run with a temporary store under `target/rmq-broker/`.

mod bench;
mod broker;
mod chaos;
mod pki;

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo [COUNT]           the main job: local broker, COUNT (10000) messages produced, consumed by the
                         push consumer (push-consumer/examples/quickstart.rs), a summary printed
  bench [--quick|--backlog]
                         rmq vs rocketmq-client-rust 1.0.0 consuming 100 000 messages (msgs/s, CPU s per
                         1M messages, peak RSS), then a 1 000 000-message backlog run; --quick: 20 000, no backlog;
                         --backlog: only the backlog run
  chaos [--short]        faults on a real name server + two broker groups, consumers behind a fault proxy:
                         a table of produced / consumed / lost / duplicates / recovery per scenario;
                         fails on loss or a missed recovery target (--short: two scenarios)
  ci                     fmt --check, clippy -D warnings, doc -D warnings, unit tests, real-broker tests,
                         chaos --short
  broker install         install rocketmq-namesrv/rocketmq-broker 1.0.0 (feature `tls`) into the cache (once)
  broker start           start a name server and a broker on 127.0.0.1, plaintext and TLS on the same ports
                         (certificates made in target/rmq-broker/tls); prints the name-server address
  broker stop            stop them (by PID)
  broker status          print whether they run
  test-integration       run the real-broker tests against an already started broker

environment:
  RMQ_BROKER_CACHE       where the server binaries are installed (default ~/.cache/rmq/broker-1.0.0-tls)
  RMQ_NAMESRV_ADDR       set by the xtask for the tests: the name-server address
  RMQ_BROKER_ADDR        set by the xtask for the tests: the broker address
  RMQ_TLS_DIR            set by the xtask for the tests: the servers' CA and certificates
  RMQ_CHAOS_ONLY         chaos: run only the scenarios whose name contains this";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["ci"] => ci(),
        ["demo"] => demo(None),
        ["demo", count] => demo(Some(count)),
        ["bench"] => bench::bench(300_000, 1_000_000),
        ["bench", "--quick"] => bench::bench(20_000, 0),
        ["bench", "--backlog"] => bench::bench(0, 1_000_000),
        ["chaos"] => chaos::chaos(false).map(drop),
        ["chaos", "--short"] => chaos::chaos(true).map(drop),
        ["broker", "install"] => broker::install().map(|_| ()),
        ["broker", "start"] => broker::start().map(|env| {
            println!("{}", env.namesrv_addr);
            eprintln!(
                "export RMQ_NAMESRV_ADDR={} RMQ_BROKER_ADDR={} RMQ_TLS_DIR={}",
                env.namesrv_addr,
                env.broker_addr,
                env.tls_dir().display()
            );
        }),
        ["broker", "stop"] => broker::stop(),
        ["broker", "status"] => broker::status(),
        ["test-integration"] => broker::running()
            .and_then(|env| integration_tests(&env))
            .map(drop),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Removes the sources cargo extracted from `cargo package`'s temporary registry on an
/// earlier run (`$CARGO_HOME/registry/src/-<hash>/rmq-*`). Cargo keys them by the
/// registry's path and the crate's name and version only, so a second run in the same
/// checkout would verify each crate against the first run's copy of its dependencies.
fn forget_packaged_sources() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    // Local registries have no host name: their folder is "-<hash>".
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for krate in std::fs::read_dir(registry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if krate.file_name().to_string_lossy().starts_with("rmq-") {
                let _ = std::fs::remove_dir_all(krate.path());
            }
        }
    }
}

/// An error message for the user; the xtask prints it and exits 1.
pub(crate) type Result<T, E = String> = std::result::Result<T, E>;

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {step}");
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: could not run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step}: failed ({status})"))
    }
}

/// Test counts summed over `cargo test` runs.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// Runs a `cargo test` command, echoing its output and summing its `test result:` lines.
fn run_tests(step: &str, cmd: &mut Command) -> Result<Tally> {
    use std::io::{BufRead, BufReader};
    eprintln!("==> {step}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{step}: could not run: {e}"))?;
    let mut tally = Tally::default();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{step}: reading output: {e}"))?;
        println!("{line}");
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next())
                    && let Ok(n) = n.parse::<u64>()
                {
                    match what {
                        "passed" => tally.passed += n,
                        "failed" => tally.failed += n,
                        "ignored" => tally.ignored += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{step}: {e}"))?;
    if status.success() {
        Ok(tally)
    } else {
        Err(format!(
            "{step}: failed ({status}); {} passed, {} failed",
            tally.passed, tally.failed
        ))
    }
}

fn ci() -> Result<()> {
    let started = std::time::Instant::now();
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "cargo clippy -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "cargo doc -D warnings",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "-q"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // Every library crate and the CLI package and build as a user would get them from
    // crates.io (in dependency order, each against the packaged others).
    forget_packaged_sources();
    run(
        "cargo package",
        cargo().args([
            "package",
            "--workspace",
            "--exclude",
            "rmq-xtask",
            "--allow-dirty",
            "-q",
        ]),
    )?;
    let unit = run_tests(
        "unit tests",
        cargo().args(["test", "--workspace", "--no-fail-fast"]),
    )?;
    // Build the integration tests before the broker starts, so its lifetime is test time only.
    run(
        "build integration tests",
        cargo().args(["test", "--workspace", "--no-run"]),
    )?;
    broker::install()?;
    let env = broker::start()?;
    let tests = integration_tests(&env);
    let stopped = broker::stop();
    let integration = tests?;
    stopped?;
    // The short fault run: two broker groups behind a fault proxy.
    let chaos = chaos::chaos(true)?;
    eprintln!(
        "==> ci passed in {:.0} s: {} unit tests, {} real-broker tests, {} chaos scenarios",
        started.elapsed().as_secs_f64(),
        unit.passed,
        integration.passed,
        chaos
    );
    // The closing line CI reads: every test run in the three stages.
    println!(
        "ci: {} passed, {} failed, {} skipped",
        unit.passed + integration.passed + chaos as u64,
        unit.failed + integration.failed,
        unit.ignored.saturating_sub(integration.passed)
    );
    Ok(())
}

/// The main job: a local broker, COUNT messages of 1 KiB produced with `rmq produce`,
/// consumed with `rmq consume` (the push consumer) with a progress line, the summary
/// printed, the broker stopped again.
fn demo(count: Option<&str>) -> Result<()> {
    let count = count.unwrap_or("100000");
    count
        .parse::<u64>()
        .map_err(|_| format!("demo: COUNT must be a number, not {count:?}"))?;
    run(
        "build rmq (release)",
        cargo().args(["build", "--release", "-p", "rmq-cli"]),
    )?;
    let env = broker::start()?;
    let rmq = broker::workspace_root().join("target/release/rmq");
    let topic = format!(
        "demo_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let result = run(
        &format!("rmq produce: {count} messages of 1 KiB to {topic} (8 queues)"),
        Command::new(&rmq).args([
            "--namesrv",
            &env.namesrv_addr,
            "produce",
            "--topic",
            &topic,
            "--count",
            count,
            "--size",
            "1024",
            "--create-queues",
            "8",
        ]),
    )
    .and_then(|_| {
        run(
            "rmq consume (push consumer), summary on the last line",
            Command::new(&rmq).args([
                "--namesrv",
                &env.namesrv_addr,
                "consume",
                "--topic",
                &topic,
                "--from",
                "first",
                "--count",
                count,
                "--idle-exit",
                "30",
                "--format",
                "summary",
            ]),
        )
    });
    let stopped = broker::stop();
    result?;
    stopped
}

/// Runs the tests marked `#[ignore = "real broker …"]` with the broker's addresses exported.
/// The examples run against the broker: the two that plug user code into a consumer and
/// the message stream, and pop mode (each fails unless every message was consumed exactly
/// as it claims).
const EXAMPLES: [&str; 4] = ["custom_strategy", "custom_offset_store", "stream", "pop"];

fn integration_tests(env: &broker::BrokerEnv) -> Result<Tally> {
    let mut tally = run_tests(
        "integration tests against the real broker",
        cargo()
            .args([
                "test",
                "--workspace",
                "--no-fail-fast",
                "--",
                "--ignored",
                "--test-threads=2",
            ])
            .env("RMQ_NAMESRV_ADDR", &env.namesrv_addr)
            .env("RMQ_BROKER_ADDR", &env.broker_addr)
            .env("RMQ_TLS_DIR", env.tls_dir()),
    )?;
    for example in EXAMPLES {
        run(
            &format!("example {example} against the real broker"),
            cargo()
                .args(["run", "-q", "-p", "rmq-push-consumer", "--example", example])
                .args(["--", "300"])
                .env("RMQ_NAMESRV_ADDR", &env.namesrv_addr),
        )?;
        tally.passed += 1;
    }
    Ok(tally)
}
