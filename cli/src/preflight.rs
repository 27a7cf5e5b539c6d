//! Before a command relies on the cluster: the name server answers, the topic has a route
//! and its brokers accept connections. Each failure is exit 1 with a one-line reason,
//! within the connect timeout, instead of a silent wait.

use super::*;
use rmq_client_core::{ClientError, ErrorKind};

/// Fetches `topic`'s route. Without a route: exit 1 "no route for topic X", or with
/// `wait` a wait (polling the name server each second, as a new consumer would) until it
/// appears. Returns `false` when a stop signal came first.
pub(crate) async fn topic_route(
    instance: &ClientInstance,
    topic: &str,
    wait: bool,
    signals: &mut signal::StopSignals,
) -> Result<bool, Failure> {
    let mut said = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = signals.recv() => return Ok(false),
            _ = tick.tick() => {}
        }
        match instance.update_topic_route(topic).await {
            Ok(_) => return Ok(true),
            Err(ClientError::TopicRouteNotFound { .. }) if wait => {
                if !said {
                    eprintln!("rmq: no route for topic {topic} yet; waiting (--wait-for-topic)");
                    said = true;
                }
            }
            Err(e) => return Err(namesrv_failure(instance, &e)),
        }
    }
}

/// A route lookup's error as the user's problem: the topic, or the name server.
pub(crate) fn namesrv_failure(instance: &ClientInstance, e: &ClientError) -> Failure {
    match e.kind() {
        ErrorKind::Network | ErrorKind::Timeout => Failure(
            1,
            format!(
                "name server {} unreachable: {}",
                instance.config().namesrv_addrs.join(";"),
                error_chain(e)
            ),
        ),
        _ => Failure(1, error_chain(e)),
    }
}

/// Asks every broker (master) serving `topic` for one queue's max offset. Exit 1 when none
/// answers; a warning on stderr for each one that does not when others do.
pub(crate) async fn brokers_reachable(
    instance: &ClientInstance,
    topic: &str,
    quiet: bool,
) -> Result<(), Failure> {
    let timeout = instance.config().remoting.connect_timeout;
    let mut per_broker: BTreeMap<String, MessageQueue> = BTreeMap::new();
    for mq in instance.subscribe_queues(topic) {
        per_broker.entry(mq.broker_name.clone()).or_insert(mq);
    }
    let mut down = Vec::new();
    for (broker, mq) in &per_broker {
        let Some(addr) = instance.find_broker_address_in_publish(broker) else {
            down.push(format!("{broker}: no master address in the route"));
            continue;
        };
        if let Err(e) = instance.api().get_max_offset(&addr, mq, timeout).await {
            down.push(format!(
                "{broker} ({addr}) unreachable: {}",
                error_chain(&e)
            ));
        }
    }
    if per_broker.is_empty() {
        return Err(Failure(1, format!("topic {topic} has no readable queue")));
    }
    if down.len() == per_broker.len() {
        return Err(Failure(
            1,
            format!("no broker of topic {topic} answers: {}", down.join("; ")),
        ));
    }
    if !quiet {
        for d in down {
            eprintln!("rmq: warning: {d}; consuming from the other brokers");
        }
    }
    Ok(())
}
