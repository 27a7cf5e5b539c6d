//! `rmq resend-dlq --group G`: messages of the group's dead-letter topic `%DLQ%G` handed
//! back to the group as retries, so that only group G receives them again (with their
//! original topic restored from `RETRY_TOPIC`, as every retry is), bounded by `--max`.
//!
//! Each message goes back with CONSUMER_SEND_MSG_BACK — the request a consumer uses for a
//! failed message — naming the DLQ record's commit-log offset, delay level 1 (1 s) and a
//! `maxReconsumeTimes` one above the record's delivery count: the broker stores it in
//! `%RETRY%G` with its properties and `ORIGIN_MESSAGE_ID`, and the group gets it once
//! more. Should it fail again, the consumer's own `maxReconsumeTimes` sends it straight
//! back to the DLQ (its count is kept), so a poison message cannot loop.
//!
//! Why not produce it to `%RETRY%G` with the count reset: the rocketmq-rust 1.0 broker
//! inverts Java's orderly-lock rule on that path (`handle_retry_and_dlq` sends a retry to
//! the DLQ when the group holds *no* unexpired lock; Java when it holds one), so on that
//! broker every such message lands in the DLQ again.
//!
//! Java has no such command: the dashboard's "resend" asks one live Java member to run its
//! listener on the message (CONSUME_MESSAGE_DIRECTLY) and leaves it in the DLQ, and
//! `mqadmin queryMsgById -s` sends it to its own topic — the DLQ again. Progress is kept
//! as group G's committed offset on `%DLQ%G` (no consumer subscribes a DLQ), so a second
//! run does not resend what the first one did. The DLQ is read without joining the group
//! (Java tools pull it as `TOOLS_CONSUMER` too), so the group's members are not rebalanced.

use super::*;
use rmq_client_core::header::{
    ConsumerSendMsgBackRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use rmq_client_core::message::property;
use rmq_client_core::route::perm;
use rmq_client_core::{ExpressionType, PullKernel, PullSpec, PullStatus, SubscriptionData};

/// Java's tools group (`MixAll.TOOLS_CONSUMER_GROUP`), which the DLQ is pulled as.
const TOOLS_CONSUMER_GROUP: &str = "TOOLS_CONSUMER";

/// The delay level of a resent message: 1 s (level 0 would let the broker pick
/// 3 + deliveries, two hours for a dead letter).
const RESEND_DELAY_LEVEL: i32 = 1;

/// What to resend.
pub(crate) struct ResendOpts {
    pub(crate) group: String,
    pub(crate) max: u64,
    pub(crate) dry_run: bool,
    pub(crate) format: Format,
}

pub(crate) async fn resend_dlq(cluster: &Cluster, opts: ResendOpts) -> Result<(), Failure> {
    let client = client_config(cluster, "resend-dlq")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let result = run(&instance, &opts).await;
    instance.shutdown(Duration::from_secs(1)).await;
    let (resent, skipped) = result?;
    let verb = if opts.dry_run {
        "would resend"
    } else {
        "resent"
    };
    eprintln!(
        "rmq: {verb} {resent} message(s) of {} to {}{}",
        rmq_client_core::namespace::dlq_topic(&opts.group),
        rmq_client_core::namespace::retry_topic(&opts.group),
        if skipped > 0 {
            format!("; {skipped} skipped (no RETRY_TOPIC: not a consumer's message)")
        } else {
            String::new()
        }
    );
    Ok(())
}

async fn run(instance: &ClientInstance, opts: &ResendOpts) -> Result<(u64, u64), Failure> {
    let group = &opts.group;
    let dlq = rmq_client_core::namespace::dlq_topic(group);
    let retry = rmq_client_core::namespace::retry_topic(group);
    match instance.update_topic_route(&dlq).await {
        Ok(_) => {}
        Err(rmq_client_core::ClientError::TopicRouteNotFound { .. }) => {
            eprintln!("rmq: {dlq} does not exist: no message of {group} went to the DLQ");
            return Ok((0, 0));
        }
        Err(e) => return Err(preflight::namesrv_failure(instance, &e)),
    }
    let route = instance.topic_route(&dlq).unwrap_or_default();
    if route.queue_datas.iter().all(|q| q.perm & perm::READ == 0) {
        return Err(Failure(
            1,
            format!(
                "{dlq} is write-only (perm 2, as brokers up to 4.9.1 create DLQ topics): make it readable first, e.g. `mqadmin updateTopic -c CLUSTER -t {dlq} -p 6`"
            ),
        ));
    }
    let subscription =
        SubscriptionData::build(&dlq, Some("*"), ExpressionType::Tag).map_err(fail)?;
    let kernel = PullKernel::new(instance, TOOLS_CONSUMER_GROUP);
    let timeout = instance.config().mq_client_api_timeout;
    let (mut resent, mut skipped) = (0u64, 0u64);
    for mq in instance.subscribe_queues(&dlq) {
        let (_, committed) = group_view::queue_offsets(instance, group, &mq)
            .await
            .map_err(|e| Failure(1, e))?;
        let mut offset = committed.unwrap_or(0);
        while resent < opts.max {
            let want = (opts.max - resent).min(32) as i32;
            let r = kernel
                .pull(PullSpec {
                    mq: &mq,
                    subscription: &subscription,
                    offset,
                    max_msg_nums: want,
                    commit_offset: None,
                    suspend: None,
                    post_subscription: true,
                    timeout,
                })
                .await
                .map_err(|e| Failure(1, format!("pull {mq:?}: {}", error_chain(&e))))?;
            match r.status {
                PullStatus::Found => {}
                PullStatus::OffsetIllegal => {
                    offset = r.next_begin_offset;
                    continue;
                }
                _ => break,
            }
            for m in r.messages.iter().take(want as usize) {
                let Some(origin) = m.property(property::RETRY_TOPIC) else {
                    skipped += 1;
                    offset = m.queue_offset + 1;
                    continue;
                };
                if opts.dry_run {
                    out(&dry_run_line(m, origin, opts.format))?;
                } else {
                    send_back(instance, group, &mq, m, origin, timeout)
                        .await
                        .map_err(|e| {
                            Failure(
                                1,
                                format!(
                                    "resend of {} to {retry} failed after {resent} resent: {}",
                                    m.msg_id(),
                                    error_chain(&e)
                                ),
                            )
                        })?;
                    out(&format!("{} -> {retry} (topic {origin})", m.msg_id()))?;
                }
                resent += 1;
                offset = m.queue_offset + 1;
            }
            if !opts.dry_run {
                commit(instance, group, &mq, offset, timeout).await?;
            }
        }
    }
    Ok((resent, skipped))
}

fn dry_run_line(m: &MessageExt, origin: &str, format: Format) -> String {
    match format {
        Format::Json | Format::Summary => message_json(m),
        Format::Text => format!(
            "{} topic={origin} reconsumeTimes={} stored={}",
            m.msg_id(),
            m.reconsume_times,
            m.store_timestamp
        ),
    }
}

/// CONSUMER_SEND_MSG_BACK of the DLQ record `m` for `group`: stored in `%RETRY%group`
/// with one more delivery allowed.
async fn send_back(
    instance: &ClientInstance,
    group: &str,
    mq: &MessageQueue,
    m: &MessageExt,
    origin: &str,
    timeout: Duration,
) -> Result<(), rmq_client_core::ClientError> {
    let addr = instance.master_addr_cached(mq).ok_or_else(|| {
        rmq_client_core::ClientError::BrokerNotFound {
            broker_name: mq.broker_name.clone(),
        }
    })?;
    let header = ConsumerSendMsgBackRequestHeader {
        offset: m.commit_log_offset,
        group: group.to_owned(),
        delay_level: RESEND_DELAY_LEVEL,
        origin_msg_id: Some(
            m.property(property::ORIGIN_MESSAGE_ID)
                .map_or_else(|| m.msg_id().into_owned(), str::to_owned),
        ),
        origin_topic: Some(origin.to_owned()),
        unit_mode: false,
        max_reconsume_times: Some(m.reconsume_times.saturating_add(1)),
        bname: Some(mq.broker_name.clone()),
    };
    instance
        .api()
        .consumer_send_msg_back(&addr, &header, timeout)
        .await
}

/// Records the resend progress as the group's offset on the DLQ queue.
async fn commit(
    instance: &ClientInstance,
    group: &str,
    mq: &MessageQueue,
    offset: i64,
    timeout: Duration,
) -> Result<(), Failure> {
    let addr = instance.master_addr_cached(mq).ok_or_else(|| {
        Failure(
            1,
            format!("no master address for broker {}", mq.broker_name),
        )
    })?;
    let header = UpdateConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        commit_offset: offset,
        bname: Some(mq.broker_name.clone()),
    };
    instance
        .api()
        .update_consumer_offset(&addr, &header, timeout)
        .await
        .map_err(|e| {
            Failure(
                1,
                format!(
                    "messages resent but the progress on {mq:?} was not recorded (a next run resends them again): {}",
                    error_chain(&e)
                ),
            )
        })
}
