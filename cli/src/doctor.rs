//! `rmq doctor --group G --topic T`: "why am I receiving nothing?" as a list of checks,
//! each pass / warn / fail with the reason and the fix. Exit 1 when any check fails.

use super::*;
use group_view::{GroupView, gather};
use rmq_client_core::ClientError;
use rmq_client_core::route::perm;
use rmq_remoting::protocol::ResponseCode;

/// A queue held but not pulled for this long while it has lag is stuck: a healthy
/// member's long poll returns within the broker's 15 s suspend (plus the 30 s pull
/// timeout for a slow broker).
const STUCK_AFTER_MS: i64 = 45_000;

/// How long the broker keeps a dead member's orderly lock (Java
/// `REBALANCE_LOCK_MAX_LIVE_TIME`, 60 s).
const BROKER_LOCK_EXPIRY_S: u64 = 60;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Pass,
    Warn,
    Fail,
}

struct Check {
    name: &'static str,
    level: Level,
    reason: String,
    fix: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn add(&mut self, name: &'static str, level: Level, reason: String, fix: Option<String>) {
        self.0.push(Check {
            name,
            level,
            reason,
            fix,
        });
    }
    fn pass(&mut self, name: &'static str, reason: String) {
        self.add(name, Level::Pass, reason, None);
    }
    fn warn(&mut self, name: &'static str, reason: String, fix: impl Into<String>) {
        self.add(name, Level::Warn, reason, Some(fix.into()));
    }
    fn fail(&mut self, name: &'static str, reason: String, fix: impl Into<String>) {
        self.add(name, Level::Fail, reason, Some(fix.into()));
    }
}

pub(crate) async fn doctor(
    cluster: &Cluster,
    group: &str,
    topic: &str,
    format: Format,
) -> Result<(), Failure> {
    let client = client_config(cluster, "doctor")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let mut report = Report::default();
    run_checks(&instance, cluster, group, topic, &mut report).await;
    instance.shutdown(Duration::from_secs(1)).await;
    print_report(&report, format)?;
    let failed: Vec<String> = report
        .0
        .iter()
        .filter(|c| c.level == Level::Fail)
        .map(|c| format!("{} ({})", c.name, c.reason))
        .collect();
    if !failed.is_empty() {
        return Err(Failure(
            1,
            format!(
                "doctor: {} check(s) failed: {}",
                failed.len(),
                failed.join("; ")
            ),
        ));
    }
    Ok(())
}

fn print_report(report: &Report, format: Format) -> Result<(), Failure> {
    let label = |l: Level| match l {
        Level::Pass => "pass",
        Level::Warn => "warn",
        Level::Fail => "fail",
    };
    match format {
        Format::Json | Format::Summary => {
            let checks: Vec<serde_json::Value> = report
                .0
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "check": c.name, "result": label(c.level), "reason": c.reason, "fix": c.fix,
                    })
                })
                .collect();
            out(&serde_json::Value::Array(checks).to_string())
        }
        Format::Text => {
            for c in &report.0 {
                out(&format!(
                    "{:<5} {:<22} {}",
                    label(c.level).to_uppercase(),
                    c.name,
                    c.reason
                ))?;
                if let Some(fix) = &c.fix {
                    out(&format!("{:<28} fix: {fix}", ""))?;
                }
            }
            Ok(())
        }
    }
}

async fn run_checks(
    instance: &ClientInstance,
    cluster: &Cluster,
    group: &str,
    topic: &str,
    report: &mut Report,
) {
    let namesrv = instance.config().namesrv_addrs.join(";");
    // 1. The name server.
    match instance.broker_cluster_info().await {
        Ok(info) => {
            report.pass(
                "name server",
                format!(
                    "{namesrv} answers: {} cluster(s), {} broker(s)",
                    info.cluster_addr_table.len(),
                    info.broker_addr_table.len()
                ),
            );
        }
        Err(e) => {
            report.fail(
                "name server",
                format!("{namesrv} does not answer: {}", error_chain(&e)),
                "pass the right --namesrv host:port (or NAMESRV_ADDR); the name server listens on 9876 by default",
            );
            return;
        }
    }
    // 2. The route and its permissions.
    match instance.update_topic_route(topic).await {
        Ok(_) => {}
        Err(ClientError::TopicRouteNotFound { .. }) => {
            report.fail(
                "route",
                format!("topic {topic} has no route: the name server knows no broker serving it"),
                format!(
                    "check the name (`rmq topics` lists them), or create it (`rmq produce --topic {topic} --create-queues 8 --count 1`, or mqadmin updateTopic)"
                ),
            );
            return;
        }
        Err(e) => {
            report.fail(
                "route",
                format!("route of {topic} could not be read: {}", error_chain(&e)),
                "see the name server check",
            );
            return;
        }
    }
    let route = instance.topic_route(topic).unwrap_or_default();
    let unreadable: Vec<&str> = route
        .queue_datas
        .iter()
        .filter(|q| q.perm & perm::READ == 0 || q.read_queue_nums == 0)
        .map(|q| q.broker_name.as_str())
        .collect();
    if unreadable.len() == route.queue_datas.len() {
        report.fail(
            "route",
            format!("no broker lets topic {topic} be read (perm or readQueueNums 0)"),
            "give the topic read permission (perm 6) and read queues on its brokers (mqadmin updateTopic -p 6)",
        );
    } else if !unreadable.is_empty() {
        report.warn(
            "route",
            format!("topic {topic} cannot be read on {}", unreadable.join(", ")),
            "give the topic read permission there, or ignore if those brokers are being drained on purpose",
        );
    } else {
        let queues: i32 = route.queue_datas.iter().map(|q| q.read_queue_nums).sum();
        report.pass(
            "route",
            format!(
                "topic {topic}: {queues} readable queue(s) on {} broker(s)",
                route.queue_datas.len()
            ),
        );
    }
    // 3. Brokers reachable, and the addresses they advertise.
    let mut credentials_refused = Vec::new();
    for qd in &route.queue_datas {
        let name = &qd.broker_name;
        let Some(data) = route.broker_datas.iter().find(|b| &b.broker_name == name) else {
            report.fail(
                "broker reachable",
                format!("broker {name} has queues of {topic} but no address in the route"),
                "the broker is not registered with this name server; check its namesrvAddr",
            );
            continue;
        };
        let Some(dial) = data.master_addr() else {
            report.fail(
                "broker reachable",
                format!("broker {name} has no master (id 0) in the route"),
                "start the master or check its brokerId; consumers pull from masters first",
            );
            continue;
        };
        let advertised = cluster
            .broker_addr_map
            .iter()
            .find(|(_, d)| d == dial)
            .map(|(a, _)| a.as_str());
        let mq = MessageQueue::new(topic, name, 0);
        let timeout = instance.config().remoting.connect_timeout;
        let dialed = instance.api().get_max_offset(dial, &mq, timeout).await;
        match (&dialed, advertised) {
            (Ok(_), None) => report.pass(
                "broker reachable",
                format!("broker {name} answers at {dial}, the address it advertises"),
            ),
            (Ok(_), Some(adv)) => report.pass(
                "broker reachable",
                format!("broker {name} advertises {adv} and answers at {dial} (--broker-addr-map)"),
            ),
            (Err(e), None) => report.fail(
                "broker reachable",
                format!(
                    "broker {name} advertises {dial}, which does not answer from here: {}",
                    error_chain(e)
                ),
                format!(
                    "a broker in Docker, Kubernetes or behind NAT advertises an internal address: set brokerIP1 in its broker.conf to an address clients reach, or dial its published address with --broker-addr-map {dial}=HOST:PORT"
                ),
            ),
            (Err(e), Some(adv)) => report.fail(
                "broker reachable",
                format!(
                    "broker {name} (advertised {adv}) does not answer at {dial}: {}",
                    error_chain(e)
                ),
                "check the --broker-addr-map target: the host and port the broker is published on",
            ),
        }
        if let Err(ClientError::Broker { code, .. }) = &dialed
            && *code == ResponseCode::NO_PERMISSION
        {
            credentials_refused.push(name.clone());
        }
    }
    // 4. Credentials, with what the group view asks too.
    let view = match gather(instance, group, Some(topic)).await {
        Ok(v) => v,
        Err(Failure(_, msg)) => {
            report.fail(
                "group",
                format!("group {group} could not be examined: {msg}"),
                "see the checks above",
            );
            return;
        }
    };
    for b in &view.brokers {
        if b.error
            .as_deref()
            .is_some_and(|e| e.contains("NO_PERMISSION"))
        {
            credentials_refused.push(b.name.clone());
        }
    }
    let has_credentials = instance.config().credentials.is_some();
    if credentials_refused.is_empty() {
        report.pass(
            "credentials",
            if has_credentials {
                "the access key is accepted".into()
            } else {
                "no request was refused for permission (no credentials given)".into()
            },
        );
    } else {
        credentials_refused.sort();
        credentials_refused.dedup();
        report.fail(
            "credentials",
            format!(
                "refused with NO_PERMISSION by {}",
                credentials_refused.join(", ")
            ),
            if has_credentials {
                "check the access key, secret key and the account's topic/group permissions in the broker's ACL"
            } else {
                "the cluster has ACL on: pass --access-key and --secret-key (or RMQ_ACCESS_KEY / RMQ_SECRET_KEY)"
            },
        );
    }
    group_checks(&view, group, topic, report);
    retry_and_dlq(instance, &view, group, report).await;
}

fn group_checks(view: &GroupView, group: &str, topic: &str, report: &mut Report) {
    // 5. Members and their subscriptions.
    let subscribed: Vec<&group_view::Member> = view
        .members
        .iter()
        .filter(|m| {
            m.running
                .as_ref()
                .is_ok_and(|r| r.subscriptions().contains_key(topic))
        })
        .collect();
    if !view.brokers.is_empty() && view.brokers.iter().all(|b| b.error.is_some()) {
        report.fail(
            "members",
            format!("no broker could be asked for the members of {group}"),
            "see the broker check above",
        );
        return;
    }
    if view.members.is_empty() {
        report.warn(
            "members",
            format!("no member of {group} is connected to any broker"),
            "start a consumer of the group (and check it uses this name server)",
        );
        return;
    }
    let silent: Vec<&str> = view
        .members
        .iter()
        .filter(|m| m.running.is_err())
        .map(|m| m.client_id.as_str())
        .collect();
    report.add(
        "members",
        if silent.is_empty() {
            Level::Pass
        } else {
            Level::Warn
        },
        format!(
            "{} member(s), {} subscribed to {topic}{}",
            view.members.len(),
            subscribed.len(),
            if silent.is_empty() {
                String::new()
            } else {
                format!("; no running info from {}", silent.join(", "))
            }
        ),
        (!silent.is_empty())
            .then(|| "members below Java 3.1.8 or behind a broker that does not forward GET_CONSUMER_RUNNING_INFO cannot report".into()),
    );
    let conflicts = view.subscription_conflicts();
    if conflicts.is_empty() {
        report.pass(
            "subscriptions",
            "every member subscribes the same topics and expressions".into(),
        );
    } else {
        report.fail(
            "subscriptions",
            conflicts.join("; "),
            "members of one group must subscribe identically: the broker keeps one subscription per topic, so messages filtered for one member are lost to the others; use one group per subscription",
        );
    }
    // 6. Every queue owned (held, or popped in pop mode).
    let topic_queues: Vec<&group_view::QueueView> =
        view.queues.iter().filter(|q| q.mq.topic == topic).collect();
    let orphans: Vec<String> = topic_queues
        .iter()
        .filter(|q| q.holders.is_empty() && q.poppers.is_empty())
        .map(|q| format!("{:?}", q.mq))
        .collect();
    let shared: Vec<String> = topic_queues
        .iter()
        .filter(|q| q.holders.len() > 1)
        .map(|q| format!("{:?}", q.mq))
        .collect();
    if subscribed.is_empty() {
        report.fail(
            "queue owners",
            format!("no member of {group} subscribes {topic}"),
            format!("subscribe {topic} in the group's consumers"),
        );
    } else if !orphans.is_empty() {
        report.fail(
            "queue owners",
            format!("no member holds {}", orphans.join(", ")),
            "members allocate queues at their next rebalance (20 s); if it persists, members disagree on the member list or the queues (check the brokers' reachability from every member)",
        );
    } else {
        report.add(
            "queue owners",
            if shared.is_empty() {
                Level::Pass
            } else {
                Level::Warn
            },
            format!(
                "every queue of {topic} ({}) is held{}",
                topic_queues.len(),
                if shared.is_empty() {
                    String::new()
                } else {
                    format!("; by two members at once: {}", shared.join(", "))
                }
            ),
            (!shared.is_empty())
                .then(|| "a hand-off is in progress; it ends within a rebalance".into()),
        );
    }
    // 7. Lag with nobody pulling.
    let now = rmq_client_core::now_millis();
    let mut stuck = Vec::new();
    for q in &topic_queues {
        let Some(lag) = q.lag().filter(|l| *l > 0) else {
            continue;
        };
        for (holder, pq) in &q.holders {
            if now - pq.last_pull_timestamp > STUCK_AFTER_MS {
                stuck.push(format!(
                    "{:?} lag {lag}, held by {holder}, not pulled for {} s ({} cached msgs, {} MiB)",
                    q.mq,
                    (now - pq.last_pull_timestamp) / 1000,
                    pq.cached_msg_count,
                    pq.cached_msg_size_in_mi_b
                ));
            }
        }
    }
    if stuck.is_empty() {
        report.pass(
            "pulling",
            format!(
                "every held queue of {topic} with lag was pulled within the last {} s",
                STUCK_AFTER_MS / 1000
            ),
        );
    } else {
        report.fail(
            "pulling",
            stuck.join("; "),
            "a member with a full cache is waiting for its listener (slow or blocked listener: raise consumeThreadMax or fix the handler); a suspended or paused consumer pulls nothing until resumed",
        );
    }
    // 8. Orderly locks.
    let mut unlocked = Vec::new();
    for q in &topic_queues {
        for (holder, pq) in &q.holders {
            let orderly = view
                .members
                .iter()
                .find(|m| &m.client_id == holder)
                .and_then(|m| m.running.as_ref().ok())
                .is_some_and(|r| r.is_orderly());
            if orderly && !pq.locked {
                unlocked.push(format!("{:?} (held by {holder})", q.mq));
            }
        }
    }
    if unlocked.is_empty() {
        report.pass(
            "orderly locks",
            "every queue an orderly member holds is locked by it (or no member is orderly)".into(),
        );
    } else {
        report.warn(
            "orderly locks",
            format!(
                "orderly members hold queues without the broker lock: {}",
                unlocked.join(", ")
            ),
            format!(
                "another client holds the lock, often a member that crashed: the broker frees it {BROKER_LOCK_EXPIRY_S} s after that member's last renewal; if it persists, a live member outside this group view holds it"
            ),
        );
    }
}

async fn retry_and_dlq(
    instance: &ClientInstance,
    view: &GroupView,
    group: &str,
    report: &mut Report,
) {
    // 9. Retry and dead-letter topics.
    let retry = rmq_client_core::namespace::retry_topic(group);
    let retry_lag: i64 = view
        .queues
        .iter()
        .filter(|q| q.mq.topic == retry)
        .filter_map(group_view::QueueView::lag)
        .sum();
    if retry_lag > 0 {
        report.warn(
            "retry topic",
            format!("{retry_lag} message(s) in {retry} wait for redelivery"),
            "these failed in the listener and come back with backoff (10 s, 30 s, 1 min …); see the listener's errors",
        );
    } else {
        report.pass("retry topic", format!("nothing waiting in {retry}"));
    }
    let dlq = rmq_client_core::namespace::dlq_topic(group);
    match instance.update_topic_route(&dlq).await {
        Ok(_) => {
            let mut stored = 0i64;
            for mq in instance.subscribe_queues(&dlq) {
                if let Some(addr) = instance.master_addr_cached(&mq) {
                    let t = instance.config().mq_client_api_timeout;
                    let max = instance
                        .api()
                        .get_max_offset(&addr, &mq, t)
                        .await
                        .unwrap_or(0);
                    let min = instance
                        .api()
                        .get_min_offset(&addr, &mq, t)
                        .await
                        .unwrap_or(0);
                    stored += (max - min).max(0);
                }
            }
            if stored > 0 {
                report.warn(
                    "dead-letter topic",
                    format!("{stored} message(s) in {dlq}: they failed maxReconsumeTimes (16) times"),
                    format!("fix the cause, then `rmq resend-dlq --group {group} --dry-run` and without --dry-run"),
                );
            } else {
                report.pass("dead-letter topic", format!("{dlq} is empty"));
            }
        }
        Err(_) => report.pass(
            "dead-letter topic",
            format!("no {dlq}: no message went to the DLQ"),
        ),
    }
}
