//! `cargo xtask bench`: a backlog of 1 KiB messages consumed by whole processes — msgs/s,
//! CPU µs per message (user + sys of the consumer process), heap allocations per message
//! (rmq, built with `alloc-stats`) and peak RSS — for rmq and, in the same run, for a
//! consumer built on `rocketmq-client-rust` 1.0.0 (`bench/peer-rocketmq-client-rust`, its
//! own workspace), and for `rmq consume --stream` (the message stream with ack handles
//! instead of the listener), and for `rmq consume --pop` (pop mode). `RMQ_BENCH_BASELINE=<path to another rmq binary>` measures that build
//! too, on its own topic, in the same run (before/after figures). Then the backlog run:
//! 1 000 000 messages consumed by `rmq consume` with default settings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::broker::{self, BrokerEnv};
use crate::{Result, run};

/// What one consumer process used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) wall_s: f64,
    /// User + sys.
    pub(crate) cpu_s: f64,
    /// User alone: the part a change to rmq's own code moves; sys varies with how often
    /// the process sleeps, which follows the broker's timing.
    pub(crate) user_s: f64,
    pub(crate) max_rss_kib: i64,
}

/// Runs `cmd` to completion and returns its exit success and resource usage (`wait4`).
pub(crate) fn measure(cmd: &mut Command) -> Result<(bool, Usage, String)> {
    let started = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    // Read stdout on a thread so the child never blocks on a full pipe.
    let mut stdout = child.stdout.expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is a plain C struct of integers, for which all-zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unreaped child; status and usage point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let wall_s = started.elapsed().as_secs_f64();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let out = reader.join().unwrap_or_default();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok((
        ok,
        Usage {
            wall_s,
            cpu_s: tv(usage.ru_utime) + tv(usage.ru_stime),
            user_s: tv(usage.ru_utime),
            max_rss_kib: usage.ru_maxrss,
        },
        out,
    ))
}

fn rmq_bin() -> PathBuf {
    broker::workspace_root().join("target/release/rmq")
}

fn produce(env: &BrokerEnv, topic: &str, count: u64) -> Result<()> {
    run(
        &format!("produce {count} messages of 1 KiB to {topic}"),
        Command::new(rmq_bin()).args([
            "--namesrv",
            &env.namesrv_addr,
            "produce",
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--size",
            "1024",
            "--create-queues",
            "8",
        ]),
    )
}

fn rmq_consume(env: &BrokerEnv, topic: &str, count: u64) -> Command {
    rmq_consume_group(&rmq_bin(), env, topic, &format!("{topic}_group"), count)
}

/// `rmq consume` of `topic` by `group` (a fresh group reads the topic from its start).
fn rmq_consume_group(bin: &Path, env: &BrokerEnv, topic: &str, group: &str, count: u64) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--namesrv",
        &env.namesrv_addr,
        "consume",
        "--topic",
        topic,
        "--group",
        group,
        "--from",
        "first",
        "--count",
        &count.to_string(),
        "--idle-exit",
        "60",
        "--format",
        "summary",
        "--quiet",
    ]);
    c
}

fn peer_dir() -> PathBuf {
    broker::workspace_root().join("bench/peer-rocketmq-client-rust")
}

fn peer_bin(dir: &Path) -> PathBuf {
    dir.join("target/release/rmq-bench-peer-rocketmq-client-rust")
}

/// Rounds of the rmq listener run, alternating with the baseline's. On a two-core machine
/// that also runs the broker, single runs of the same build differ by up to a fifth (five
/// rounds have ranged 1.51–2.01 µs a message), so the median needs more than five; a
/// round takes a few seconds.
const ROUNDS: usize = 9;

/// The run with the median CPU time (the upper one of two middles).
fn median_by_cpu(runs: &[(Usage, Option<f64>)]) -> Option<(Usage, Option<f64>)> {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.0.cpu_s.total_cmp(&b.0.cpu_s));
    sorted.get(sorted.len() / 2).copied()
}

/// Each run's CPU µs per message, in run order, and their range.
fn spread(runs: &[(Usage, Option<f64>)], count: u64) -> String {
    let us: Vec<f64> = runs
        .iter()
        .map(|(u, _)| u.cpu_s * 1_000_000.0 / count as f64)
        .collect();
    let lo = us.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = us.iter().copied().fold(0.0, f64::max);
    let each: Vec<String> = us.iter().map(|v| format!("{v:.2}")).collect();
    format!("{} (range {lo:.2}–{hi:.2})", each.join(", "))
}

/// The median of `values` (the upper one of two middles); `None` when there are none.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// The median of the runs' user CPU µs per message.
fn median_user_us(runs: &[(Usage, Option<f64>)], count: u64) -> f64 {
    let us: Vec<f64> = runs
        .iter()
        .map(|(u, _)| u.user_s * 1_000_000.0 / count as f64)
        .collect();
    median(&us).unwrap_or(f64::NAN)
}

/// `allocations` of `rmq consume`'s summary (the last stdout line), per message.
fn allocations_per_msg(out: &str, count: u64) -> Option<f64> {
    let last = out.lines().last()?;
    let v: serde_json::Value = serde_json::from_str(last).ok()?;
    Some(v.get("allocations")?.as_f64()? / count as f64)
}

fn line(name: &str, count: u64, u: &Usage, allocs: Option<f64>) -> String {
    format!(
        "| {name} | {:.0} | {:.2} | {} | {:.1} | {:.1} |",
        count as f64 / u.wall_s,
        u.cpu_s * 1_000_000.0 / count as f64,
        allocs.map_or("–".into(), |a| format!("{a:.2}")),
        u.max_rss_kib as f64 / 1024.0,
        u.wall_s
    )
}

/// The comparison run and the backlog run.
pub(crate) fn bench(count: u64, backlog: u64) -> Result<()> {
    run(
        "build rmq (release, counting allocations)",
        crate::cargo().args([
            "build",
            "--release",
            "-p",
            "rmq-cli",
            "--features",
            "alloc-stats",
        ]),
    )?;
    let baseline = std::env::var_os("RMQ_BENCH_BASELINE").map(PathBuf::from);
    let dir = peer_dir();
    if count > 0 {
        run(
            "build the rocketmq-client-rust 1.0.0 peer (release, own workspace)",
            crate::cargo()
                .args(["build", "--release", "--manifest-path"])
                .arg(dir.join("Cargo.toml"))
                .env_remove("CARGO_TARGET_DIR"),
        )?;
    }
    let env = broker::start()?;
    let result = (|| -> Result<Vec<String>> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let (t_rmq, t_peer) = (format!("bench_rmq_{stamp}"), format!("bench_peer_{stamp}"));
        let mut rows = Vec::new();
        // The listener run's usage and allocations, for the pop comparison at the end.
        let mut pull_usage: Option<(Usage, Option<f64>)> = None;
        if count > 0 {
            produce(&env, &t_rmq, count)?;
            produce(&env, &t_peer, count)?;
            let t_base = format!("bench_base_{stamp}");
            if baseline.is_some() {
                produce(&env, &t_base, count)?;
            }
            // The listener run and the baseline alternate for ROUNDS rounds (each round a
            // fresh group reading the same backlog), so that both see the same machine; the
            // run with the median CPU of each is reported, with the spread.
            let mut rmq_runs = Vec::new();
            let mut base_runs = Vec::new();
            // rmq / baseline CPU within each round: the two runs of a round share the
            // machine's drift (the rounds of both move up and down together by a tenth and
            // more), which a ratio of the medians keeps and a median of these ratios does not.
            let mut paired = Vec::new();
            for round in 0..ROUNDS {
                eprintln!("==> rmq consume of {count}, round {}", round + 1);
                let group = format!("{t_rmq}_group_{round}");
                let (ok, u, out) = measure(&mut rmq_consume_group(
                    &rmq_bin(),
                    &env,
                    &t_rmq,
                    &group,
                    count,
                ))?;
                eprintln!("{}", out.trim());
                if !ok {
                    return Err("rmq consume failed".into());
                }
                rmq_runs.push((u, allocations_per_msg(&out, count)));
                if let Some(bin) = &baseline {
                    eprintln!(
                        "==> baseline {} consume of {count}, round {}",
                        bin.display(),
                        round + 1
                    );
                    let group = format!("{t_base}_group_{round}");
                    let (ok, u, out) =
                        measure(&mut rmq_consume_group(bin, &env, &t_base, &group, count))?;
                    eprintln!("{}", out.trim());
                    if ok {
                        if let Some((r, _)) = rmq_runs.last() {
                            paired.push(r.cpu_s / u.cpu_s);
                        }
                        base_runs.push((u, allocations_per_msg(&out, count)));
                    }
                }
            }
            let (rmq, rmq_allocs) = median_by_cpu(&rmq_runs).ok_or("no rmq run")?;
            pull_usage = Some((rmq, rmq_allocs));
            // The same build with two runtime threads (the CLI's default is one).
            let t_two = format!("bench_two_{stamp}");
            produce(&env, &t_two, count)?;
            eprintln!("==> rmq consume of {count}, TOKIO_WORKER_THREADS=2");
            let (ok, two, out) =
                measure(rmq_consume(&env, &t_two, count).env("TOKIO_WORKER_THREADS", "2"))?;
            eprintln!("{}", out.trim());
            if !ok {
                return Err("rmq consume (2 threads) failed".into());
            }
            let two_allocs = allocations_per_msg(&out, count);
            // The message stream (ack handles) instead of the listener, same settings.
            let t_stream = format!("bench_stream_{stamp}");
            produce(&env, &t_stream, count)?;
            eprintln!("==> rmq consume --stream of {count}");
            // Calls of 32 (the library's default; --count alone would make them 1).
            let (ok, stream, out) = measure(rmq_consume(&env, &t_stream, count).args([
                "--stream",
                "--stream-batch-size",
                "32",
            ]))?;
            eprintln!("{}", out.trim());
            if !ok {
                return Err("rmq consume --stream failed".into());
            }
            let stream_allocs = allocations_per_msg(&out, count);
            let base = median_by_cpu(&base_runs);
            eprintln!("==> rocketmq-client-rust consume of {count}");
            let (ok, peer, out) = measure(Command::new(peer_bin(&dir)).args([
                &env.namesrv_addr,
                &t_peer,
                &format!("{t_peer}_group"),
                &count.to_string(),
            ]))?;
            eprintln!("{}", out.trim());
            rows.push(format!("Load: {count} messages of 1 KiB waiting in 8 queues, consumed from the first offset by a fresh group."));
            rows.push(String::new());
            rows.push("| consumer | msgs/s | CPU µs per msg | allocations per msg | peak RSS MiB | wall s |".into());
            rows.push("|---|---|---|---|---|---|".into());
            rows.push(line(
                "rmq (`rmq consume`, 1 runtime thread)",
                count,
                &rmq,
                rmq_allocs,
            ));
            rows.push(line(
                "rmq (`rmq consume`, TOKIO_WORKER_THREADS=2)",
                count,
                &two,
                two_allocs,
            ));
            rows.push(line(
                "rmq (`rmq consume --stream --stream-batch-size 32`: ack handles, 1 runtime thread)",
                count,
                &stream,
                stream_allocs,
            ));
            if let Some((u, a)) = &base {
                rows.push(line("rmq baseline (`RMQ_BENCH_BASELINE`)", count, u, *a));
            }
            if ok {
                rows.push(line("rocketmq-client-rust 1.0.0", count, &peer, None));
                rows.push(String::new());
                rows.push(format!(
                    "Ratios rmq / rocketmq-client-rust: throughput {:.2}x, CPU per message {:.2}x, peak RSS {:.2}x.",
                    peer.wall_s / rmq.wall_s,
                    rmq.cpu_s / peer.cpu_s,
                    rmq.max_rss_kib as f64 / peer.max_rss_kib as f64
                ));
            } else {
                rows.push(
                    "| rocketmq-client-rust 1.0.0 | failed: see the log above | | | | |".into(),
                );
            }
            let rmq_user = median_user_us(&rmq_runs, count);
            rows.push(format!(
                "rmq listener rows: the median-CPU run of {ROUNDS} alternating rounds; CPU µs per msg over the rounds: rmq {}; median user CPU {rmq_user:.2} µs per msg.",
                spread(&rmq_runs, count)
            ));
            if let Some((u, _)) = &base {
                let base_user = median_user_us(&base_runs, count);
                rows.push(format!(
                    "Ratios rmq / baseline (medians): CPU per message {:.2}x, user CPU {:.2}x ({rmq_user:.2} against {base_user:.2} µs), peak RSS {:.2}x; baseline CPU µs per msg over the rounds: {}.",
                    rmq.cpu_s / u.cpu_s,
                    rmq_user / base_user,
                    rmq.max_rss_kib as f64 / u.max_rss_kib as f64,
                    spread(&base_runs, count)
                ));
                if let Some(m) = median(&paired) {
                    let lo = paired.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = paired.iter().copied().fold(0.0, f64::max);
                    rows.push(format!(
                        "Paired by round (each rmq run against the baseline run right after it, which shares its drift): CPU per message {m:.2}x median over {} rounds ({lo:.2}–{hi:.2}).",
                        paired.len()
                    ));
                }
            }
            rows.push(format!(
                "Stream / listener (both 1 runtime thread): CPU per message {:.2}x, throughput {:.2}x (target: within 10 %).",
                stream.cpu_s / rmq.cpu_s,
                rmq.wall_s / stream.wall_s
            ));
        }
        if backlog > 0 {
            let t_backlog = format!("bench_backlog_{stamp}");
            produce(&env, &t_backlog, backlog)?;
            eprintln!("==> backlog: rmq consume of {backlog} with default settings");
            let (ok, u, out) = measure(&mut rmq_consume(&env, &t_backlog, backlog))?;
            eprintln!("{}", out.trim());
            rows.push(String::new());
            rows.push(format!(
                "Backlog: {backlog} messages of 1 KiB waiting, `rmq consume` with default settings: {}, {:.0} msgs/s, peak RSS {:.1} MiB (target < 128 MiB), {:.2} CPU µs per msg, {} allocations per msg.",
                if ok { "all consumed" } else { "FAILED" },
                backlog as f64 / u.wall_s,
                u.max_rss_kib as f64 / 1024.0,
                u.cpu_s * 1_000_000.0 / backlog as f64,
                allocations_per_msg(&out, backlog).map_or("–".into(), |a| format!("{a:.2}"))
            ));
        }
        if let Some(pull) = pull_usage {
            // Last: the rocketmq-rust 1.0 broker keeps retrying pop check points it
            // cannot store (see broker.rs), which must not weigh on the other runs.
            // Pop mode (the broker hands out messages, each acknowledged), same settings.
            let t_pop = format!("bench_pop_{stamp}");
            produce(&env, &t_pop, count)?;
            eprintln!("==> rmq consume --pop of {count}");
            let (ok, pop, out) = measure(rmq_consume(&env, &t_pop, count).arg("--pop"))?;
            eprintln!("{}", out.trim());
            if !ok {
                return Err("rmq consume --pop failed".into());
            }
            let pop_allocs = allocations_per_msg(&out, count);
            rows.push(String::new());
            rows.push("Pop next to pull, same load, measured after the runs above:".into());
            rows.push(String::new());
            rows.push("| consumer | msgs/s | CPU µs per msg | allocations per msg | peak RSS MiB | wall s |".into());
            rows.push("|---|---|---|---|---|---|".into());
            rows.push(line(
                "rmq (`rmq consume`, 1 runtime thread)",
                count,
                &pull.0,
                pull.1,
            ));
            rows.push(line(
                "rmq (`rmq consume --pop`: pop mode, 1 runtime thread)",
                count,
                &pop,
                pop_allocs,
            ));
            rows.push(String::new());
            rows.push(format!(
                "Pop / pull (both the listener, 1 runtime thread): CPU per message {:.2}x, throughput {:.2}x.",
                pop.cpu_s / pull.0.cpu_s,
                pull.0.wall_s / pop.wall_s
            ));
        }
        Ok(rows)
    })();
    let stopped = broker::stop();
    let rows = result?;
    stopped?;
    println!("{}", rows.join("\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_upper_middle() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[0.9, 1.1, 1.0, 1.2]), Some(1.1));
    }
}
