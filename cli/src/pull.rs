//! `rmq pull`: one queue from an offset, through the pull consumer.

use super::*;

pub(crate) async fn pull(
    namesrv: &Option<String>,
    topic: &str,
    queue_id: i32,
    broker: Option<String>,
    offset: i64,
    count: usize,
    format: Format,
) -> Result<(), Failure> {
    let client = client_config(namesrv, "pull")?;
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
    while printed < count {
        let r = consumer
            .pull(&mq, "*", next, (count - printed).min(32) as i32)
            .await
            .map_err(fail)?;
        if r.messages.is_empty() {
            break;
        }
        for m in &r.messages {
            if printed < count {
                out(&if format == Format::Json {
                    message_json(m)
                } else {
                    message_text(m)
                })?;
                printed += 1;
            }
        }
        next = r.next_begin_offset;
    }
    consumer.shutdown().await;
    Ok(())
}
