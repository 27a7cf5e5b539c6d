//! Message trace records (Java `TraceContext`, `TraceBean`, `TraceDataEncoder`,
//! REMOTING-5X.md §6): what a consumer sends to the trace topic so that the dashboard's
//! "message trace" and `mqadmin QueryMsgTraceById` show who consumed a message, when,
//! how long it took and whether it succeeded.
//!
//! The encoding is Java's exactly (`vectors/trace.json`): fields joined by U+0001, each
//! record ended by U+0002, a missing value written `null`. The sending side is
//! [`TraceDispatcher`](crate::trace_dispatcher::TraceDispatcher).

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Separates the fields of a record (Java `TraceConstants.CONTENT_SPLITOR`).
pub const CONTENT_SPLITOR: char = '\u{1}';
/// Ends a record (Java `TraceConstants.FIELD_SPLITOR`).
pub const FIELD_SPLITOR: char = '\u{2}';
/// The default trace topic (Java `TopicValidator.RMQ_SYS_TRACE_TOPIC`); brokers create it
/// only with `traceTopicEnable=true`.
pub const RMQ_SYS_TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";
/// Most characters in one trace message's body (Java `maxMessageSize` of the trace
/// producer, 128 000).
pub const MAX_TRACE_BODY: usize = 128_000;

/// The kind of a trace record (Java `TraceType`). rmq writes the consumer's two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceType {
    /// A producer's send (decoded, never written by rmq).
    Pub,
    /// A listener call is about to run.
    SubBefore,
    /// A listener call returned.
    SubAfter,
}

/// How a listener call ended, written as its ordinal (Java `ConsumeReturnType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeReturnType {
    /// CONSUME_SUCCESS / SUCCESS.
    Success = 0,
    /// Ran past `consumeTimeout`.
    TimeOut = 1,
    /// Panicked (Java: threw).
    Exception = 2,
    /// Java: returned null (never in rmq).
    ReturnNull = 3,
    /// RECONSUME_LATER / SUSPEND_CURRENT_QUEUE_A_MOMENT.
    Failed = 4,
}

impl ConsumeReturnType {
    /// From rmq's status names (`ConsumeMessageContext::status`).
    pub fn from_status(status: &str) -> Self {
        match status {
            "CONSUME_SUCCESS" | "SUCCESS" => ConsumeReturnType::Success,
            "TIME_OUT" => ConsumeReturnType::TimeOut,
            "EXCEPTION" => ConsumeReturnType::Exception,
            _ => ConsumeReturnType::Failed,
        }
    }
}

/// One message in a trace record (Java `TraceBean`; only the fields a consumer record
/// encodes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceBean {
    /// Topic, without namespace.
    pub topic: String,
    /// The message id a producer assigned (`UNIQ_KEY`), never the offset id.
    pub msg_id: String,
    /// Its `KEYS` property, `None` when it has none (written `null`, which Java's own
    /// decoder reads back; an empty string breaks it).
    pub keys: Option<String>,
    /// Deliveries before this one (`reconsumeTimes`).
    pub retry_times: i32,
}

/// One trace record (Java `TraceContext`) of a consumer: SubBefore or SubAfter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// SubBefore or SubAfter.
    pub trace_type: TraceType,
    /// When the record was made, ms since the epoch.
    pub time_stamp: i64,
    /// The messages' `MSG_REGION` (the broker's `regionId`); `None` is written `null`.
    pub region_id: Option<String>,
    /// The consumer group, without namespace.
    pub group_name: String,
    /// Pairs a SubBefore with its SubAfter: a unique id per listener call.
    pub request_id: String,
    /// SubAfter: the call's time divided by its message count, ms (Java integer division).
    pub cost_time: i64,
    /// SubAfter: whether the call succeeded.
    pub success: bool,
    /// SubAfter: how it ended.
    pub context_code: ConsumeReturnType,
    /// The call's messages.
    pub beans: Vec<TraceBean>,
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("null")
}

impl TraceContext {
    /// Appends the record(s) to `out`: one per bean, Java `encoderFromContextBean` with the
    /// LOCAL access channel (rmq never writes CLOUD records, whose 4.9.8 form drops the
    /// record end).
    pub fn encode_into(&self, out: &mut String) {
        let c = CONTENT_SPLITOR;
        for b in &self.beans {
            match self.trace_type {
                TraceType::SubBefore => {
                    let _ = write!(
                        out,
                        "SubBefore{c}{}{c}{}{c}{}{c}{}{c}{}{c}{}{c}{}",
                        self.time_stamp,
                        opt(&self.region_id),
                        self.group_name,
                        self.request_id,
                        b.msg_id,
                        b.retry_times,
                        opt(&b.keys)
                    );
                }
                TraceType::SubAfter => {
                    let _ = write!(
                        out,
                        "SubAfter{c}{}{c}{}{c}{}{c}{}{c}{}{c}{}{c}{}{c}{}",
                        self.request_id,
                        b.msg_id,
                        self.cost_time,
                        self.success,
                        opt(&b.keys),
                        self.context_code as i32,
                        self.time_stamp,
                        self.group_name
                    );
                }
                // A consumer never writes Pub records.
                TraceType::Pub => continue,
            }
            out.push(FIELD_SPLITOR);
        }
    }

    /// The record(s) as one string.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        self.encode_into(&mut s);
        s
    }

    /// The keys the trace message carries for this record (Java `transKey`): every bean's
    /// msgId and each of its keys split on single spaces (so `"k1  k2"` adds an empty key,
    /// as in Java), added to `keys`.
    pub fn add_keys(&self, keys: &mut BTreeSet<String>) {
        for b in &self.beans {
            keys.insert(b.msg_id.clone());
            if let Some(k) = b.keys.as_deref().filter(|k| !k.is_empty()) {
                keys.extend(k.split(' ').map(str::to_owned));
            }
        }
    }
}

/// One record read back from a trace message body (enough to check a consumer's trace:
/// the fields a SubBefore or SubAfter carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// SubBefore, SubAfter or Pub.
    pub trace_type: TraceType,
    /// The record's fields after the type, as written.
    pub fields: Vec<String>,
}

impl DecodedRecord {
    /// The message id (SubBefore field 5, SubAfter field 2, Pub field 5; 1-based after the
    /// type).
    pub fn msg_id(&self) -> Option<&str> {
        let i = match self.trace_type {
            TraceType::SubAfter => 1,
            TraceType::SubBefore | TraceType::Pub => 4,
        };
        self.fields.get(i).map(String::as_str)
    }
}

/// Splits a trace message body into records (Java `decoderFromTraceDataString`, without
/// its crashes on short records: a record with an unknown type is skipped).
pub fn decode(body: &str) -> Vec<DecodedRecord> {
    body.split(FIELD_SPLITOR)
        .filter(|r| !r.is_empty())
        .filter_map(|r| {
            let mut parts = r.split(CONTENT_SPLITOR);
            let trace_type = match parts.next()? {
                "Pub" => TraceType::Pub,
                "SubBefore" => TraceType::SubBefore,
                "SubAfter" => TraceType::SubAfter,
                _ => return None,
            };
            Some(DecodedRecord {
                trace_type,
                fields: parts.map(str::to_owned).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = crate::testing::vectors_dir().join("trace.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors/trace.json")).unwrap()
    }

    fn context(input: &Value) -> Option<TraceContext> {
        let trace_type = match input["traceType"].as_str()? {
            "SubBefore" => TraceType::SubBefore,
            "SubAfter" => TraceType::SubAfter,
            _ => return None,
        };
        let context_code = match input["contextCode"].as_i64()? {
            0 => ConsumeReturnType::Success,
            1 => ConsumeReturnType::TimeOut,
            2 => ConsumeReturnType::Exception,
            3 => ConsumeReturnType::ReturnNull,
            _ => ConsumeReturnType::Failed,
        };
        Some(TraceContext {
            trace_type,
            time_stamp: input["timeStamp"].as_i64()?,
            region_id: input["regionId"].as_str().map(str::to_owned),
            group_name: input["groupName"].as_str()?.to_owned(),
            request_id: input["requestId"].as_str()?.to_owned(),
            cost_time: input["costTime"].as_i64()?,
            success: input["success"].as_bool()?,
            context_code,
            beans: input["traceBeans"]
                .as_array()?
                .iter()
                .map(|b| TraceBean {
                    topic: b["topic"].as_str().unwrap().to_owned(),
                    msg_id: b["msgId"].as_str().unwrap().to_owned(),
                    keys: b["keys"].as_str().map(str::to_owned),
                    retry_times: b["retryTimes"].as_i64().unwrap() as i32,
                })
                .collect(),
        })
    }

    #[test]
    fn consumer_records_encode_exactly_as_java() {
        let v = vectors();
        let mut checked = 0;
        for case in v["cases"].as_array().unwrap() {
            let id = case["id"].as_str().unwrap();
            // Pub is a producer's record; CLOUD and a null access channel are channels
            // rmq never writes (4.9.8 CLOUD drops the record end; null throws in Java).
            if id.starts_with("pub_") || id.contains("cloud") || id.contains("null_access") {
                continue;
            }
            let ctx = context(&case["input"]).unwrap();
            assert_eq!(ctx.encode(), case["transData"].as_str().unwrap(), "{id}");
            let mut keys = BTreeSet::new();
            ctx.add_keys(&mut keys);
            let want: BTreeSet<String> = case["transKey"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect();
            assert_eq!(keys, want, "{id}");
            checked += 1;
        }
        assert_eq!(checked, 6);
    }

    #[test]
    fn a_trace_message_body_is_the_records_concatenated_and_reads_back() {
        let v = vectors();
        let body = v["traceMessage"]["body"].as_str().unwrap();
        let records = decode(body);
        let kinds: Vec<TraceType> = records.iter().map(|r| r.trace_type).collect();
        assert_eq!(
            kinds,
            [
                TraceType::SubBefore,
                TraceType::SubAfter,
                TraceType::SubBefore
            ]
        );
        assert_eq!(
            records[1].msg_id(),
            Some("0A00000100002A9F0000000000000001")
        );
        assert_eq!(
            records[2].msg_id(),
            Some("0A00000100002A9F0000000000000002")
        );
        // Re-encoding the contexts gives the body byte for byte.
        let mut again = String::new();
        for r in &records {
            let f = &r.fields;
            let ctx = match r.trace_type {
                TraceType::SubBefore => TraceContext {
                    trace_type: TraceType::SubBefore,
                    time_stamp: f[0].parse().unwrap(),
                    region_id: Some(f[1].clone()),
                    group_name: f[2].clone(),
                    request_id: f[3].clone(),
                    cost_time: 0,
                    success: true,
                    context_code: ConsumeReturnType::Success,
                    beans: vec![TraceBean {
                        topic: String::new(),
                        msg_id: f[4].clone(),
                        keys: Some(f[6].clone()),
                        retry_times: f[5].parse().unwrap(),
                    }],
                },
                _ => TraceContext {
                    trace_type: TraceType::SubAfter,
                    time_stamp: f[6].parse().unwrap(),
                    region_id: None,
                    group_name: f[7].clone(),
                    request_id: f[0].clone(),
                    cost_time: f[2].parse().unwrap(),
                    success: f[3] == "true",
                    context_code: ConsumeReturnType::Success,
                    beans: vec![TraceBean {
                        topic: String::new(),
                        msg_id: f[1].clone(),
                        keys: Some(f[4].clone()),
                        retry_times: 0,
                    }],
                },
            };
            ctx.encode_into(&mut again);
        }
        assert_eq!(again, body);
        assert!(decode("Bogus\u{1}x\u{2}").is_empty());
    }
}
