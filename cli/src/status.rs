//! `rmq status --group G`: a consumer group's members, what each reports, and per queue
//! the lag and who holds it; as tables or one JSON object.

use super::*;
use group_view::{GroupView, gather};

pub(crate) async fn status(cluster: &Cluster, group: &str, format: Format) -> Result<(), Failure> {
    let client = client_config(cluster, "status")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let view = gather(&instance, group, None).await?;
    match format {
        Format::Json | Format::Summary => out(&status_json(&view).to_string())?,
        Format::Text => status_text(&view)?,
    }
    instance.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

/// `12s ago` from a timestamp in ms, `-` for none.
fn ago(now: i64, ms: i64) -> String {
    if ms <= 0 {
        "-".into()
    } else {
        format!("{:.1}s", (now - ms).max(0) as f64 / 1000.0)
    }
}

fn status_text(v: &GroupView) -> Result<(), Failure> {
    let c = &v.connection;
    out(&format!(
        "group {}: {} member(s), {}, {}, from {}",
        v.group,
        v.members.len(),
        c.message_model.as_deref().unwrap_or("-"),
        c.consume_type.as_deref().unwrap_or("-"),
        c.consume_from_where.as_deref().unwrap_or("-"),
    ))?;
    for b in v.brokers.iter().filter(|b| b.error.is_some()) {
        out(&format!(
            "warning: broker {} ({}) did not answer: {}",
            b.name,
            b.addr,
            b.error.as_deref().unwrap_or_default()
        ))?;
    }
    out("")?;
    out(&format!(
        "{:<48} {:<22} {:<6} {:>7} {:<8} {:>6} {:>10} {:>10}  SUBSCRIPTIONS",
        "MEMBER", "ADDRESS", "LANG", "VERSION", "ORDERLY", "QUEUES", "OK_TPS", "PULL_TPS"
    ))?;
    for m in &v.members {
        match &m.running {
            Ok(r) => {
                let (ok, pull) = r.status_table.values().fold((0.0, 0.0), |acc, s| {
                    (acc.0 + s.consume_ok_tps, acc.1 + s.pull_tps)
                });
                let subs = r
                    .subscriptions()
                    .iter()
                    .map(|(t, e)| format!("{t}={e}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                out(&format!(
                    "{:<48} {:<22} {:<6} {:>7} {:<8} {:>6} {:>10.1} {:>10.1}  {}",
                    m.client_id,
                    m.addr,
                    m.language,
                    m.version,
                    r.is_orderly(),
                    r.mq_table.values().filter(|q| !q.droped).count(),
                    ok,
                    pull,
                    subs
                ))?;
            }
            Err(e) => out(&format!(
                "{:<48} {:<22} {:<6} {:>7} (running info unavailable: {e})",
                m.client_id, m.addr, m.language, m.version
            ))?,
        }
    }
    out("")?;
    out(&format!(
        "{:<32} {:<12} {:>5} {:>10} {:>10} {:>8}  {:<48} {:>6} {:>7} {:<6} {:>9} {:>9}",
        "TOPIC",
        "BROKER",
        "QUEUE",
        "MAX",
        "COMMITTED",
        "LAG",
        "HELD BY",
        "CACHED",
        "CACHED_MIB",
        "LOCKED",
        "PULLED",
        "CONSUMED"
    ))?;
    let now = rmq_client_core::now_millis();
    for q in &v.queues {
        let (holder, pq) = match q.holders.as_slice() {
            [] if !q.poppers.is_empty() => (format!("pop: {}", q.poppers.join("+")), None),
            [] => ("-".to_owned(), None),
            [(id, pq)] => (id.clone(), Some(pq)),
            many => (
                many.iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                Some(&many[0].1),
            ),
        };
        out(&format!(
            "{:<32} {:<12} {:>5} {:>10} {:>10} {:>8}  {:<48} {:>6} {:>7} {:<6} {:>9} {:>9}",
            q.mq.topic,
            q.mq.broker_name,
            q.mq.queue_id,
            q.max_offset
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_else(|_| "?".into()),
            q.committed
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            q.lag().map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
            holder,
            pq.map(|p| p.cached_msg_count.to_string())
                .unwrap_or_else(|| "-".into()),
            pq.map(|p| p.cached_msg_size_in_mi_b.to_string())
                .unwrap_or_else(|| "-".into()),
            pq.map(|p| p.locked.to_string())
                .unwrap_or_else(|| "-".into()),
            pq.map(|p| ago(now, p.last_pull_timestamp))
                .unwrap_or_else(|| "-".into()),
            pq.map(|p| ago(now, p.last_consume_timestamp))
                .unwrap_or_else(|| "-".into()),
        ))?;
        if let Err(e) = &q.max_offset {
            out(&format!("  ({e})"))?;
        }
    }
    out(&format!("total lag: {}", v.total_lag()))?;
    for t in &v.missing_topics {
        out(&format!("warning: subscribed topic {t} has no route"))?;
    }
    for c in v.subscription_conflicts() {
        out(&format!("warning: subscriptions differ: {c}"))?;
    }
    Ok(())
}

fn status_json(v: &GroupView) -> serde_json::Value {
    use serde_json::json;
    let members: Vec<serde_json::Value> = v
        .members
        .iter()
        .map(|m| {
            let mut o = json!({
                "client_id": m.client_id,
                "address": m.addr,
                "language": m.language,
                "version": m.version,
            });
            match &m.running {
                Ok(r) => {
                    o["orderly"] = json!(r.is_orderly());
                    o["subscriptions"] = json!(r.subscriptions());
                    o["properties"] = json!(r.properties);
                    o["queues"] = json!(
                        r.mq_table
                            .iter()
                            .filter(|(_, q)| !q.droped)
                            .map(|(mq, _)| mq)
                            .collect::<Vec<_>>()
                    );
                    o["status"] = json!(
                        r.status_table
                            .iter()
                            .map(|(t, s)| (t.clone(), json!(s)))
                            .collect::<serde_json::Map<_, _>>()
                    );
                }
                Err(e) => o["error"] = json!(e),
            }
            o
        })
        .collect();
    let queues: Vec<serde_json::Value> = v
        .queues
        .iter()
        .map(|q| {
            json!({
                "topic": q.mq.topic,
                "broker": q.mq.broker_name,
                "queue_id": q.mq.queue_id,
                "max_offset": q.max_offset.as_ref().ok(),
                "error": q.max_offset.as_ref().err(),
                "committed_offset": q.committed,
                "lag": q.lag(),
                "popped_by": q.poppers,
                "held_by": q.holders.iter().map(|(id, pq)| json!({
                    "client_id": id,
                    "cached_msg_count": pq.cached_msg_count,
                    "cached_msg_size_mib": pq.cached_msg_size_in_mi_b,
                    "commit_offset": pq.commit_offset,
                    "locked": pq.locked,
                    "last_pull_timestamp": pq.last_pull_timestamp,
                    "last_consume_timestamp": pq.last_consume_timestamp,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "group": v.group,
        "message_model": v.connection.message_model,
        "consume_type": v.connection.consume_type,
        "consume_from_where": v.connection.consume_from_where,
        "brokers": v.brokers.iter().map(|b| json!({
            "name": b.name, "address": b.addr, "error": b.error,
        })).collect::<Vec<_>>(),
        "members": members,
        "topics": v.topics,
        "missing_topics": v.missing_topics,
        "queues": queues,
        "total_lag": v.total_lag(),
        "subscription_conflicts": v.subscription_conflicts(),
    })
}
