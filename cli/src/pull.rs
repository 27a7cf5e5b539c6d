//! `rmq pull`: one queue from an offset, through the pull consumer.

use super::*;

pub(crate) async fn pull(
    cluster: &Cluster,
    topic: &str,
    queue_id: i32,
    broker: Option<String>,
    offset: i64,
    count: usize,
    format: Format,
) -> Result<(), Failure> {
    let client = client_config(cluster, "pull")?;
    let consumer =
        rmq_pull_consumer::PullConsumer::builder(&format!("rmq-cli-pull-{}", std::process::id()))
            .client_config(client)
            .start()
            .await
            .map_err(fail)?;
    let queues = consumer
        .fetch_subscribe_message_queues(topic)
        .await
        .map_err(fail)?;
    let mq = queues
        .iter()
        .find(|q| q.queue_id == queue_id && broker.as_ref().is_none_or(|b| &q.broker_name == b))
        .cloned()
        .ok_or_else(|| {
            Failure(
                1,
                format!(
                    "topic {topic} has no queue {queue_id}{}",
                    broker.map(|b| format!(" on {b}")).unwrap_or_default()
                ),
            )
        })?;
    let mut next = offset;
    let mut printed = 0;
    let mut first_offset = None;
    let mut last = None;
    while printed < count {
        let r = consumer
            .pull(&mq, "*", next, (count - printed).min(32) as i32)
            .await
            .map_err(fail)?;
        let (min, max) = (r.min_offset, r.max_offset);
        last = Some((min, max));
        match r.status {
            rmq_client_core::PullStatus::OffsetIllegal => {
                consumer.shutdown().await;
                return Err(Failure(
                    1,
                    format!(
                        "offset {next} is outside queue {queue_id} of {topic} on {}: its messages are at offsets {min}..{max}",
                        mq.broker_name
                    ),
                ));
            }
            rmq_client_core::PullStatus::NoNewMsg | rmq_client_core::PullStatus::NoMatchedMsg
                if printed == 0 =>
            {
                eprintln!(
                    "rmq: no message at offset {next}: queue {queue_id} of {topic} on {} ends at offset {max}",
                    mq.broker_name
                );
                break;
            }
            _ => {}
        }
        if r.messages.is_empty() {
            break;
        }
        for m in &r.messages {
            if printed < count {
                first_offset.get_or_insert(m.queue_offset);
                match format {
                    Format::Json => out(&message_json(m))?,
                    Format::Text => out(&message_text(m))?,
                    Format::Summary => {}
                }
                printed += 1;
                next = m.queue_offset + 1;
            }
        }
    }
    if format == Format::Summary {
        out(&serde_json::json!({
            "topic": topic,
            "broker": mq.broker_name,
            "queue_id": queue_id,
            "messages": printed,
            "first_offset": first_offset,
            "next_offset": next,
            "min_offset": last.map(|l| l.0),
            "max_offset": last.map(|l| l.1),
        })
        .to_string())?;
    }
    consumer.shutdown().await;
    Ok(())
}
