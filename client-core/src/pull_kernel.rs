//! [`PullKernel`]: one pull of one queue, shared by every consumer (Java `PullAPIWrapper`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::api::{PullResult, pull_sys_flag};
use crate::error::ClientError;
use crate::filter::SubscriptionData;
use crate::header::PullMessageRequestHeader;
use crate::instance::ClientInstance;
use crate::route::{MASTER_ID, MessageQueue};

/// A NO_NEW_MSG answer sooner than this to a pull that asked the broker to hold it means
/// the broker did not hold it (see [`unheld_empty_pull_pause`]).
const HELD_AT_LEAST: Duration = Duration::from_millis(500);
/// The pause after such an answer: at most 10 pulls a second per queue.
const UNHELD_EMPTY_PULL_PAUSE: Duration = Duration::from_millis(100);

/// How long a pull loop waits before pulling `mq` again after `result`, which came back
/// `elapsed` after a long-polling pull was sent: `Some` (100 ms) for a NO_NEW_MSG answered
/// at once (under 500 ms), `None` otherwise. A broker normally holds such a pull until a
/// message arrives or the hold ends; one that does not (the rocketmq-rust 1.0 broker for
/// static topics, or a broker with long polling off) would otherwise be pulled in a busy
/// loop. Java has no such guard.
pub fn unheld_empty_pull_pause(result: &PullResult, elapsed: Duration) -> Option<Duration> {
    unheld_empty_answer_pause(result.status == crate::api::PullStatus::NoNewMsg, elapsed)
}

/// [`unheld_empty_pull_pause`] for any long poll (pulls and pops): `empty` says the answer
/// was "nothing new".
pub fn unheld_empty_answer_pause(empty: bool, elapsed: Duration) -> Option<Duration> {
    (empty && elapsed < HELD_AT_LEAST).then_some(UNHELD_EMPTY_PULL_PAUSE)
}

/// What one pull asks for.
#[derive(Debug, Clone, Copy)]
pub struct PullSpec<'a> {
    /// The queue.
    pub mq: &'a MessageQueue,
    /// The subscription: its expression goes in the header, and FOUND messages are
    /// re-filtered by exact tag with it.
    pub subscription: &'a SubscriptionData,
    /// Queue offset to read from.
    pub offset: i64,
    /// Messages at most (Java `pullBatchSize`, default 32).
    pub max_msg_nums: i32,
    /// Offset to commit with the pull (the push consumer's piggy-backed commit); only sent
    /// to a master (Java `commitOffsetEnable`).
    pub commit_offset: Option<i64>,
    /// Long-poll hold at the broker when nothing is there (FLAG_SUSPEND); `None` answers at once.
    pub suspend: Option<Duration>,
    /// Whether the broker filters with this request's subscription (FLAG_SUBSCRIPTION; the
    /// pull consumers) rather than the one registered by heartbeat (the push consumer).
    pub post_subscription: bool,
    /// RPC timeout; must exceed `suspend`.
    pub timeout: Duration,
}

/// Pulls queues of one consumer group: finds the broker (the one last suggested for the
/// queue, the route refreshed when unknown), builds the header, sends it, records the
/// broker's next suggestion and processes the result (exact-tag re-filter, broker name,
/// queue min/max offsets). The push consumer, the pull consumer and the lite pull consumer
/// all pull through it.
///
/// A pull of a queue whose last answer left at least as many messages behind as it
/// carried is sent expecting about as many bytes again
/// ([`ClientApi::pull_message_expecting`](crate::api::ClientApi::pull_message_expecting)),
/// so that a consumer draining a backlog is woken once for several answers.
#[derive(Debug)]
pub struct PullKernel {
    instance: ClientInstance,
    group: String,
    queues: Mutex<foldhash::HashMap<MessageQueue, QueueState>>,
}

/// What the kernel remembers of a queue's last pull.
#[derive(Debug, Clone, Copy)]
struct QueueState {
    /// `suggestWhichBrokerId` (Java `pullFromWhichNodeTable`).
    suggest: i64,
    /// The offset the next pull should ask for and the bytes it should bring, when the
    /// last answer said the queue had at least as many messages left as it carried.
    expect: Option<(i64, usize)>,
}

/// The answer a pull after `r` (not yet re-filtered) can expect: `r`'s bytes again from
/// its next offset, when at least as many messages as it carried are left behind it.
fn expectation(r: &PullResult) -> Option<(i64, usize)> {
    let carried = r.messages.len();
    if r.status != crate::api::PullStatus::Found || carried == 0 {
        return None;
    }
    let left = r.max_offset.saturating_sub(r.next_begin_offset);
    let bytes: usize = r
        .messages
        .iter()
        .map(|m| m.store_size.max(0) as usize)
        .sum();
    (left >= carried as i64).then_some((r.next_begin_offset, bytes))
}

impl PullKernel {
    /// A kernel for (namespaced) `group`.
    pub fn new(instance: &ClientInstance, group: &str) -> Self {
        PullKernel {
            instance: instance.clone(),
            group: group.to_owned(),
            queues: Mutex::new(HashMap::default()),
        }
    }

    /// The broker suggested for `mq`, and the bytes a pull of it from `offset` can expect
    /// (0: no expectation).
    fn state(&self, mq: &MessageQueue, offset: i64) -> (i64, usize) {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        match queues.get(mq) {
            Some(q) => (
                q.suggest,
                q.expect.filter(|e| e.0 == offset).map_or(0, |e| e.1),
            ),
            None => (MASTER_ID, 0),
        }
    }

    /// One pull (Java `pullKernelImpl` + `processPullResult`).
    ///
    /// # Errors
    /// [`ClientError::BrokerNotFound`] or the route refresh's error when no broker serves
    /// the queue; transport errors; [`ClientError::Broker`] for a refusal (FLOW_CONTROL,
    /// SUBSCRIPTION_NOT_LATEST…); [`ClientError::Decode`] for a body that does not decode.
    pub async fn pull(&self, spec: PullSpec<'_>) -> Result<PullResult, ClientError> {
        let mq = spec.mq;
        let sub = spec.subscription;
        let (suggested, expected_bytes) = self.state(mq, spec.offset);
        let found = self.instance.pull_addr_of(mq, suggested).await?;
        let commit = spec.commit_offset.filter(|_| !found.slave);
        let sys_flag = pull_sys_flag::build(
            commit.is_some(),
            spec.suspend.is_some(),
            spec.post_subscription,
            false,
        );
        let header = PullMessageRequestHeader {
            consumer_group: Cow::Borrowed(&self.group),
            topic: Cow::Borrowed(&mq.topic),
            queue_id: mq.queue_id,
            queue_offset: spec.offset,
            max_msg_nums: spec.max_msg_nums,
            sys_flag,
            commit_offset: commit.unwrap_or(0),
            suspend_timeout_millis: spec.suspend.map_or(0, |d| d.as_millis() as i64),
            subscription: Some(Cow::Borrowed(&sub.sub_string)),
            sub_version: sub.sub_version,
            expression_type: Some(Cow::Borrowed(sub.expression_type.as_str())),
            max_msg_bytes: None,
            bname: Some(Cow::Borrowed(&mq.broker_name)),
        };
        let pulled = self
            .instance
            .api()
            .pull_message_expecting(&found.addr, &header, spec.timeout, expected_bytes)
            .await;
        let lock = || self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let mut r = match pulled {
            Ok(r) => r,
            Err(e) => {
                // A failed pull says nothing of the next answer: expect nothing of it.
                if let Some(q) = lock().get_mut(mq) {
                    q.expect = None;
                }
                return Err(e);
            }
        };
        let state = QueueState {
            suggest: r.suggest_which_broker_id,
            expect: expectation(&r),
        };
        {
            let mut queues = lock();
            match queues.get_mut(mq) {
                Some(q) => *q = state,
                None => {
                    queues.insert(mq.clone(), state);
                }
            }
        }
        r.process(mq, Some(sub));
        Ok(r)
    }

    /// Forgets the suggestion and expectation for `mq` (the queue was released).
    pub fn forget(&self, mq: &MessageQueue) {
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(mq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PullStatus;
    use crate::message::MessageExt;

    fn found(messages: Vec<MessageExt>, next_begin_offset: i64, max_offset: i64) -> PullResult {
        PullResult {
            status: PullStatus::Found,
            next_begin_offset,
            min_offset: 0,
            max_offset,
            suggest_which_broker_id: MASTER_ID,
            offset_delta: None,
            messages,
            filtered_out: 0,
        }
    }

    fn records(n: usize, size: i32) -> Vec<MessageExt> {
        (0..n)
            .map(|_| MessageExt {
                store_size: size,
                ..MessageExt::default()
            })
            .collect()
    }

    #[test]
    fn a_full_backlog_expects_the_same_bytes_from_the_next_offset() {
        let r = found(records(32, 1_250), 132, 1_000);
        assert_eq!(expectation(&r), Some((132, 32 * 1_250)));
        // Exactly as many left as carried is still enough.
        let r = found(records(32, 1_250), 132, 164);
        assert_eq!(expectation(&r), Some((132, 40_000)));
    }

    #[test]
    fn no_expectation_near_the_end_or_without_messages() {
        // Fewer left than carried: the next answer may be short, or held (long poll).
        assert_eq!(expectation(&found(records(32, 1_250), 132, 163)), None);
        assert_eq!(expectation(&found(records(3, 1_250), 10, 10)), None);
        assert_eq!(expectation(&found(Vec::new(), 10, 500)), None);
        for status in [
            PullStatus::NoNewMsg,
            PullStatus::NoMatchedMsg,
            PullStatus::OffsetIllegal,
        ] {
            let mut r = found(records(32, 1_250), 132, 1_000);
            r.status = status;
            assert_eq!(expectation(&r), None, "{status:?}");
        }
    }
}
