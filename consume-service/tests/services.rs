//! Both consume services without a real broker: the orderly service with a stand-in for
//! the broker lock, the concurrent service's retry path against an in-process scripted
//! broker that records CONSUMER_SEND_MSG_BACK.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rmq_client_core::message::decode_messages;
use rmq_client_core::testing::{
    Reply, ScriptedBroker, closed_port, loopback_config, pull_body, reply_to,
};
use rmq_client_core::{ClientInstance, MessageExt, MessageQueue};
use rmq_consume_service::{
    ConcurrentConfig, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    ConsumeMessageConcurrentlyService, ConsumeMessageOrderlyService, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, MessageListenerConcurrently, MessageListenerOrderly, OrderlyConfig,
    ProcessQueue, QueueLocker, SendBack,
};
use rmq_offset_store::{LocalFileOffsetStore, OffsetStore, ReadOffsetType};
use rmq_remoting::{BoxFuture, RequestCode, ResponseCode};

const TOPIC: &str = "TopicTest";
const BROKER: &str = "broker-a";

fn messages(n: usize) -> Vec<MessageExt> {
    let mut msgs = decode_messages(&pull_body(TOPIC, 0, n, 16)).unwrap();
    for m in &mut msgs {
        m.broker_name = BROKER.into();
    }
    msgs
}

fn store(name: &str, client_id: &str) -> Arc<dyn OffsetStore> {
    let dir = std::env::temp_dir().join(format!("rmq-services-{name}-{}", std::process::id()));
    Arc::new(LocalFileOffsetStore::new(Some(&dir), client_id, name))
}

/// The broker lock, granted every time (counted).
#[derive(Default)]
struct Granted(AtomicUsize);

impl QueueLocker for Granted {
    fn lock<'a>(&'a self, _mq: &'a MessageQueue) -> BoxFuture<'a, bool> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { true })
    }
}

/// Records (offset, reconsume times) of every call; suspends offset 2 twice.
#[derive(Default)]
struct Ordered {
    calls: Mutex<Vec<(i64, i32)>>,
}

impl MessageListenerOrderly for Ordered {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeOrderlyContext,
    ) -> ConsumeOrderlyStatus {
        let m = &msgs[0];
        self.calls
            .lock()
            .unwrap()
            .push((m.queue_offset, m.reconsume_times));
        if m.queue_offset == 2 && m.reconsume_times < 2 {
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
        } else {
            ConsumeOrderlyStatus::Success
        }
    }
}

#[tokio::test]
async fn orderly_consumes_in_order_and_redelivers_a_suspended_message_before_the_next() {
    let instance =
        ClientInstance::get_or_create(&loopback_config(&closed_port(), "services_orderly"))
            .unwrap();
    let group = "orderly_group";
    let offsets = store(group, instance.client_id());
    let listener = Arc::new(Ordered::default());
    let locker = Arc::new(Granted::default());
    let mut config = OrderlyConfig::new(group);
    config.suspend_current_queue_time = Duration::from_millis(10);
    let service = ConsumeMessageOrderlyService::new(
        Arc::clone(&listener),
        config,
        Arc::clone(&offsets),
        SendBack::new(&instance, group, 16),
        Vec::new(),
        Arc::clone(&locker) as Arc<dyn QueueLocker>,
    );
    let mq = MessageQueue::new(TOPIC, BROKER, 1);
    let pq = Arc::new(ProcessQueue::new(Arc::new(AtomicUsize::new(0))));
    let dispatch = pq.put_messages_orderly(messages(5)).expect("not sealed");
    assert!(dispatch, "the first put starts the queue's task");
    service.submit(&pq, &mq, dispatch);
    assert!(pq.wait_empty(Duration::from_secs(10)).await, "all consumed");
    assert_eq!(
        *listener.calls.lock().unwrap(),
        [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (3, 0), (4, 0)],
        "one at a time, in order, the suspended message again before the next"
    );
    assert_eq!(
        offsets
            .read_offset(&mq, ReadOffsetType::ReadFromMemory)
            .await
            .unwrap(),
        Some(5)
    );
    assert!(
        locker.0.load(Ordering::SeqCst) >= 1,
        "consumed under the lock"
    );
    assert!(service.shutdown(Duration::from_secs(1)).await);
}

/// Fails offset 2, acknowledges the rest.
struct FailsTwo;

impl MessageListenerConcurrently for FailsTwo {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        if msgs.iter().any(|m| m.queue_offset == 2) {
            ConsumeConcurrentlyStatus::ReconsumeLater
        } else {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        }
    }
}

#[tokio::test]
async fn concurrent_sends_a_failed_message_back_and_commits_past_it() {
    let sent_back: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let seen = Arc::clone(&sent_back);
    let broker = ScriptedBroker::start(BROKER, 1, move |req| {
        (req.request_code() == RequestCode::CONSUMER_SEND_MSG_BACK).then(|| {
            let field = |k: &str| req.ext(k).unwrap_or_default().to_owned();
            seen.lock()
                .unwrap()
                .push((field("offset"), field("delayLevel"), field("group")));
            Reply::Answer(reply_to(req, ResponseCode::SUCCESS, &[], Bytes::new()))
        })
    })
    .await;
    let instance =
        ClientInstance::get_or_create(&loopback_config(&broker.addr, "services_concurrent"))
            .unwrap();
    instance.update_topic_route(TOPIC).await.unwrap();
    let group = "concurrent_group";
    let msgs = messages(4);
    let failed_commit_log_offset = msgs[2].commit_log_offset.to_string();
    let run = submitted(&instance, group, FailsTwo, msgs).await;
    assert!(
        run.pq.wait_empty(Duration::from_secs(10)).await,
        "all consumed"
    );
    assert_eq!(
        *sent_back.lock().unwrap(),
        [(failed_commit_log_offset, "0".to_owned(), group.to_owned())],
        "the failed message went back once, with the broker choosing the delay"
    );
    assert_eq!(
        run.committed().await,
        Some(4),
        "once sent back, the failed message no longer holds the offset"
    );
    assert!(run.service.shutdown(Duration::from_secs(1)).await);
}

/// Which task ran each call; each call waits `wait` first when set.
struct TaskRecorder {
    tasks: Arc<Mutex<Vec<tokio::task::Id>>>,
    wait: Option<Duration>,
}

impl MessageListenerConcurrently for TaskRecorder {
    async fn consume_message(
        &self,
        _msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        self.tasks.lock().unwrap().push(tokio::task::id());
        if let Some(d) = self.wait {
            tokio::time::sleep(d).await;
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

/// Runs `n` one-message calls through a concurrent service with 20 consume tasks; returns
/// how many distinct tasks ran them and how long it took.
async fn run_calls(name: &str, n: usize, wait: Option<Duration>) -> (usize, Duration) {
    let instance = offline_instance(name);
    let tasks = Arc::new(Mutex::new(Vec::new()));
    let recorder = TaskRecorder {
        tasks: Arc::clone(&tasks),
        wait,
    };
    let msgs = messages(n);
    // From the hand-over of the pull (the service starts in no time against these).
    let started = tokio::time::Instant::now();
    let run = submitted(&instance, name, recorder, msgs).await;
    assert!(
        run.pq.wait_empty(Duration::from_secs(60)).await,
        "all consumed"
    );
    let took = started.elapsed();
    assert!(run.service.shutdown(Duration::from_secs(1)).await);
    let mut ids = tasks.lock().unwrap().clone();
    assert_eq!(ids.len(), n, "one call per message");
    ids.sort();
    ids.dedup();
    (ids.len(), took)
}

#[tokio::test]
async fn one_thread_fast_calls_run_on_one_task_without_switching() {
    let (tasks, _) = run_calls("wake_fast", 64, None).await;
    assert_eq!(
        tasks, 1,
        "a burst of calls that never wait is run by one task"
    );
}

#[tokio::test(start_paused = true)]
async fn one_thread_waiting_calls_still_run_side_by_side() {
    let (tasks, took) = run_calls("wake_waiting", 10, Some(Duration::from_secs(1))).await;
    assert_eq!(
        tasks, 10,
        "each waiting call hands the next one to another task"
    );
    assert!(
        took < Duration::from_secs(2),
        "10 calls of 1 s took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_threads_waiting_calls_run_side_by_side() {
    let (tasks, took) = run_calls("wake_threads", 10, Some(Duration::from_millis(300))).await;
    assert_eq!(tasks, 10);
    assert!(
        took < Duration::from_millis(2_500),
        "10 calls of 300 ms took {took:?}"
    );
}

/// Succeeds at once, except for offset `hold`, which waits until `release` is notified.
struct HoldsOne {
    hold: i64,
    release: Arc<tokio::sync::Notify>,
}

impl MessageListenerConcurrently for HoldsOne {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        if msgs.iter().any(|m| m.queue_offset == self.hold) {
            self.release.notified().await;
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

/// A concurrent service of `group` (Java's defaults) running `listener`, handed one pull.
struct Submitted {
    service: ConsumeMessageConcurrentlyService,
    offsets: Arc<dyn OffsetStore>,
    stats: Arc<rmq_consume_service::ConsumeStats>,
    mq: MessageQueue,
    pq: Arc<ProcessQueue>,
}

/// A client instance with no broker behind it.
fn offline_instance(name: &str) -> ClientInstance {
    ClientInstance::get_or_create(&loopback_config(&closed_port(), name)).unwrap()
}

/// Starts a [`Submitted`] on `instance` and hands it `msgs` (one-message calls).
async fn submitted(
    instance: &ClientInstance,
    group: &str,
    listener: impl MessageListenerConcurrently,
    msgs: Vec<MessageExt>,
) -> Submitted {
    let offsets = store(group, instance.client_id());
    let config = ConcurrentConfig::new(group);
    let stats = Arc::clone(&config.stats);
    let service = ConsumeMessageConcurrentlyService::new(
        listener,
        config,
        Arc::clone(&offsets),
        SendBack::new(instance, group, 16),
        Vec::new(),
    );
    let mq = MessageQueue::new(TOPIC, BROKER, 1);
    let pq = Arc::new(ProcessQueue::new(Arc::new(AtomicUsize::new(0))));
    assert!(pq.put_messages(&msgs));
    assert!(service.submit(msgs, &pq, &mq).await);
    Submitted {
        service,
        offsets,
        stats,
        mq,
        pq,
    }
}

impl Submitted {
    /// The queue's committed offset.
    async fn committed(&self) -> Option<i64> {
        self.offsets
            .read_offset(&self.mq, ReadOffsetType::ReadFromMemory)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn calls_that_returned_are_committed_while_a_later_call_of_the_pull_waits() {
    let release = Arc::new(tokio::sync::Notify::new());
    let hold = HoldsOne {
        hold: 5,
        release: Arc::clone(&release),
    };
    let group = "holds_one_group";
    let run = submitted(&offline_instance(group), group, hold, messages(8)).await;
    // Offsets 0..=4 returned at once (back to back on one task) and 6, 7 on another task
    // while 5 waits: the commit offset stops at 5, without waiting for 5's call.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while run.pq.msg_count() > 1 {
        assert!(tokio::time::Instant::now() < deadline, "calls settled");
        tokio::task::yield_now().await;
    }
    assert_eq!(run.committed().await, Some(5));
    assert_eq!(run.service.in_flight(), 1, "offset 5's call still runs");
    release.notify_one();
    assert!(
        run.pq.wait_empty(Duration::from_secs(10)).await,
        "all consumed"
    );
    assert_eq!(run.committed().await, Some(8));
    let table = run.stats.status_table();
    let (topic, status) = &table[0];
    assert_eq!(topic, TOPIC);
    assert!(
        status.consume_ok_tps > 0.0 && status.consume_failed_msgs == 0,
        "{status:?}"
    );
    assert!(run.service.shutdown(Duration::from_secs(1)).await);
}

/// Works on the CPU for its time (no await, so every call is done on its first poll).
struct Busy(Duration);

impl MessageListenerConcurrently for Busy {
    async fn consume_message(
        &self,
        _msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        let started = std::time::Instant::now();
        while started.elapsed() < self.0 {
            std::hint::spin_loop();
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

#[tokio::test]
async fn back_to_back_calls_are_timed_together_and_each_gets_its_share() {
    // Calls done on their first poll, one after another, read the clock once for the whole
    // run: the consume RT (Java `consumeRT`, the mean per call) still counts their time.
    let group = "busy_group";
    let busy = Busy(Duration::from_millis(3));
    let run = submitted(&offline_instance(group), group, busy, messages(8)).await;
    assert!(
        run.pq.wait_empty(Duration::from_secs(10)).await,
        "all consumed"
    );
    assert_eq!(run.committed().await, Some(8));
    let table = run.stats.status_table();
    let (_, status) = &table[0];
    assert!(
        status.consume_rt >= 3.0 && status.consume_rt < 1_000.0,
        "mean call time {} ms for calls of at least 3 ms",
        status.consume_rt
    );
    assert!(run.service.shutdown(Duration::from_secs(1)).await);
}
