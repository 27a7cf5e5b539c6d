//! `rmq message --id ID` / `--key K --topic T`: messages looked up by id or key (Java
//! `MQAdminExt.viewMessage` / `queryMessage`, mqadmin `queryMsgById` / `queryMsgByKey`).

use super::*;
use rmq_client_core::admin::{QueryMessageRequestHeader, decode_offset_msg_id};

/// Most messages a key lookup returns per broker (Java `maxNum` of mqadmin is 64).
const MAX_PER_BROKER: i32 = 64;

/// What to look up.
pub(crate) struct Lookup {
    pub(crate) id: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) topic: Option<String>,
    pub(crate) format: Format,
}

pub(crate) async fn message(cluster: &Cluster, lookup: Lookup) -> Result<(), Failure> {
    let client = client_config(cluster, "message")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let found = find(&instance, &lookup).await;
    instance.shutdown(Duration::from_secs(1)).await;
    let found = found?;
    let what = lookup
        .id
        .as_deref()
        .map(|i| format!("id {i}"))
        .or_else(|| lookup.key.as_deref().map(|k| format!("key {k}")))
        .unwrap_or_default();
    if found.is_empty() {
        return Err(Failure(1, format!("no message with {what} found")));
    }
    for m in &found {
        out(&match lookup.format {
            Format::Json | Format::Summary => message_json(m),
            Format::Text => message_text(m),
        })?;
    }
    Ok(())
}

async fn find(instance: &ClientInstance, lookup: &Lookup) -> Result<Vec<MessageExt>, Failure> {
    let timeout = instance.config().mq_client_api_timeout;
    if let Some(id) = &lookup.id {
        // An offset message id names the broker and the commit-log offset: asked directly.
        // Otherwise (or when that broker does not have it) it is a unique (client) id,
        // found through the broker's index, which needs the topic (as in Java).
        let mut direct_error = None;
        if let Some((store_host, offset)) = decode_offset_msg_id(id) {
            let addr = instance.config().dial_addr(&store_host).to_owned();
            match instance.api().view_message(&addr, offset, timeout).await {
                Ok(m) if m.offset_msg_id().eq_ignore_ascii_case(id) => return Ok(vec![m]),
                Ok(_) => {}
                Err(e) => direct_error = Some(format!("{addr}: {}", error_chain(&e))),
            }
        }
        let Some(topic) = &lookup.topic else {
            return Err(Failure(
                2,
                match direct_error {
                    Some(e) => format!(
                        "{id} read as an offset message id failed ({e}); to look it up as a unique id pass --topic"
                    ),
                    None => format!(
                        "{id} is not an offset message id; a unique (client) id is looked up in a topic: pass --topic"
                    ),
                },
            ));
        };
        return query(instance, topic, id, true).await;
    }
    let (Some(key), Some(topic)) = (&lookup.key, &lookup.topic) else {
        return Err(Failure(2, "pass --id ID, or --key KEY with --topic".into()));
    };
    query(instance, topic, key, false).await
}

/// QUERY_MESSAGE to every master of `topic`, merged in store order.
async fn query(
    instance: &ClientInstance,
    topic: &str,
    key: &str,
    unique: bool,
) -> Result<Vec<MessageExt>, Failure> {
    instance
        .update_topic_route(topic)
        .await
        .map_err(|e| preflight::namesrv_failure(instance, &e))?;
    let route = instance
        .topic_route(topic)
        .ok_or_else(|| Failure(1, format!("no route for topic {topic}")))?;
    let header = QueryMessageRequestHeader {
        topic: topic.to_owned(),
        key: key.to_owned(),
        max_num: MAX_PER_BROKER,
        begin_timestamp: 0,
        end_timestamp: i64::MAX,
        unique_key_query: unique.then(|| "true".to_owned()),
    };
    let timeout = instance.config().mq_client_api_timeout;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for b in &route.broker_datas {
        let Some(addr) = b.master_addr() else {
            continue;
        };
        match instance.api().query_message(addr, &header, timeout).await {
            Ok(msgs) => found.extend(
                msgs.into_iter()
                    .map(|mut m| {
                        m.broker_name = b.broker_name.as_str().into();
                        m
                    })
                    .filter(|m| {
                        // The index is hashed: a lookup can return other keys' messages.
                        if unique {
                            m.uniq_key() == Some(key)
                        } else {
                            m.keys().any(|k| k == key)
                        }
                    }),
            ),
            Err(e) => errors.push(format!("{} ({addr}): {}", b.broker_name, error_chain(&e))),
        }
    }
    if found.is_empty() && !errors.is_empty() {
        return Err(Failure(1, format!("lookup failed: {}", errors.join("; "))));
    }
    for e in errors {
        eprintln!("rmq: warning: {e}");
    }
    found.sort_by_key(|m| (m.store_timestamp, m.commit_log_offset));
    found.dedup_by_key(|m| m.commit_log_offset);
    Ok(found)
}
