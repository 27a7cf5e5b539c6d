//! Starting a push consumer (Java `DefaultMQPushConsumerImpl.start`): either a running
//! consumer or an error with nothing left running.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmq_client_core::namespace::retry_topic;
use rmq_client_core::pop::{MessageRequestMode, PopKernel, SetMessageRequestModeRequestBody};
use rmq_client_core::trace_dispatcher::TraceDispatcher;
use rmq_client_core::{
    ClientInstance, ConsumerInner, ExpressionType, PullKernel, SubscriptionData, Weakly,
};
use rmq_consume_service::{
    ConcurrentConfig, ConsumeMessageTraceHook, ConsumeStats, OrderlyConfig, SendBack,
};
use rmq_offset_store::{LocalFileOffsetStore, OffsetStore, RemoteBrokerOffsetStore};
use rmq_rebalance::{
    MessageModel, RebalanceConfig, RebalanceImpl, RebalanceListener, RebalanceService,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::builder::PushConsumerBuilder;
use crate::consumer::PushConsumer;
use crate::core::Core;
use crate::error::PushConsumerError;
use crate::listener_factory::{ListenerFactory, RebalanceLocker, Service};
use crate::rebalance_hook::RebalanceHook;

/// Orderly lock renewal period (Java `REBALANCE_LOCK_INTERVAL`, 20 s).
const LOCK_INTERVAL: Duration = Duration::from_millis(20_000);

/// Validated builder → running consumer. Everything that can fail (the client instance,
/// the offset store's load, the subscriptions, the group's registration) happens before
/// the first task is spawned; what was built is dropped on failure, which stops it.
pub(crate) async fn start(mut b: PushConsumerBuilder) -> Result<PushConsumer, PushConsumerError> {
    let (message_stream, token) = match b.stream.take() {
        // The stream ends when this consumer's token is cancelled (shutdown, drop).
        Some((stream, token)) => (Some(stream), token),
        None => (None, CancellationToken::new()),
    };
    let mut client = b.client;
    let model = b.config.message_model;
    if model == MessageModel::Clustering {
        client.change_instance_name_to_unique();
    }
    let group = client.with_namespace(&b.group);
    let instance = match b.instance {
        Some(i) => i,
        None => ClientInstance::get_or_create(&client)?,
    };
    let offset_store: Arc<dyn OffsetStore> = match b.offset_store {
        Some(st) => st,
        None => match model {
            MessageModel::Clustering => Arc::new(RemoteBrokerOffsetStore::new(&instance, &group)),
            MessageModel::Broadcasting => Arc::new(LocalFileOffsetStore::new(
                b.config.local_offset_store_dir.as_deref(),
                instance.client_id(),
                &group,
            )),
        },
    };
    offset_store.load().await?;

    let mut subscriptions = HashMap::new();
    let version = rmq_client_core::now_millis();
    for sub in &b.subscriptions {
        let topic = client.with_namespace(&sub.topic);
        let data = SubscriptionData::build_with_version(
            &topic,
            Some(&sub.expression),
            sub.expression_type,
            version,
        )
        .map_err(|e| PushConsumerError::InvalidConfig(e.to_string()))?;
        subscriptions.insert(topic, data);
    }
    if model == MessageModel::Clustering {
        let retry = retry_topic(&group);
        let data =
            SubscriptionData::build_with_version(&retry, Some("*"), ExpressionType::Tag, version)
                .map_err(|e| PushConsumerError::InvalidConfig(e.to_string()))?;
        subscriptions.insert(retry, data);
    }

    let listener = b
        .listener
        .ok_or_else(|| PushConsumerError::InvalidConfig("no listener".into()))?;
    let orderly = matches!(listener, ListenerFactory::Orderly(_));
    let mut config = b.config;
    if message_stream.is_some() && !orderly {
        // A concurrent stream answers each message on its own whatever the call size.
        config.consume_message_batch_max_size = config.stream_batch_size;
    }
    let mut rb_config = RebalanceConfig::new(&group);
    rb_config.message_model = model;
    rb_config.consume_from_where = config.consume_from_where;
    rb_config.consume_timestamp_ms = config.consume_timestamp_ms;
    rb_config.orderly = orderly;
    rb_config.strict_last_offset = config.strict_last_offset;
    let handoff = !orderly && model == MessageModel::Clustering && config.clean_handoff;
    rb_config.handoff_lock = handoff;
    rb_config.handoff_timeout = config.handoff_timeout;
    rb_config.membership_check_interval = config.membership_check_interval;
    let pop_mode = config.pop_mode && !orderly && model == MessageModel::Clustering;
    rb_config.server_side_assignment = (config.server_side_assignment || pop_mode)
        && !orderly
        && model == MessageModel::Clustering;
    if rb_config.server_side_assignment && !matches!(b.strategy.name(), "AVG" | "AVG_BY_CIRCLE") {
        return Err(PushConsumerError::InvalidConfig(format!(
            "server_side_assignment: brokers run only the AVG and AVG_BY_CIRCLE strategies, not {}",
            b.strategy.name()
        )));
    }
    let max_reconsume = config
        .max_reconsume_times
        .unwrap_or(if orderly { i32::MAX } else { 16 });
    let send_back =
        SendBack::new(&instance, &group, max_reconsume).with_producer_fallback(!handoff);

    let stats = Arc::new(ConsumeStats::new());
    let trace = b
        .trace_topic
        .as_deref()
        .map(|t| TraceDispatcher::start(&instance, &group, t));
    let mut hooks = b.consume_hooks.clone();
    if let Some(t) = &trace {
        hooks.push(Arc::new(ConsumeMessageTraceHook::new(
            t.clone(),
            &group,
            client.namespace_str(),
        )));
    }
    let core = Arc::new_cyclic(|weak: &Weak<Core>| {
        let rebalance = Arc::new(RebalanceImpl::new(
            rb_config,
            instance.clone(),
            Arc::clone(&b.strategy),
            Arc::clone(&offset_store),
            Arc::new(RebalanceHook(Weak::clone(weak))) as Arc<dyn RebalanceListener>,
        ));
        let service = match listener {
            ListenerFactory::Concurrent(f) => {
                let mut c = ConcurrentConfig::new(&group);
                c.message_model = model;
                c.consume_message_batch_max_size = config.consume_message_batch_max_size;
                c.consume_thread_max = config.consume_thread_max;
                c.consume_timeout = config.consume_timeout;
                c.stats = Arc::clone(&stats);
                Service::Concurrent(f(c, Arc::clone(&offset_store), send_back, hooks.clone()))
            }
            ListenerFactory::Orderly(f) => {
                let mut c = OrderlyConfig::new(&group);
                c.message_model = model;
                c.consume_message_batch_max_size = config.consume_message_batch_max_size;
                c.suspend_current_queue_time = config.suspend_current_queue_time;
                c.max_reconsume_times = max_reconsume;
                c.consume_timeout = config.consume_timeout;
                c.stats = Arc::clone(&stats);
                Service::Orderly(f(
                    c,
                    Arc::clone(&offset_store),
                    send_back,
                    hooks.clone(),
                    Arc::new(RebalanceLocker(Arc::clone(&rebalance))),
                ))
            }
        };
        Core {
            me: Weak::clone(weak),
            group: group.clone(),
            config: config.clone(),
            client: client.clone(),
            instance: instance.clone(),
            kernel: PullKernel::new(&instance, &group),
            stats: Arc::clone(&stats),
            trace: trace.clone(),
            message_stream: Mutex::new(message_stream),
            subscriptions: subscriptions.clone(),
            offset_store: Arc::clone(&offset_store),
            rebalance,
            rebalance_service: RebalanceService::new(),
            service,
            filter_hooks: b.filter_hooks.clone(),
            queues: Mutex::new(HashMap::new()),
            pop_kernel: pop_mode.then(|| PopKernel::new(&instance, &group)),
            pop_queues: Mutex::new(HashMap::new()),
            cached_bytes: Arc::new(AtomicUsize::new(0)),
            paused: AtomicBool::new(false),
            resetting: AtomicUsize::new(0),
            token,
            tracker: TaskTracker::new(),
            start_ms: rmq_client_core::now_millis(),
        }
    });
    for sub in subscriptions.values() {
        core.rebalance.subscribe(sub.clone());
    }
    // Routes first: the SQL92 check needs them, and registration hands the cached queues to
    // the consumer.
    for topic in subscriptions.keys() {
        if let Err(e) = instance.update_topic_route(topic).await {
            tracing::warn!(topic, error = %e, "no route for subscribed topic yet; will retry");
        }
    }
    // SQL92 subscriptions: every broker of the topic must be able to filter by them (Java
    // `checkClientInBroker`); asked before the group is registered, so that a refusal
    // leaves nothing behind.
    let subs: Vec<SubscriptionData> = subscriptions.values().cloned().collect();
    instance.check_client_in_broker(&group, &subs).await?;
    if pop_mode {
        let retry = retry_topic(&group);
        for topic in subscriptions.keys().filter(|t| **t != retry) {
            set_pop_mode(&instance, &group, topic).await?;
        }
    }
    // The last step that can fail; `core` (and its consume tasks) is dropped with the error.
    instance.register_consumer(Arc::new(Weakly(Arc::downgrade(&core))) as Arc<dyn ConsumerInner>)?;
    // From here on the handle owns everything: dropping it stops it all.
    let consumer = PushConsumer::from_core(Arc::clone(&core));
    instance.start();
    instance.send_heartbeat_to_all_brokers().await;

    let rb = Arc::clone(&core.rebalance);
    let svc = core.rebalance_service.clone();
    let token = core.token.clone();
    core.tracker.spawn(async move { svc.run(rb, token).await });
    core.rebalance_service.wakeup();
    if (orderly || handoff) && model == MessageModel::Clustering {
        let rb = Arc::clone(&core.rebalance);
        let token = core.token.clone();
        core.tracker.spawn(async move {
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(1),
                LOCK_INTERVAL,
            );
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tick.tick() => rb.lock_all().await,
                }
            }
        });
    }
    tracing::info!(group = %group, client_id = instance.client_id(), "push consumer started");
    Ok(consumer)
}

/// Sets the group's consume mode for `topic` to POP on every master of the topic
/// (SET_MESSAGE_REQUEST_MODE, what `mqadmin setConsumeMode -m POP -q 0` sends).
async fn set_pop_mode(
    instance: &ClientInstance,
    group: &str,
    topic: &str,
) -> Result<(), PushConsumerError> {
    let route = instance.topic_route(topic).ok_or_else(|| {
        PushConsumerError::InvalidConfig(format!(
            "pop mode: topic {topic} has no route (pop needs the topic to exist)"
        ))
    })?;
    let body = SetMessageRequestModeRequestBody {
        consumer_group: group.to_owned(),
        mode: MessageRequestMode::Pop,
        pop_share_queue_num: 0,
        topic: topic.to_owned(),
    };
    let timeout = instance.config().mq_client_api_timeout;
    for b in &route.broker_datas {
        let Some(addr) = b.broker_addrs.get(&rmq_client_core::route::MASTER_ID) else {
            continue;
        };
        instance
            .api()
            .set_message_request_mode(addr, &body, timeout)
            .await?;
        tracing::info!(topic, group, broker = %b.broker_name, "consume mode set to POP");
    }
    Ok(())
}
