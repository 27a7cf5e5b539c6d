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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
