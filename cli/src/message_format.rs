//! One consumed message as a line of text or JSON.

use super::*;

pub(crate) fn message_json(m: &MessageExt) -> String {
    let props: BTreeMap<&str, &str> = m.properties.iter().collect();
    let mut v = serde_json::json!({
        "topic": &*m.topic,
        "brokerName": &*m.broker_name,
        "queueId": m.queue_id,
        "queueOffset": m.queue_offset,
        "msgId": m.msg_id(),
        "offsetMsgId": m.offset_msg_id(),
        "keys": m.keys().collect::<Vec<_>>(),
        "tags": m.tags(),
        "bornTimestamp": m.born_timestamp,
        "storeTimestamp": m.store_timestamp,
        "reconsumeTimes": m.reconsume_times,
        "properties": props,
    });
    match std::str::from_utf8(&m.body) {
        Ok(text) => v["body"] = serde_json::Value::from(text),
        Err(_) => {
            v["body"] =
                serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(&m.body));
            v["bodyEncoding"] = serde_json::Value::from("base64");
        }
    }
    v.to_string()
}

pub(crate) fn message_text(m: &MessageExt) -> String {
    format!(
        "{} {} {} {} tags={} keys={} {}",
        m.topic,
        m.queue_id,
        m.queue_offset,
        m.msg_id(),
        m.tags().unwrap_or("-"),
        m.keys().collect::<Vec<_>>().join(","),
        String::from_utf8_lossy(&m.body)
    )
}
