//! `rmq`: consume, produce, pull; inspect routes, lag, groups (status, doctor), topics,
//! clusters and messages; resend dead letters — on a RocketMQ cluster.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// mimalloc, not glibc's malloc: see `mimalloc` in Cargo.toml.
#[cfg(not(feature = "alloc-stats"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The same allocator, counting (feature `alloc-stats`).
#[cfg(feature = "alloc-stats")]
#[global_allocator]
static GLOBAL: stats_alloc::StatsAlloc<mimalloc::MiMalloc> =
    stats_alloc::StatsAlloc::new(mimalloc::MiMalloc);

/// Heap allocations of the whole process so far (feature `alloc-stats`).
fn allocations() -> Option<usize> {
    #[cfg(feature = "alloc-stats")]
    return Some(GLOBAL.stats().allocations);
    #[cfg(not(feature = "alloc-stats"))]
    None
}

mod admin;
mod consume;
mod doctor;
mod group_view;
mod message_format;
mod message_lookup;
mod preflight;
mod produce;
mod pull;
mod resend_dlq;
mod seen_ids;
mod signal;
mod status;

use admin::{cluster_info, lag, route, topics};
use consume::{ConsumeOpts, consume};
use doctor::doctor;
use message_format::{message_json, message_text};
use produce::produce;
use pull::pull;
use status::status;

use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use rmq_client_core::header::QueryConsumerOffsetRequestHeader;
use rmq_client_core::{ClientConfig, ClientInstance, Message, MessageExt, MessageQueue, Producer};
use rmq_push_consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, MessageListenerConcurrently, MessageListenerOrderly, MessageModel,
    PushConsumer,
};

const EXIT_HELP: &str = "Exit codes:
  0  success
  1  the cluster could not be reached or refused a request, or the topic has no route
     (the message says which)
  2  bad command-line usage (a topic or group name the broker would refuse, say)
  3  consume stopped by --idle-exit before --count messages arrived

SIGINT (Ctrl-C) and SIGTERM both stop cleanly: consumed offsets are committed and the
group is left, so the next member takes over without waiting.";

#[derive(Parser)]
#[command(name = "rmq", version, about = "A RocketMQ client for the command line (Remoting protocol, 4.x/5.x).", after_help = EXIT_HELP)]
struct Cli {
    /// Name server(s), `host:port;host:port`. Default: $NAMESRV_ADDR.
    #[arg(long, global = true, env = "NAMESRV_ADDR")]
    namesrv: Option<String>,
    /// Dial a broker at another address than the name server advertises:
    /// `ADVERTISED=DIAL`, both `host:port` (repeatable). For brokers in Docker, Kubernetes
    /// or behind NAT that register internal addresses.
    #[arg(long = "broker-addr-map", global = true, value_name = "ADVERTISED=DIAL", value_parser = parse_addr_map)]
    broker_addr_map: Vec<(String, String)>,
    /// ACL access key (signed requests, ACL 1.0 HMAC-SHA1). Default: $RMQ_ACCESS_KEY.
    #[arg(
        long,
        global = true,
        env = "RMQ_ACCESS_KEY",
        hide_env_values = true,
        requires = "secret_key"
    )]
    access_key: Option<String>,
    /// ACL secret key; prefer $RMQ_SECRET_KEY (a flag shows in `ps`). Never printed.
    #[arg(
        long,
        global = true,
        env = "RMQ_SECRET_KEY",
        hide_env_values = true,
        requires = "access_key"
    )]
    secret_key: Option<String>,
    /// Namespace (Java `namespace`): topics and groups are used as `NAMESPACE%NAME` on the
    /// broker, as a Java client with the same namespace uses them.
    #[arg(long, global = true, env = "RMQ_NAMESPACE")]
    namespace: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(subcommand)]
    command: Command,
}

/// TLS on every connection (name servers and brokers). The server certificate is verified
/// by default, unlike the Java client.
#[derive(clap::Args)]
struct TlsArgs {
    /// Use TLS on every connection, name servers and brokers (Java `-Dtls.enable=true`).
    /// The server certificates are verified against the system roots, or --tls-ca.
    /// Implied by the other --tls-* flags.
    #[arg(long, global = true, env = "RMQ_TLS")]
    tls: bool,
    /// Trust only the CA certificate(s) in FILE (PEM) instead of the system roots
    /// (Java `tls.client.trustCertPath`).
    #[arg(long = "tls-ca", global = true, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS (Java `tls.client.certPath`).
    #[arg(
        long = "tls-cert",
        global = true,
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<std::path::PathBuf>,
    /// Private key of --tls-cert (PEM, unencrypted; Java `tls.client.keyPath`).
    #[arg(
        long = "tls-key",
        global = true,
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<std::path::PathBuf>,
    /// The name every server certificate must carry, instead of each address's host: for
    /// brokers that advertise IP addresses their certificates do not list.
    #[arg(long = "tls-server-name", global = true, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// INSECURE: accept any server certificate (encrypted, but anyone on the path can
    /// impersonate the servers). The Java client's default; for self-signed test clusters.
    #[arg(long = "tls-insecure", global = true)]
    tls_insecure: bool,
}

impl TlsArgs {
    /// The TLS settings, `None` for plaintext. A file that cannot be used is a usage error.
    fn config(&self) -> Result<Option<rmq_remoting::TlsConfig>, Failure> {
        let on = self.tls
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_server_name.is_some()
            || self.tls_insecure;
        if !on {
            return Ok(None);
        }
        let mut b = rmq_remoting::TlsConfig::builder().insecure_skip_verify(self.tls_insecure);
        if let Some(ca) = &self.tls_ca {
            b = b.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            b = b.client_cert(cert, key);
        }
        if let Some(name) = &self.tls_server_name {
            b = b.server_name(name);
        }
        b.build().map(Some).map_err(|e| Failure(2, error_chain(&e)))
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    /// One line per message: topic, queue, offset, id, tags, keys, body.
    Text,
    /// One JSON object per line and message.
    Json,
    /// Only a JSON summary as the last line.
    Summary,
}

#[derive(Subcommand)]
enum Command {
    /// Consume with the push consumer and print messages or a summary.
    #[command(after_help = EXIT_HELP)]
    Consume {
        /// Topic to subscribe.
        #[arg(long)]
        topic: String,
        /// Consumer group. Default: a new group `rmq-cli-<pid>-<ms>`.
        #[arg(long)]
        group: Option<String>,
        /// Tag expression: `*`, `TagA || TagB`.
        #[arg(long, default_value = "*")]
        expression: String,
        /// Consume orderly (one call per queue at a time, under the broker lock).
        #[arg(long)]
        orderly: bool,
        /// Broadcasting instead of clustering.
        #[arg(long)]
        broadcast: bool,
        /// Where a new group starts: `first`, `last`, or a time in ms since the epoch.
        #[arg(long, default_value = "last")]
        from: String,
        /// Print exactly this many messages, then stop; no offset is committed past the
        /// last one printed (the rest of a batch is left for the next run).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Wait for a topic that has no route yet instead of failing with exit code 1.
        #[arg(long)]
        wait_for_topic: bool,
        /// Stop after this many seconds without a message.
        #[arg(long)]
        idle_exit: Option<u64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// No progress line on stderr.
        #[arg(long)]
        quiet: bool,
        /// Serve the consumer's metrics in Prometheus text format at
        /// `http://ADDR/metrics` (e.g. 127.0.0.1:9464) while consuming.
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Record message trace (SubBefore/SubAfter of every message, as the Java client
        /// with trace on) into TOPIC, default RMQ_SYS_TRACE_TOPIC (which a broker creates
        /// only with traceTopicEnable=true).
        #[arg(long, value_name = "TOPIC", num_args = 0..=1, default_missing_value = "RMQ_SYS_TRACE_TOPIC")]
        trace: Option<String>,
        /// Take the messages as a stream of acknowledgement handles (the library's
        /// `message_stream()`) instead of a listener; the output is the same.
        #[arg(long)]
        stream: bool,
        /// With --stream: messages per consume call, each still answered on its own (the
        /// library's `stream_batch_size`). Default 32, or 1 with --count, so that every
        /// printed message is committed as soon as it is acked.
        #[arg(long, requires = "stream", value_parser = clap::value_parser!(u16).range(1..=1024))]
        stream_batch_size: Option<u16>,
        /// Pop instead of pull (RocketMQ 5.x brokers): sets the group's consume mode for
        /// the topic to POP on every master (as `mqadmin setConsumeMode -m POP -q 0`),
        /// then lets the brokers hand out messages, each acknowledged on its own. What is
        /// not acknowledged (past --count, or after a crash) comes back after its
        /// invisible time (60 s).
        #[arg(long, conflicts_with_all = ["orderly", "broadcast"])]
        pop: bool,
    },
    /// Send messages: `--count` generated ones, or one per line of standard input.
    Produce {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Generated messages to send; without it, one message per stdin line (bytes, the
        /// line break removed).
        #[arg(long)]
        count: Option<u64>,
        /// Body size of generated messages, bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Tag of every message.
        #[arg(long)]
        tag: Option<String>,
        /// Keys of every message, space separated.
        #[arg(long)]
        keys: Option<String>,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Messages per send request (SEND_BATCH_MESSAGE); 1 sends them one by one.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Create the topic first with this many queues (1..=1024) on every broker.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1024))]
        create_queues: Option<i32>,
    },
    /// Pull one queue from an offset and print the messages.
    Pull {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Queue id.
        #[arg(long)]
        queue_id: i32,
        /// Broker name. Default: the first broker of the route.
        #[arg(long)]
        broker: Option<String>,
        /// Offset to start at.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Most messages to print.
        #[arg(long, default_value_t = 32)]
        count: usize,
        /// Output format: text, json, or summary (one JSON line: messages, offsets).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print a topic's route as JSON.
    Route {
        /// Topic.
        topic: String,
    },
    /// A consumer group's members (from every broker), what each member reports (queues,
    /// cache, locks, rates, subscriptions), and per queue the lag and who holds it.
    Status {
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// `text` (tables) or `json` (one object).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Checks why a group may receive nothing: name server, route and permissions, broker
    /// reachability (and advertised addresses), credentials, members' subscriptions, queue
    /// owners, stuck queues, orderly locks, retry and DLQ. Exit 1 when any check fails.
    Doctor {
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// The topic the group should be receiving.
        #[arg(long)]
        topic: String,
        /// `text` (one line per check) or `json` (an array of checks).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Every topic the name server knows, one per line (or `--format json`).
    Topics {
        /// `text` or `json`.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Every cluster, broker name, broker id and address the name server knows.
    Cluster {
        /// `text` or `json`.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Looks a message up by id (offset message id, or unique id with --topic) or by key
    /// (with --topic) and prints it (mqadmin queryMsgById / queryMsgByKey).
    Message {
        /// A message id: the offset message id (broker, commit-log offset) or, with
        /// --topic, the unique id a producer assigned (`msgId` in Java send results).
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        id: Option<String>,
        /// A message key (`KEYS` property).
        #[arg(long, requires = "topic")]
        key: Option<String>,
        /// Topic (needed for keys and unique ids).
        #[arg(long)]
        topic: Option<String>,
        /// Output format: text or json.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Hands the messages of a group's dead-letter topic `%DLQ%G` back to that group as
    /// retries (`%RETRY%G`, after 1 s): only that group receives them, once more; one that
    /// fails again returns to the DLQ. Progress is kept as the group's offset on the DLQ,
    /// so a message is resent once.
    ResendDlq {
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// Most messages to resend in this run.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        max: u64,
        /// Print what would be resent; send and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Dry-run output: text or json.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Per queue: broker max offset, committed offset and lag of a group.
    Lag {
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// Topic (its `%RETRY%<group>` is shown too).
        #[arg(long)]
        topic: String,
    },
}

const BROKEN_PIPE: &str = "stdout closed";

/// Writes one line to stdout; a closed stdout ends the command quietly.
fn out(line: &str) -> Result<(), Failure> {
    let mut o = std::io::stdout().lock();
    match writeln!(o, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure(0, BROKEN_PIPE.into())),
        r => r.map_err(fail),
    }
}

/// A user-facing failure: one line, and the exit code.
struct Failure(u8, String);

/// The error and its sources on one line, so it says what was wrong, not just "client error".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn fail(e: impl std::error::Error + 'static) -> Failure {
    Failure(1, error_chain(&e))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RMQ_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One thread for everything (Tokio's current-thread runtime) unless TOKIO_WORKER_THREADS
    // asks for worker threads: the CLI's listener only counts or prints, and on a small
    // machine shared with a broker a second thread costs more in wake-ups than it gains
    // (measured in BENCHMARKS.md). The current-thread scheduler also skips the cross-thread
    // hand-offs a one-worker multi-thread runtime still makes. (Printing blocks that one
    // thread while stdout is full, heartbeats included, as it blocked the one worker.)
    let mut builder = if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rmq: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`rmq consume | head`): not an error.
        Err(Failure(_, msg)) if msg == BROKEN_PIPE => ExitCode::SUCCESS,
        Err(Failure(code, msg)) => {
            eprintln!("rmq: {msg}");
            ExitCode::from(code)
        }
    }
}

/// Where the cluster is: the global options.
struct Cluster {
    namesrv: Option<String>,
    broker_addr_map: Vec<(String, String)>,
    credentials: Option<rmq_client_core::Credentials>,
    namespace: Option<String>,
    tls: Option<rmq_remoting::TlsConfig>,
}

fn parse_addr_map(v: &str) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((a, d)) if !a.trim().is_empty() && !d.trim().is_empty() => {
            Ok((a.trim().to_owned(), d.trim().to_owned()))
        }
        _ => Err(format!("{v:?}: expected ADVERTISED=DIAL, both host:port")),
    }
}

fn client_config(cluster: &Cluster, name: &str) -> Result<ClientConfig, Failure> {
    let ns = cluster.namesrv.clone().ok_or_else(|| {
        Failure(
            2,
            "no name server: pass --namesrv host:port or set NAMESRV_ADDR".into(),
        )
    })?;
    let mut config = ClientConfig::default()
        .namesrv_addr(&ns)
        .instance_name(format!(
            "rmq-cli-{name}-{}-{}",
            std::process::id(),
            rmq_client_core::now_millis()
        ));
    for (advertised, dial) in &cluster.broker_addr_map {
        config = config.map_broker_addr(advertised, dial);
    }
    if let Some(c) = &cluster.credentials {
        config = config.credentials(c.clone());
    }
    if let Some(ns) = &cluster.namespace {
        config = config.namespace(ns);
    }
    if let Some(tls) = &cluster.tls {
        config = config.tls(tls.clone());
    }
    Ok(config)
}

/// A topic or group name the broker would refuse is a usage error (exit 2), said before
/// anything is sent.
fn check_names(command: &Command) -> Result<(), Failure> {
    let usage = |e: rmq_client_core::NameError| Failure(2, e.to_string());
    let (topic, group) = match command {
        Command::Consume { topic, group, .. } => (Some(topic), group.as_ref()),
        Command::Produce { topic, .. } | Command::Pull { topic, .. } | Command::Route { topic } => {
            (Some(topic), None)
        }
        Command::Lag { group, topic } => (Some(topic), Some(group)),
        Command::Status { group, .. } => (None, Some(group)),
        Command::Topics { .. } | Command::Cluster { .. } => (None, None),
        Command::ResendDlq { group, .. } => (None, Some(group)),
        Command::Message { topic, .. } => (topic.as_ref(), None),
        Command::Doctor { group, topic, .. } => (Some(topic), Some(group)),
    };
    if let Some(t) = topic {
        rmq_client_core::check_topic(t).map_err(usage)?;
    }
    if let Some(g) = group {
        rmq_client_core::check_group(g).map_err(usage)?;
    }
    Ok(())
}

/// Every topic and group of `command` as `namespace%name` (Java `NamespaceUtil.wrapNamespace`;
/// a name already carrying the namespace, or a system name, is kept).
fn with_namespace(command: &mut Command, namespace: &str) {
    let wrap = |name: &mut String| *name = rmq_client_core::namespace::wrap(namespace, name);
    match command {
        Command::Consume { topic, group, .. } => {
            wrap(topic);
            group.iter_mut().for_each(wrap);
        }
        Command::Produce { topic, .. } | Command::Pull { topic, .. } | Command::Route { topic } => {
            wrap(topic)
        }
        Command::Lag { group, topic } | Command::Doctor { group, topic, .. } => {
            wrap(group);
            wrap(topic);
        }
        Command::Status { group, .. } | Command::ResendDlq { group, .. } => wrap(group),
        Command::Message { topic, .. } => topic.iter_mut().for_each(wrap),
        Command::Topics { .. } | Command::Cluster { .. } => {}
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    check_names(&cli.command)?;
    let cluster = Cluster {
        namesrv: cli.namesrv,
        broker_addr_map: cli.broker_addr_map,
        credentials: cli
            .access_key
            .zip(cli.secret_key)
            .map(|(a, s)| rmq_client_core::Credentials::new(a, s)),
        namespace: cli.namespace.filter(|n| !n.is_empty()),
        tls: cli.tls.config()?,
    };
    let mut command = cli.command;
    if let Some(ns) = &cluster.namespace {
        with_namespace(&mut command, ns);
    }
    match command {
        Command::Consume {
            topic,
            group,
            expression,
            orderly,
            broadcast,
            from,
            count,
            wait_for_topic,
            idle_exit,
            format,
            quiet,
            metrics_addr,
            trace,
            stream,
            stream_batch_size,
            pop,
        } => {
            let opts = ConsumeOpts {
                topic,
                group,
                expression,
                orderly,
                broadcast,
                from,
                count,
                wait_for_topic,
                idle_exit,
                format,
                quiet,
                metrics_addr,
                trace,
                stream,
                stream_batch_size,
                pop,
            };
            consume(&cluster, opts).await
        }
        Command::Produce {
            topic,
            count,
            size,
            tag,
            keys,
            concurrency,
            batch,
            create_queues,
        } => {
            produce(
                &cluster,
                &topic,
                count,
                size,
                tag,
                keys,
                concurrency,
                batch,
                create_queues,
            )
            .await
        }
        Command::Pull {
            topic,
            queue_id,
            broker,
            offset,
            count,
            format,
        } => pull(&cluster, &topic, queue_id, broker, offset, count, format).await,
        Command::Route { topic } => route(&cluster, &topic).await,
        Command::Lag { group, topic } => lag(&cluster, &group, &topic).await,
        Command::Status { group, format } => status(&cluster, &group, format).await,
        Command::Topics { format } => topics(&cluster, format).await,
        Command::ResendDlq {
            group,
            max,
            dry_run,
            format,
        } => {
            let opts = resend_dlq::ResendOpts {
                group,
                max,
                dry_run,
                format,
            };
            resend_dlq::resend_dlq(&cluster, opts).await
        }
        Command::Cluster { format } => cluster_info(&cluster, format).await,
        Command::Message {
            id,
            key,
            topic,
            format,
        } => {
            let lookup = message_lookup::Lookup {
                id,
                key,
                topic,
                format,
            };
            message_lookup::message(&cluster, lookup).await
        }
        Command::Doctor {
            group,
            topic,
            format,
        } => doctor(&cluster, &group, &topic, format).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (argument ids unique across global and subcommand
    /// flags, `requires` naming real ids), which otherwise fail only when a command runs.
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
