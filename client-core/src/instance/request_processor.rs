//! Broker→client requests (Java `ClientRemotingProcessor`).

use super::*;

/// Dispatches broker→client requests (Java `ClientRemotingProcessor`) to the consumer of the
/// group they name.
pub(super) struct BrokerRequestHandler(pub(super) Weak<Inner>);

fn error_response(code: ResponseCode, remark: String) -> Option<RemotingCommand> {
    Some(RemotingCommand::response(code, remark))
}

impl RequestHandler for BrokerRequestHandler {
    fn handle(
        &self,
        ctx: InboundContext,
        req: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>> {
        let Some(inner) = self.0.upgrade() else {
            return Box::pin(async { None });
        };
        let instance = ClientInstance { inner };
        Box::pin(async move {
            let code = req.request_code();
            match code {
                RequestCode::NOTIFY_CONSUMER_IDS_CHANGED => {
                    let h: ConsumerGroupHeader = req.decode_header().ok()?;
                    tracing::info!(addr = %ctx.addr, group = %h.consumer_group, "consumer ids changed, rebalancing");
                    if let Some(c) = instance.consumer(&h.consumer_group) {
                        c.trigger_rebalance();
                    }
                    None
                }
                RequestCode::RESET_CONSUMER_CLIENT_OFFSET => {
                    let h: TopicGroupHeader = req.decode_header().ok()?;
                    let offsets = match fastjson::parse_reset_offset_body(&req.body) {
                        Ok(o) => o,
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable reset-offset body");
                            return None;
                        }
                    };
                    if let Some(c) = instance.consumer(&h.group) {
                        c.reset_offset(&h.topic, offsets).await;
                    }
                    None
                }
                RequestCode::GET_CONSUMER_STATUS_FROM_CLIENT => {
                    let h: TopicGroupHeader = match req.decode_header() {
                        Ok(h) => h,
                        Err(e) => return error_response(ResponseCode::SYSTEM_ERROR, e.to_string()),
                    };
                    let table = instance
                        .consumer(&h.group)
                        .map(|c| c.consumer_status(&h.topic))
                        .unwrap_or_default();
                    let body = fastjson::consumer_status_body(&table);
                    Some(RemotingCommand::response(ResponseCode::SUCCESS, None).with_body(body))
                }
                RequestCode::GET_CONSUMER_RUNNING_INFO => {
                    let h: ConsumerGroupHeader = match req.decode_header() {
                        Ok(h) => h,
                        Err(e) => return error_response(ResponseCode::SYSTEM_ERROR, e.to_string()),
                    };
                    match instance
                        .consumer(&h.consumer_group)
                        .and_then(|c| c.running_info())
                    {
                        Some(body) => Some(
                            RemotingCommand::response(ResponseCode::SUCCESS, None).with_body(body),
                        ),
                        None => error_response(
                            ResponseCode::SYSTEM_ERROR,
                            format!(
                                "The Consumer Group <{}> not exist in this consumer",
                                h.consumer_group
                            ),
                        ),
                    }
                }
                RequestCode::CONSUME_MESSAGE_DIRECTLY => {
                    let h: ConsumeMessageDirectlyResultRequestHeader = match req.decode_header() {
                        Ok(h) => h,
                        Err(e) => return error_response(ResponseCode::SYSTEM_ERROR, e.to_string()),
                    };
                    let msg = match decode_message(&req.body) {
                        Ok(m) => m,
                        Err(e) => return error_response(ResponseCode::SYSTEM_ERROR, e.to_string()),
                    };
                    let Some(c) = instance.consumer(&h.consumer_group) else {
                        return error_response(
                            ResponseCode::SYSTEM_ERROR,
                            format!(
                                "The Consumer Group <{}> not exist in this consumer",
                                h.consumer_group
                            ),
                        );
                    };
                    match c.consume_message_directly(msg, h.broker_name).await {
                        Some(body) => Some(
                            RemotingCommand::response(ResponseCode::SUCCESS, None).with_body(body),
                        ),
                        None => error_response(
                            ResponseCode::SYSTEM_ERROR,
                            "consume message directly is not supported by this consumer".into(),
                        ),
                    }
                }
                _ => None,
            }
        })
    }
}
