//! The `rmq` binary against the real broker (run by `cargo xtask ci`).

use std::io::Write;
use std::process::{Command, Stdio};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need a real broker; run them with `cargo xtask ci` or `cargo xtask test-integration`")
    })
}

fn rmq() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rmq"));
    c.arg("--namesrv").arg(env("RMQ_NAMESRV_ADDR"));
    c
}

/// A successful run's stdout, one JSON value per line, and the text itself.
fn json_lines(out: std::process::Output) -> (Vec<serde_json::Value>, String) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, text)
}

fn topic() -> String {
    format!(
        "rmq_cli_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn produce_from_stdin_then_consume_as_json_with_a_summary() {
    let topic = topic();
    let mut p = rmq()
        .args([
            "produce",
            "--topic",
            &topic,
            "--tag",
            "TagC",
            "--keys",
            "k1 k2",
            "--create-queues",
            "2",
            "--batch",
            "4",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = p.stdin.take().unwrap();
        for i in 0..10 {
            writeln!(stdin, "line-{i}").unwrap();
        }
        // A body that is not UTF-8 comes back base64-encoded.
        stdin.write_all(&[0xff, 0xfe, b'\n']).unwrap();
    }
    assert!(p.wait().unwrap().success());

    let out = rmq()
        .args([
            "consume",
            "--topic",
            &topic,
            "--from",
            "first",
            "--count",
            "11",
            "--idle-exit",
            "30",
            "--format",
            "json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let (lines, text) = json_lines(out);
    assert_eq!(lines.len(), 12, "11 messages and the summary:\n{text}");
    let (msgs, summary) = lines.split_at(11);
    let mut bodies: Vec<String> = Vec::new();
    for m in msgs {
        assert_eq!(m["topic"], topic.as_str());
        assert_eq!(m["tags"], "TagC");
        assert_eq!(m["keys"], serde_json::json!(["k1", "k2"]));
        for field in [
            "queueId",
            "queueOffset",
            "msgId",
            "bornTimestamp",
            "reconsumeTimes",
            "properties",
        ] {
            assert!(!m[field].is_null(), "{field} missing in {m}");
        }
        if m["bodyEncoding"] == "base64" {
            assert_eq!(m["body"], "//4=");
        } else {
            bodies.push(m["body"].as_str().unwrap().to_owned());
        }
    }
    bodies.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("line-{i}")).collect();
    want.sort();
    assert_eq!(bodies, want);
    let s = &summary[0];
    assert_eq!(s["received"], 11);
    assert_eq!(s["unique"], 11);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(
        s["per_queue"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        11
    );

    // route and lag answer; a missing topic is one line on stderr and exit code 1.
    let route = rmq().args(["route", &topic]).output().unwrap();
    assert!(route.status.success());
    let r: serde_json::Value = serde_json::from_slice(&route.stdout).unwrap();
    assert_eq!(r["queueDatas"][0]["readQueueNums"], 2);
    let missing = rmq()
        .args(["route", "no_such_topic_rmq_cli"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).lines().count(),
        1,
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let pull = rmq()
        .args([
            "pull",
            "--topic",
            &topic,
            "--queue-id",
            "0",
            "--count",
            "2",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(pull.status.success());
    assert_eq!(String::from_utf8_lossy(&pull.stdout).lines().count(), 2);
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn idle_exit_before_count_is_exit_code_3() {
    let topic = topic();
    let p = rmq()
        .args([
            "produce",
            "--topic",
            &topic,
            "--count",
            "3",
            "--create-queues",
            "1",
        ])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let out = rmq()
        .args([
            "consume",
            "--topic",
            &topic,
            "--from",
            "first",
            "--count",
            "5",
            "--idle-exit",
            "3",
            "--format",
            "summary",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert_eq!(summary["unique"], 3);
}

/// Committed offsets of `group` on `topic` summed over its queues, from `rmq lag`.
fn committed(group: &str, topic: &str) -> i64 {
    let out = rmq()
        .args(["lag", "--group", group, "--topic", topic])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(topic))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols[4].parse::<i64>().unwrap_or(0)
        })
        .sum()
}

fn produce(topic: &str, count: u32, queues: u32) {
    let p = rmq()
        .args([
            "produce",
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--size",
            "16",
            "--batch",
            "1",
            "--create-queues",
            &queues.to_string(),
        ])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn count_prints_exactly_n_and_commits_nothing_past_them() {
    let topic = topic();
    let group = format!("g_{topic}");
    produce(&topic, 200, 4);
    let mut ids = std::collections::HashSet::new();
    for run in 1..=3 {
        let out = rmq()
            .args([
                "consume", "--topic", &topic, "--group", &group, "--from", "first", "--count", "5",
                "--format", "json", "--quiet",
            ])
            .output()
            .unwrap();
        let (lines, text) = json_lines(out);
        assert_eq!(
            lines.len(),
            6,
            "run {run}: 5 messages and the summary:\n{text}"
        );
        for m in &lines[..5] {
            assert!(
                ids.insert(m["msgId"].as_str().unwrap().to_owned()),
                "run {run} printed {m} again"
            );
        }
        // Everything printed is committed, and nothing else: the offsets sum to what
        // the runs printed (the queues start at 0).
        assert_eq!(committed(&group, &topic), 5 * run, "after run {run}");
    }
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn pop_consumes_every_message_once_and_acknowledges_it() {
    let topic = topic();
    let group = format!("g_{topic}");
    produce(&topic, 60, 2);
    for stream in [false, true] {
        let group = format!("{group}_{stream}");
        let mut args = vec![
            "consume", "--pop", "--topic", &topic, "--group", &group, "--from", "first", "--count",
            "60", "--format", "json", "--quiet",
        ];
        if stream {
            args.push("--stream");
        }
        let (lines, text) = json_lines(rmq().args(&args).output().unwrap());
        assert_eq!(lines.len(), 61, "60 messages and the summary:\n{text}");
        let ids: std::collections::HashSet<&str> = lines[..60]
            .iter()
            .map(|m| m["msgId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 60, "{text}");
        // All acknowledged: the next run finds nothing and stops idle (exit 3).
        let again = rmq()
            .args([
                "consume",
                "--pop",
                "--topic",
                &topic,
                "--group",
                &group,
                "--count",
                "1",
                "--idle-exit",
                "3",
                "--format",
                "summary",
                "--quiet",
            ])
            .output()
            .unwrap();
        assert_eq!(
            again.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    // Pop cannot be orderly or broadcast.
    let out = rmq()
        .args(["consume", "--pop", "--orderly", "--topic", &topic])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn a_missing_topic_fails_and_pull_past_the_end_says_so() {
    let topic = topic();
    let missing = rmq()
        .args(["consume", "--topic", &topic, "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        format!("rmq: no route for topic {topic}")
    );
    let lag = rmq()
        .args(["lag", "--group", "g", "--topic", &topic])
        .output()
        .unwrap();
    assert_eq!(lag.status.code(), Some(1), "lag of a missing topic");

    produce(&topic, 3, 1);
    let pull = |offset: &str, format: &str| {
        rmq()
            .args([
                "pull",
                "--topic",
                &topic,
                "--queue-id",
                "0",
                "--offset",
                offset,
                "--format",
                format,
            ])
            .output()
            .unwrap()
    };
    // The broker indexes stored messages asynchronously: wait (bounded) until all three
    // are readable before asking about the end.
    let mut summary = pull("1", "summary");
    for _ in 0..50 {
        let s: serde_json::Value =
            serde_json::from_slice(summary.stdout.trim_ascii()).unwrap_or_default();
        if summary.status.success() && s["messages"] == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        summary = pull("1", "summary");
    }
    assert!(summary.status.success());
    let s: serde_json::Value = serde_json::from_slice(summary.stdout.trim_ascii()).unwrap();
    assert_eq!(s["messages"], 2);
    assert_eq!(s["first_offset"], 1);
    assert_eq!(s["next_offset"], 3);
    let at_end = pull("3", "text");
    assert!(
        at_end.status.success(),
        "{}",
        String::from_utf8_lossy(&at_end.stderr)
    );
    assert!(at_end.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&at_end.stderr).contains("no message at offset 3"),
        "{}",
        String::from_utf8_lossy(&at_end.stderr)
    );
    let past = pull("50", "text");
    assert_eq!(past.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&past.stderr).contains("offset 50 is outside"),
        "{}",
        String::from_utf8_lossy(&past.stderr)
    );
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn sigterm_stops_cleanly_and_commits_what_was_printed() {
    use std::io::BufRead;
    let topic = topic();
    let group = format!("g_{topic}");
    produce(&topic, 50, 2);
    let mut child = rmq()
        .args([
            "consume", "--topic", &topic, "--group", &group, "--from", "first", "--format", "json",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = 0;
    while printed < 50 {
        lines.next().expect("a message line").unwrap();
        printed += 1;
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM ran the clean shutdown");
    assert_eq!(lines.count(), 0, "nothing printed after the 50");
    assert_eq!(
        committed(&group, &topic),
        50,
        "every printed message committed"
    );
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn broker_addr_map_decides_what_is_dialed() {
    let topic = topic();
    produce(&topic, 1, 1);
    let broker = env("RMQ_BROKER_ADDR");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let consume = |map: &str| {
        rmq()
            .args(["--broker-addr-map", map])
            .args([
                "consume", "--topic", &topic, "--from", "first", "--count", "1", "--quiet",
                "--format", "summary",
            ])
            .output()
            .unwrap()
    };
    // Mapped to a port where nothing listens: the one broker is unreachable, exit 1.
    let away = consume(&format!("{broker}={closed}"));
    assert_eq!(away.status.code(), Some(1));
    let err = String::from_utf8_lossy(&away.stderr);
    assert!(err.contains(&closed), "{err}");
    // Mapped to itself: consumed.
    let same = consume(&format!("{broker}={broker}"));
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
}

/// `GET /metrics` from `addr`, the body as text.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn consume_serves_its_metrics_in_prometheus_text() {
    use std::io::BufRead;
    let topic = topic();
    let group = format!("g_{topic}");
    produce(&topic, 20, 2);
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut child = rmq()
        .args([
            "consume",
            "--topic",
            &topic,
            "--group",
            &group,
            "--from",
            "first",
            "--format",
            "json",
            "--quiet",
            "--metrics-addr",
            &addr,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..20 {
        lines.next().expect("a message line").unwrap();
    }
    let consumed_ok = |text: &str| -> Option<f64> {
        text.lines()
            .find(|l| {
                l.starts_with("rmq_consumed_total{")
                    && l.contains(&format!("group=\"{group}\""))
                    && l.contains("result=\"ok\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    // The counter moves just after the listener printed; scrape until it shows all 20
    // (bounded: 5 s).
    let mut text = scrape(&addr);
    for _ in 0..50 {
        if consumed_ok(&text) == Some(20.0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        text = scrape(&addr);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(text.starts_with("HTTP/1."), "{text}");
    assert_eq!(consumed_ok(&text), Some(20.0), "{text}");
    for name in [
        "rmq_pulled_total",
        "rmq_pull_latency_seconds",
        "rmq_queue_lag",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
}

/// `rmq status --format json` for `group`.
fn status_json(group: &str) -> serde_json::Value {
    let out = rmq()
        .args(["status", "--group", group, "--format", "json"])
        .output()
        .unwrap();
    let (lines, _) = json_lines(out);
    lines.into_iter().next().expect("one JSON object")
}

/// `rmq status` of `group`, asked every 500 ms until `settled` holds for `topic`'s queues
/// and the whole status (at most 40 s).
fn settled_status(
    group: &str,
    topic: &str,
    settled: impl Fn(&serde_json::Value, &[&serde_json::Value]) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let s = status_json(group);
        let queues: Vec<&serde_json::Value> = s["queues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["topic"] == topic)
            .collect();
        if settled(&s, &queues) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "never settled: {s:#}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// A member of `group` consuming `topic` with `expression` until killed.
fn member(topic: &str, group: &str, expression: &str) -> std::process::Child {
    rmq()
        .args([
            "consume",
            "--topic",
            topic,
            "--group",
            group,
            "--expression",
            expression,
            "--from",
            "first",
            "--format",
            "summary",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

fn doctor(extra: &[&str], group: &str, topic: &str) -> (Option<i32>, String, String) {
    let out = rmq()
        .args(extra)
        .args(["doctor", "--group", group, "--topic", topic])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn status_and_doctor_count_popped_queues_as_owned() {
    let topic = topic();
    let group = format!("g_{topic}");
    produce(&topic, 20, 2);
    let popper = rmq()
        .args([
            "consume", "--pop", "--topic", &topic, "--group", &group, "--from", "first",
            "--format", "summary", "--quiet",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Both queues are popped by the one member (queue id -1 in its mqPopTable) and
    // everything is consumed.
    let status = settled_status(&group, &topic, |s, queues| {
        queues.len() == 2
            && queues
                .iter()
                .all(|q| q["popped_by"].as_array().unwrap().len() == 1)
            && s["total_lag"] == 0
    });
    let member = status["members"][0]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for q in status["queues"].as_array().unwrap() {
        if q["topic"] == topic.as_str() {
            assert_eq!(q["popped_by"][0], member.as_str(), "{q:#}");
            assert!(q["held_by"].as_array().unwrap().is_empty(), "{q:#}");
        }
    }
    // Doctor does not call popped queues unowned.
    let (code, out, err) = doctor(&[], &group, &topic);
    assert!(
        !out.lines()
            .any(|l| l.contains("FAIL") && l.contains("queue owners")),
        "{out}\n{err}"
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    stop(popper);
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn status_shows_both_members_their_queues_and_lag_and_doctor_names_what_fails() {
    let topic = topic();
    let group = format!("g_{topic}");
    produce(&topic, 40, 4);
    let a = member(&topic, &group, "*");
    let b = member(&topic, &group, "*");
    // The two members join and split the four queues (a rebalance or two).
    let status = settled_status(&group, &topic, |s, queues| {
        s["members"].as_array().unwrap().len() == 2
            && queues.len() == 4
            && queues
                .iter()
                .all(|q| q["held_by"].as_array().unwrap().len() == 1)
            && s["total_lag"] == 0
    });
    let members = status["members"].as_array().unwrap();
    let ids: Vec<&str> = members
        .iter()
        .map(|m| m["client_id"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    let mut owned = 0;
    for m in members {
        assert_eq!(m["subscriptions"][topic.as_str()], "*", "{m:#}");
        owned += m["queues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["topic"] == topic.as_str())
            .count();
        assert!(m["status"].is_object(), "{m:#}");
    }
    assert_eq!(owned, 4, "each queue owned by exactly one member");
    for q in status["queues"].as_array().unwrap() {
        if q["topic"] == topic.as_str() {
            assert_eq!(q["lag"], 0, "{q:#}");
            assert_eq!(q["max_offset"], q["committed_offset"], "{q:#}");
            let holder = q["held_by"][0]["client_id"].as_str().unwrap();
            assert!(ids.contains(&holder), "{q:#}");
        }
    }
    // The table form names both members too.
    let text = rmq().args(["status", "--group", &group]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(ids.iter().all(|id| text.contains(id)), "{text}");
    assert!(text.contains("total lag: 0"), "{text}");

    // Healthy: every check passes.
    let (code, out, err) = doctor(&[], &group, &topic);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("PASS  subscriptions"), "{out}");
    // A wrong name server.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args([
            "--namesrv",
            &closed,
            "doctor",
            "--group",
            &group,
            "--topic",
            &topic,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("FAIL  name server"), "{text}");
    // The broker's address unreachable from here.
    let broker = env("RMQ_BROKER_ADDR");
    let (code, out, _) = doctor(
        &["--broker-addr-map", &format!("{broker}={closed}")],
        &group,
        &topic,
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("FAIL  broker reachable"), "{out}");
    assert!(out.contains(&closed), "{out}");
    // A third member subscribing differently.
    let c = member(&topic, &group, "TagA");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let out = loop {
        let (code, out, err) = doctor(&[], &group, &topic);
        if code == Some(1) && out.contains("FAIL  subscriptions") {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the differing member was never flagged: {out}{err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(out.contains("TagA"), "{out}");
    for child in [a, b, c] {
        stop(child);
    }
}

/// Sends every message of `topic` (one queue) to `%DLQ%<group>` as a consumer of `group`
/// whose listener gave up would (CONSUMER_SEND_MSG_BACK, delay level −1).
fn dead_letter_all(topic: &str, group: &str) -> Vec<serde_json::Value> {
    let out = rmq()
        .args([
            "pull",
            "--topic",
            topic,
            "--queue-id",
            "0",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let (msgs, _) = json_lines(out);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = rmq_client_core::ClientConfig::default()
            .namesrv_addr(&env("RMQ_NAMESRV_ADDR"))
            .instance_name(format!("dlq-test-{}", std::process::id()));
        let instance = rmq_client_core::ClientInstance::get_or_create(&config).unwrap();
        for m in &msgs {
            let (addr, offset) =
                rmq_client_core::admin::decode_offset_msg_id(m["offsetMsgId"].as_str().unwrap())
                    .unwrap();
            let header = rmq_client_core::header::ConsumerSendMsgBackRequestHeader {
                offset,
                group: group.to_owned(),
                delay_level: -1,
                origin_msg_id: Some(m["msgId"].as_str().unwrap().to_owned()),
                origin_topic: Some(topic.to_owned()),
                unit_mode: false,
                max_reconsume_times: Some(16),
                bname: Some(m["brokerName"].as_str().unwrap().to_owned()),
            };
            instance
                .api()
                .consumer_send_msg_back(&addr, &header, std::time::Duration::from_secs(3))
                .await
                .unwrap();
        }
        instance.shutdown(std::time::Duration::from_secs(1)).await;
    });
    msgs
}

fn resend(group: &str, extra: &[&str]) -> Vec<String> {
    let out = rmq()
        .args(["resend-dlq", "--group", group])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn messages_are_found_by_id_and_key_and_the_dlq_is_resent_once_to_its_group() {
    let topic = topic();
    let group = format!("g_{topic}");
    let produced = rmq()
        .args([
            "produce",
            "--topic",
            &topic,
            "--create-queues",
            "1",
            "--keys",
            "order-7",
            "--tag",
            "Paid",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"m0\nm1\nm2\nm3\nm4\n")?;
            c.wait()
        })
        .unwrap();
    assert!(produced.success());
    let originals = dead_letter_all(&topic, &group);
    assert_eq!(originals.len(), 5);
    // The group consumed them first (as it would have before giving up on them).
    consume_five(&topic, &group);

    // Lookups: by offset id, by unique id (with the topic), by key.
    let first = &originals[0];
    for args in [
        vec!["--id", first["offsetMsgId"].as_str().unwrap()],
        vec!["--id", first["msgId"].as_str().unwrap(), "--topic", &topic],
    ] {
        let out = rmq()
            .arg("message")
            .args(&args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let (found, _) = json_lines(out);
        assert_eq!(found.len(), 1, "{args:?}");
        assert_eq!(found[0]["body"], "m0");
        assert_eq!(found[0]["msgId"], first["msgId"]);
    }
    let out = rmq()
        .args([
            "message", "--key", "order-7", "--topic", &topic, "--format", "json",
        ])
        .output()
        .unwrap();
    let (found, _) = json_lines(out);
    let bodies: Vec<&str> = found.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
    let none = rmq()
        .args(["message", "--key", "no-such-key", "--topic", &topic])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));

    // The doctor sees the dead letters.
    let (_, out, _) = doctor(&[], &group, &topic);
    assert!(
        out.contains("WARN  dead-letter topic      5 message(s)"),
        "{out}"
    );

    // Dry runs list them and record nothing.
    for _ in 0..2 {
        let lines = resend(&group, &["--dry-run"]);
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(
            lines.iter().all(|l| l.contains(&format!("topic={topic}"))),
            "{lines:?}"
        );
    }
    let dead: std::collections::HashMap<String, i64> =
        resend(&group, &["--dry-run", "--format", "json"])
            .iter()
            .map(|l| {
                let m: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(m["topic"], format!("%DLQ%{group}"), "{m}");
                (
                    m["msgId"].as_str().unwrap().to_owned(),
                    m["reconsumeTimes"].as_i64().unwrap(),
                )
            })
            .collect();
    assert_eq!(dead.len(), 5);
    // Resent in two bounded runs, then nothing is left.
    assert_eq!(resend(&group, &["--max", "3"]).len(), 3);
    assert_eq!(resend(&group, &[]).len(), 2);
    assert_eq!(resend(&group, &[]).len(), 0);

    // The group receives each once more, on its own topic, as a retry (one delivery more
    // than the DLQ record's).
    let retried = consume_five(&topic, &group);
    for m in &retried {
        assert_eq!(m["topic"], topic.as_str(), "{m}");
        let before = dead[m["msgId"].as_str().unwrap()];
        assert_eq!(m["reconsumeTimes"], before + 1, "{m}");
        assert_eq!(m["tags"], "Paid", "{m}");
    }
}

/// The next five messages `group` receives from `topic` (its retry topic included),
/// sorted by body.
fn consume_five(topic: &str, group: &str) -> Vec<serde_json::Value> {
    let out = rmq()
        .args([
            "consume",
            "--topic",
            topic,
            "--group",
            group,
            "--from",
            "first",
            "--count",
            "5",
            "--idle-exit",
            "30",
            "--format",
            "json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let (lines, _) = json_lines(out);
    let mut msgs: Vec<serde_json::Value> = lines
        .into_iter()
        .filter(|l| l.get("body").is_some())
        .collect();
    msgs.sort_by(|a, b| a["body"].as_str().cmp(&b["body"].as_str()));
    let bodies: Vec<&str> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
    msgs
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn a_namespace_wraps_every_topic_and_group_as_java_does() {
    let topic = topic();
    let ns = format!("ns{}", std::process::id());
    let p = rmq()
        .args([
            "--namespace",
            &ns,
            "produce",
            "--topic",
            &topic,
            "--count",
            "3",
            "--size",
            "8",
            "--create-queues",
            "2",
        ])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    // On the broker the topic is `ns%topic`; the bare name does not exist.
    let wrapped = format!("{ns}%{topic}");
    assert!(
        rmq()
            .args(["route", &wrapped])
            .output()
            .unwrap()
            .status
            .success()
    );
    assert_eq!(
        rmq()
            .args(["route", &topic])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );
    // A consumer in the namespace reads it by its bare name, and sees the bare name.
    let out = rmq()
        .args([
            "--namespace",
            &ns,
            "consume",
            "--topic",
            &topic,
            "--group",
            "g",
            "--from",
            "first",
            "--count",
            "3",
            "--format",
            "json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let (lines, _) = json_lines(out);
    let msgs: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("body").is_some()).collect();
    assert_eq!(msgs.len(), 3);
    assert!(
        msgs.iter().all(|m| m["topic"] == topic.as_str()),
        "{msgs:?}"
    );
    // Its group is `ns%g` on the broker: lag by the namespaced names shows the commit.
    let lag = rmq()
        .args(["--namespace", &ns, "lag", "--group", "g", "--topic", &topic])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&lag.stdout);
    assert!(lag.status.success(), "{text}");
    assert!(text.contains(&wrapped), "{text}");
    assert!(text.contains("total lag: 0"), "{text}");
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn consume_with_trace_records_every_message_in_the_trace_topic() {
    use rmq_client_core::trace::{TraceType, decode};
    let topic = topic();
    let trace_topic = format!("{topic}_trace");
    let group = format!("g_{topic}");
    produce(&trace_topic, 0, 1);
    let p = rmq()
        .args([
            "produce",
            "--topic",
            &topic,
            "--count",
            "25",
            "--size",
            "8",
            "--keys",
            "kA kB",
            "--create-queues",
            "2",
        ])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let out = rmq()
        .args([
            "consume",
            "--topic",
            &topic,
            "--group",
            &group,
            "--from",
            "first",
            "--count",
            "25",
            "--format",
            "json",
            "--quiet",
            "--trace",
            &trace_topic,
        ])
        .output()
        .unwrap();
    let (lines, _) = json_lines(out);
    let consumed: std::collections::BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l["msgId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(consumed.len(), 25);
    // Shutdown sent what was queued: read the trace topic back.
    let out = rmq()
        .args([
            "pull",
            "--topic",
            &trace_topic,
            "--queue-id",
            "0",
            "--count",
            "1000",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let (trace_msgs, _) = json_lines(out);
    let mut before = std::collections::BTreeSet::new();
    let mut after = std::collections::BTreeMap::new();
    for m in &trace_msgs {
        let Some(body) = m["body"].as_str() else {
            continue;
        };
        // The trace message's keys let a lookup by message id find it (the dashboard's way).
        let keys: Vec<&str> = m["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        for r in decode(body) {
            let id = r.msg_id().unwrap().to_owned();
            assert!(keys.contains(&id.as_str()), "{keys:?} lacks {id}");
            match r.trace_type {
                TraceType::SubBefore => {
                    assert_eq!(r.fields[2], group, "{r:?}");
                    assert_eq!(r.fields[6], "kA kB", "{r:?}");
                    before.insert(id);
                }
                TraceType::SubAfter => {
                    let cost: i64 = r.fields[2].parse().unwrap();
                    assert!(cost >= 0, "{r:?}");
                    assert_eq!(r.fields[3], "true", "{r:?}");
                    assert_eq!(r.fields[5], "0", "{r:?}");
                    after.insert(id, cost);
                }
                TraceType::Pub => panic!("a consumer wrote a Pub record"),
            }
        }
    }
    assert_eq!(before, consumed);
    assert_eq!(
        after
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        consumed
    );
    // Found by message id, as the dashboard's trace query does. The rocketmq-rust broker
    // builds its key index in the background and refuses key queries (SYSTEM_ERROR "index
    // query is unsafe … rebuild may still be in progress") until it has caught up: asked
    // again, at most 40 times.
    let any = consumed.iter().next().unwrap();
    let mut attempts = 0;
    let out = loop {
        let out = rmq()
            .args([
                "message",
                "--key",
                any,
                "--topic",
                &trace_topic,
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        attempts += 1;
        let catching_up = String::from_utf8_lossy(&out.stderr).contains("index query is unsafe");
        if !catching_up || attempts == 40 {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    let (found, _) = json_lines(out);
    assert!(
        found
            .iter()
            .any(|m| m["body"].as_str().unwrap().contains(any.as_str()))
    );
}

/// A file of the servers' TLS folder (`RMQ_TLS_DIR`, made by `cargo xtask broker start`).
fn tls_file(name: &str) -> String {
    format!("{}/{name}", env("RMQ_TLS_DIR"))
}

/// `rmq` with TLS on every connection and `flags` (the broker and name server accept TLS
/// and plaintext on the same port).
fn rmq_tls(flags: &[&str]) -> Command {
    let mut c = rmq();
    c.arg("--tls").args(flags);
    c
}

fn failed_with(out: &std::process::Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "expected {needle:?} in stderr: {stderr}"
    );
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn over_tls_verified_against_the_cluster_ca_produce_route_and_consume_work() {
    let topic = topic();
    let ca = tls_file("ca.pem");
    let verified = ["--tls-ca", ca.as_str()];
    let p = rmq_tls(&verified)
        .args(["produce", "--topic", &topic, "--count", "7"])
        .args(["--size", "32", "--create-queues", "2"])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let route = rmq_tls(&verified).args(["route", &topic]).output().unwrap();
    assert!(
        route.status.success(),
        "{}",
        String::from_utf8_lossy(&route.stderr)
    );
    assert!(String::from_utf8_lossy(&route.stdout).contains(&env("RMQ_BROKER_ADDR")));
    let out = rmq_tls(&verified)
        .args([
            "consume",
            "--topic",
            &topic,
            "--group",
            &format!("g_{topic}"),
        ])
        .args([
            "--from", "first", "--count", "7", "--format", "json", "--quiet",
        ])
        .output()
        .unwrap();
    let (lines, text) = json_lines(out);
    assert_eq!(lines.len(), 8, "7 messages and the summary:\n{text}");
    // The same through the environment switch and a client certificate the servers trust.
    let client = [
        "--tls-ca",
        ca.as_str(),
        "--tls-cert",
        &tls_file("client.pem"),
        "--tls-key",
        &tls_file("client.key"),
    ]
    .map(str::to_owned);
    let out = rmq()
        .env("RMQ_TLS", "true")
        .args(&client)
        .args([
            "pull",
            "--topic",
            &topic,
            "--queue-id",
            "0",
            "--offset",
            "0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "real broker: run by cargo xtask ci"]
fn over_tls_a_certificate_nobody_vouches_for_is_refused_unless_insecure_is_asked_for() {
    // The servers' CA is not among the system roots: refused, exit 1, and the error says
    // what to do.
    let system_roots = rmq_tls(&[]).args(["topics"]).output().unwrap();
    failed_with(&system_roots, 1, "certificate was not accepted");
    let other_ca = tls_file("other-ca.pem");
    let wrong_ca = rmq_tls(&["--tls-ca", &other_ca])
        .args(["topics"])
        .output()
        .unwrap();
    failed_with(&wrong_ca, 1, "--tls-ca");
    // The certificate lists 127.0.0.1 and localhost, not this name.
    let ca = tls_file("ca.pem");
    let wrong_name = rmq_tls(&["--tls-ca", &ca, "--tls-server-name", "broker.example"])
        .args(["topics"])
        .output()
        .unwrap();
    failed_with(&wrong_name, 1, "certificate was not accepted");
    // A client certificate from another CA: the name server does not ask for one, the
    // broker does and refuses it.
    let (cert, key) = (tls_file("other-client.pem"), tls_file("other-client.key"));
    let topic = topic();
    let foreign = rmq_tls(&["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key])
        .args(["produce", "--topic", &topic, "--count", "1"])
        .output()
        .unwrap();
    failed_with(&foreign, 1, "TLS");
    let insecure = rmq_tls(&["--tls-insecure"])
        .args(["topics"])
        .output()
        .unwrap();
    assert!(
        insecure.status.success(),
        "{}",
        String::from_utf8_lossy(&insecure.stderr)
    );
}
