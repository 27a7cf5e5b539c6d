//! The `rmq` binary without a cluster: usage errors are exit 2, an unreachable name server
//! is exit 1 with a one-line reason, at once (not a silent wait).

use std::process::Command;
use std::time::{Duration, Instant};

/// A loopback address where nothing listens.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    addr
}

fn rmq(args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .arg("--namesrv")
        .arg(closed_port())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn an_unreachable_name_server_is_exit_1_at_once_for_every_command() {
    for args in [
        &["consume", "--topic", "T", "--count", "1"][..],
        &["consume", "--topic", "T", "--idle-exit", "1"],
        &["lag", "--group", "g", "--topic", "T"],
        &["route", "T"],
        &["pull", "--topic", "T", "--queue-id", "0"],
        &["produce", "--topic", "T", "--count", "1"],
        &["status", "--group", "g"],
        &["doctor", "--group", "g", "--topic", "T"],
        &["topics"],
        &["cluster"],
        &["message", "--key", "k", "--topic", "T"],
        &["resend-dlq", "--group", "g", "--dry-run"],
    ] {
        let (code, err, took) = rmq(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains("Connection refused"), "{args:?}: {err}");
        // Well inside the 3 s connect timeout: a refused connection is known at once.
        assert!(took < Duration::from_secs(3), "{args:?} took {took:?}");
    }
    let (_, err, _) = rmq(&["consume", "--topic", "T", "--count", "1"]);
    assert!(err.starts_with("rmq: name server 127.0.0.1:"), "{err}");
}

#[test]
fn names_java_refuses_are_usage_errors() {
    let long_group = "g".repeat(256);
    for (args, says) in [
        (&["consume", "--topic", "a.b"][..], "'.'"),
        (&["consume", "--topic", "T", "--group", "my group"], "' '"),
        (&["consume", "--topic", "T", "--group", ""], "empty"),
        (&["consume", "--topic", "T", "--group", &long_group], "256"),
        (&["lag", "--group", "g:1", "--topic", "T"], "':'"),
        (&["produce", "--topic", "tópico", "--count", "1"], "'ó'"),
        (&["route", &"t".repeat(128)], "at most 127"),
    ] {
        let (code, err, _) = rmq(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn out_of_range_numbers_are_usage_errors() {
    for args in [
        &[
            "produce",
            "--topic",
            "T",
            "--count",
            "1",
            "--create-queues",
            "0",
        ][..],
        &["consume", "--topic", "T", "--count", "0"],
    ] {
        let (code, err, _) = rmq(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
}

#[test]
fn the_secret_key_is_never_echoed() {
    let secret = "s3cr3t-never-printed";
    // From the environment: not in --help, not in an error.
    let help = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["--help"])
        .env("RMQ_ACCESS_KEY", "ak")
        .env("RMQ_SECRET_KEY", secret)
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--secret-key"), "{text}");
    assert!(!text.contains(secret), "{text}");
    for (args, env) in [
        (
            &["--access-key", "ak", "--secret-key", secret, "route", "T"][..],
            false,
        ),
        (&["route", "T"], true),
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rmq"));
        c.arg("--namesrv").arg(closed_port()).args(args);
        if env {
            c.env("RMQ_ACCESS_KEY", "ak").env("RMQ_SECRET_KEY", secret);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(secret), "{all}");
    }
    // One without the other is a usage error.
    let (code, err, _) = rmq(&["--access-key", "ak", "route", "T"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn tls_files_that_cannot_be_used_are_usage_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("rmq-usage-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = dir.join("missing.pem");
    let (not_pem, missing) = (not_pem.to_str().unwrap(), missing.to_str().unwrap());
    for (args, says) in [
        (&["--tls-ca", missing, "topics"][..], missing),
        (&["--tls-ca", not_pem, "topics"], not_pem),
        // A certificate without its key (and the reverse) is refused by the parser.
        (&["--tls-cert", not_pem, "topics"], "--tls-key"),
        (&["--tls-key", not_pem, "topics"], "--tls-cert"),
        (
            &["--tls-server-name", "not a name!", "topics"],
            "not a name!",
        ),
    ] {
        let (code, err, _) = rmq(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tls_to_a_server_that_is_not_listening_is_still_a_plain_connection_error() {
    let (code, err, _) = rmq(&["--tls-insecure", "topics"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
}

#[test]
fn tls_to_a_plaintext_only_server_says_so() {
    // A plaintext RocketMQ server reads the client hello as a frame header with an absurd
    // length and hangs up: that is what this one does.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        use std::io::Read;
        let (mut s, _) = l.accept().unwrap();
        let mut head = [0u8; 4];
        s.read_exact(&mut head).unwrap();
    });
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["--namesrv", &addr, "--tls", "topics"])
        .output()
        .unwrap();
    server.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not seem to have TLS enabled"), "{err}");
}
