//! The consume hook that records message trace (Java `ConsumeMessageTraceHookImpl`): a
//! SubBefore record when a listener call starts and a SubAfter when it ends, handed to a
//! [`TraceDispatcher`] that sends them without ever making consumption wait.

use std::collections::HashMap;
use std::sync::Mutex;

use rmq_client_core::message::property;
use rmq_client_core::trace::{ConsumeReturnType, TraceBean, TraceContext, TraceType};
use rmq_client_core::trace_dispatcher::TraceDispatcher;
use rmq_client_core::{MessageExt, now_millis};

use crate::listener::{ConsumeMessageContext, ConsumeMessageHook};

/// Records SubBefore / SubAfter for every listener call of one consumer.
///
/// As in Java: messages whose `TRACE_ON` property is `false` are left out (a call with
/// only such messages is not traced); `regionId` is the last message's `MSG_REGION`.
/// Where Java 5.x drops a call whose messages carry no `MSG_REGION` (brokers before 5.x
/// without a send hook do not store it), rmq writes `null` as Java 4.9.8 does, so the
/// trace is kept (REMOTING-5X.md §6.3).
#[derive(Debug)]
pub struct ConsumeMessageTraceHook {
    dispatcher: TraceDispatcher,
    /// The group without namespace.
    group: String,
    namespace: String,
    /// Calls between `before` and `after`, by call id.
    calls: Mutex<HashMap<u64, OpenCall>>,
}

/// A call whose SubBefore was recorded.
#[derive(Debug)]
struct OpenCall {
    request_id: String,
    started_ms: i64,
    beans: Vec<TraceBean>,
    region: Option<String>,
}

impl ConsumeMessageTraceHook {
    /// A hook recording for `group` (namespaced or not; written without the namespace, as
    /// Java does) into `dispatcher`.
    pub fn new(dispatcher: TraceDispatcher, group: &str, namespace: &str) -> Self {
        ConsumeMessageTraceHook {
            dispatcher,
            group: rmq_client_core::namespace::unwrap(namespace, group),
            namespace: namespace.to_owned(),
            calls: Mutex::new(HashMap::new()),
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<u64, OpenCall>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ConsumeMessageHook for ConsumeMessageTraceHook {
    fn hook_name(&self) -> &str {
        "ConsumeMessageTraceHook"
    }

    fn consume_message_before(&self, ctx: &ConsumeMessageContext, msgs: &[MessageExt]) {
        let mut region = None;
        let beans: Vec<TraceBean> = msgs
            .iter()
            .filter(|m| m.property("TRACE_ON") != Some("false"))
            .map(|m| {
                if let Some(r) = m.property("MSG_REGION") {
                    region = Some(r.to_owned());
                }
                TraceBean {
                    topic: rmq_client_core::namespace::unwrap(&self.namespace, &m.topic),
                    msg_id: m.msg_id().into_owned(),
                    keys: m.property(property::KEYS).map(str::to_owned),
                    retry_times: m.reconsume_times,
                }
            })
            .collect();
        if beans.is_empty() {
            return;
        }
        let request_id = rmq_client_core::producer::create_uniq_id();
        let now = now_millis();
        self.dispatcher.append(TraceContext {
            trace_type: TraceType::SubBefore,
            time_stamp: now,
            region_id: region.clone(),
            group_name: self.group.clone(),
            request_id: request_id.clone(),
            cost_time: 0,
            success: true,
            context_code: ConsumeReturnType::Success,
            beans: beans.clone(),
        });
        self.calls().insert(
            ctx.call_id,
            OpenCall {
                request_id,
                started_ms: now,
                beans,
                region,
            },
        );
    }

    fn consume_message_after(&self, ctx: &ConsumeMessageContext, _msgs: &[MessageExt]) {
        let Some(OpenCall {
            request_id,
            started_ms: started,
            beans,
            region,
        }) = self.calls().remove(&ctx.call_id)
        else {
            return;
        };
        let now = now_millis();
        let count = beans.len().max(1) as i64;
        self.dispatcher.append(TraceContext {
            trace_type: TraceType::SubAfter,
            time_stamp: now,
            region_id: region,
            group_name: self.group.clone(),
            request_id,
            cost_time: (now - started) / count,
            success: ctx.success,
            context_code: ConsumeReturnType::from_status(ctx.status),
            beans,
        });
    }
}
