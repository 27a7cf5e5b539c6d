//! [`ClientInstance`] (Java `MQClientInstance`): one per client id; owns the transport, the
//! route cache and the scheduled jobs, and hands broker requests to registered consumers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use rmq_remoting::{
    BoxFuture, InboundContext, RemotingClient, RemotingCommand, RequestCode, RequestHandler,
    ResponseCode,
};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::ClientApi;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::fastjson;
use crate::header::{
    ConsumeMessageDirectlyResultRequestHeader, ConsumerData, ConsumerGroupHeader, HeartbeatData,
    ProducerData, TopicGroupHeader, UnregisterClientRequestHeader,
};
use crate::message::{MessageExt, decode_message};
use crate::route::{MASTER_ID, MessageQueue, TopicRouteData};

/// What a consumer registered with a [`ClientInstance`] provides to it and receives from it
/// (Java `MQConsumerInner` plus the consumer side of `ClientRemotingProcessor`).
///
/// Called from the instance's scheduled jobs and from its broker-request dispatch task,
/// possibly concurrently; every method must return quickly (spawn longer work).
pub trait ConsumerInner: Send + Sync + 'static {
    /// The (namespaced) consumer group.
    fn group_name(&self) -> String;

    /// This consumer's entry in heartbeats.
    fn consumer_data(&self) -> ConsumerData;

    /// Topics whose routes the instance keeps fresh for this consumer.
    fn subscribed_topics(&self) -> Vec<String>;

    /// A topic's readable queues changed (or were seen for the first time).
    fn update_topic_subscribe_info(&self, _topic: &str, _queues: &[MessageQueue]) {}

    /// NOTIFY_CONSUMER_IDS_CHANGED (40) arrived, or the instance asks for a rebalance.
    fn trigger_rebalance(&self) {}

    /// Persist offsets now (every `persistConsumerOffsetInterval` and at shutdown).
    fn persist_consumer_offset(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// RESET_CONSUMER_CLIENT_OFFSET (220): move these queues to these offsets.
    fn reset_offset(
        &self,
        topic: &str,
        _offsets: HashMap<MessageQueue, i64>,
    ) -> BoxFuture<'static, ()> {
        tracing::warn!(group = %self.group_name(), topic, "reset offset requested, but this consumer does not support it");
        Box::pin(async {})
    }

    /// GET_CONSUMER_STATUS_FROM_CLIENT (221): the consume offset of each queue of `topic`.
    fn consumer_status(&self, _topic: &str) -> HashMap<MessageQueue, i64> {
        HashMap::new()
    }

    /// GET_CONSUMER_RUNNING_INFO (307): the `ConsumerRunningInfo` JSON body, or `None`
    /// when not supported (answered as SYSTEM_ERROR).
    fn running_info(&self) -> Option<Bytes> {
        None
    }

    /// CONSUME_MESSAGE_DIRECTLY (309): run the listener on `msg` and return the
    /// `ConsumeMessageDirectlyResult` JSON body, or `None` when not supported.
    fn consume_message_directly(
        &self,
        _msg: MessageExt,
        _broker_name: Option<String>,
    ) -> BoxFuture<'static, Option<Bytes>> {
        Box::pin(async { None })
    }
}

#[derive(Default)]
struct RouteState {
    topic_routes: HashMap<String, Arc<TopicRouteData>>,
    /// broker name → broker id → address.
    broker_addrs: HashMap<String, BTreeMap<i64, String>>,
}

struct Inner {
    client_id: String,
    config: ClientConfig,
    api: ClientApi,
    routes: ArcSwap<RouteState>,
    consumers: Mutex<HashMap<String, Arc<dyn ConsumerInner>>>,
    producers: Mutex<Vec<String>>,
    broker_versions: Mutex<HashMap<String, i32>>,
    namesrv_index: AtomicUsize,
    started: AtomicBool,
    token: CancellationToken,
    tracker: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a pull should go (Java `FindBrokerResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindBrokerResult {
    /// `host:port`.
    pub addr: String,
    /// `true` when it is not the master (offset piggy-backing is then off).
    pub slave: bool,
    /// The broker's version from its last heartbeat answer, 0 if unknown.
    pub version: i32,
}

/// The shared client of all consumers and producers with the same client id (Java
/// `MQClientInstance`). Cheap to clone.
///
/// # Drop behavior
/// Dropping the last clone cancels the scheduled jobs and the connections; call
/// [`ClientInstance::shutdown`] to persist, unregister and wait.
#[derive(Clone)]
pub struct ClientInstance {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClientInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInstance")
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Inner>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<Inner>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Java `MQClientManager.getOrCreateMQClientInstance`: one instance per client id.
impl ClientInstance {
    /// The instance of `config.client_id()`, created if there is none alive.
    ///
    /// Java silently lets the first creator's configuration win, so a second consumer with
    /// other name servers or credentials talks to the first one's cluster. rmq refuses:
    /// an alive instance is shared only with a configuration that agrees on what the
    /// instance applies to all its users (see [`ClientConfig::instance_setting_differing_from`]).
    /// To run differently configured clients in one process give them distinct instance
    /// names, or hand one instance to each consumer explicitly.
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] without name servers;
    /// [`ClientError::InstanceConfigMismatch`] when the alive instance was created with a
    /// different setting.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn get_or_create(config: &ClientConfig) -> Result<Self, ClientError> {
        if config.namesrv_addrs.is_empty() {
            return Err(ClientError::InvalidConfig(
                "no name server address (set it, or NAMESRV_ADDR)".into(),
            ));
        }
        let client_id = config.client_id();
        let mut reg = lock(registry());
        if let Some(inner) = reg.get(&client_id).and_then(Weak::upgrade) {
            if let Some(setting) = inner.config.instance_setting_differing_from(config) {
                return Err(ClientError::InstanceConfigMismatch { client_id, setting });
            }
            return Ok(ClientInstance { inner });
        }
        let remoting = RemotingClient::new(config.remoting.clone());
        let inner = Arc::new(Inner {
            client_id: client_id.clone(),
            config: config.clone(),
            api: ClientApi::new(remoting.clone(), config.credentials.clone()),
            routes: ArcSwap::from_pointee(RouteState::default()),
            consumers: Mutex::new(HashMap::new()),
            producers: Mutex::new(Vec::new()),
            broker_versions: Mutex::new(HashMap::new()),
            namesrv_index: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        remoting.set_request_handler(Arc::new(BrokerRequestHandler(Arc::downgrade(&inner))));
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(client_id, Arc::downgrade(&inner));
        Ok(ClientInstance { inner })
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The typed API.
    pub fn api(&self) -> &ClientApi {
        &self.inner.api
    }

    /// Starts the scheduled jobs (route refresh every `pollNameServerInterval`, first after
    /// 10 ms; heartbeat and offline-broker cleanup every `heartbeatBrokerInterval`, first
    /// after 1 s; offset persistence every `persistConsumerOffsetInterval`, first after
    /// 10 s). Idempotent.
    pub fn start(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let c = &self.inner.config;
        self.spawn_job(
            "route refresh",
            Duration::from_millis(10),
            c.poll_name_server_interval,
            |i| Box::pin(async move { i.refresh_all_routes().await }),
        );
        self.spawn_job(
            "heartbeat",
            Duration::from_millis(1000),
            c.heartbeat_broker_interval,
            |i| {
                Box::pin(async move {
                    i.clean_offline_brokers();
                    i.send_heartbeat_to_all_brokers().await;
                })
            },
        );
        self.spawn_job(
            "persist offsets",
            Duration::from_millis(10_000),
            c.persist_consumer_offset_interval,
            |i| Box::pin(async move { i.persist_all_consumer_offsets().await }),
        );
    }

    fn spawn_job(
        &self,
        name: &'static str,
        first: Duration,
        period: Duration,
        job: impl Fn(ClientInstance) -> BoxFuture<'static, ()> + Send + 'static,
    ) {
        let weak = Arc::downgrade(&self.inner);
        let token = self.inner.token.clone();
        self.inner.tracker.spawn(async move {
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::now() + first,
                period.max(Duration::from_millis(1)),
            );
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                tracing::trace!(job = name, "scheduled job");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = job(ClientInstance { inner }) => {}
                }
            }
        });
    }

    /// Registers a consumer under its group and gives it the cached queues of its topics.
    ///
    /// # Errors
    /// [`ClientError::GroupAlreadyRegistered`] naming the group when it is taken.
    pub fn register_consumer(&self, consumer: Arc<dyn ConsumerInner>) -> Result<(), ClientError> {
        let group = consumer.group_name();
        {
            let mut consumers = lock(&self.inner.consumers);
            if consumers.contains_key(&group) {
                return Err(ClientError::GroupAlreadyRegistered {
                    group,
                    client_id: self.inner.client_id.clone(),
                });
            }
            consumers.insert(group, Arc::clone(&consumer));
        }
        // Routes cached before the consumer came will not "change" for it later: hand it
        // their queues now (Java refreshes routes a consumer lacks, isNeedUpdateTopicRouteInfo).
        for topic in consumer.subscribed_topics() {
            if let Some(route) = self.topic_route(&topic) {
                consumer.update_topic_subscribe_info(&topic, &route.subscribe_queues(&topic));
            }
        }
        Ok(())
    }

    /// Removes a consumer and sends UNREGISTER_CLIENT for its group to every broker.
    pub async fn unregister_consumer(&self, group: &str) {
        let removed = lock(&self.inner.consumers).remove(group).is_some();
        if removed {
            self.unregister_at_brokers(None, Some(group)).await;
        }
    }

    /// A consumer is done with this instance: unregisters its group at every broker, and
    /// shuts the instance down (waiting at most `grace`) when no consumer is left (Java
    /// `unregisterConsumer` followed by `MQClientInstance.shutdown`).
    pub async fn release_consumer(&self, group: &str, grace: Duration) {
        self.unregister_consumer(group).await;
        if self.consumer_count() == 0 {
            self.shutdown(grace).await;
        }
    }

    /// Registers a producer group (it appears in heartbeats).
    ///
    /// # Errors
    /// [`ClientError::GroupAlreadyRegistered`] when it is taken.
    pub fn register_producer(&self, group: &str) -> Result<(), ClientError> {
        let mut producers = lock(&self.inner.producers);
        if producers.iter().any(|g| g == group) {
            return Err(ClientError::GroupAlreadyRegistered {
                group: group.to_owned(),
                client_id: self.inner.client_id.clone(),
            });
        }
        producers.push(group.to_owned());
        Ok(())
    }

    /// Removes a producer group.
    pub async fn unregister_producer(&self, group: &str) {
        let removed = {
            let mut p = lock(&self.inner.producers);
            let before = p.len();
            p.retain(|g| g != group);
            before != p.len()
        };
        if removed {
            self.unregister_at_brokers(Some(group), None).await;
        }
    }

    async fn unregister_at_brokers(
        &self,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) {
        let header = UnregisterClientRequestHeader {
            client_id: self.inner.client_id.clone(),
            producer_group: producer_group.map(str::to_owned),
            consumer_group: consumer_group.map(str::to_owned),
        };
        let timeout = self.inner.config.mq_client_api_timeout;
        for addr in self.all_broker_addrs(false) {
            if let Err(e) = self
                .inner
                .api
                .unregister_client(&addr, &header, timeout)
                .await
            {
                tracing::warn!(%addr, error = %e, "unregister failed");
            }
        }
    }

    fn consumers(&self) -> Vec<Arc<dyn ConsumerInner>> {
        lock(&self.inner.consumers).values().cloned().collect()
    }

    /// How many consumers are registered.
    pub fn consumer_count(&self) -> usize {
        lock(&self.inner.consumers).len()
    }

    /// The consumer registered under `group`.
    pub fn consumer(&self, group: &str) -> Option<Arc<dyn ConsumerInner>> {
        lock(&self.inner.consumers).get(group).cloned()
    }

    async fn get_route_from_namesrv(&self, topic: &str) -> Result<TopicRouteData, ClientError> {
        let addrs = &self.inner.config.namesrv_addrs;
        let start = self.inner.namesrv_index.load(Ordering::Relaxed);
        let mut last_err = None;
        for k in 0..addrs.len() {
            let i = (start + k) % addrs.len();
            match self
                .inner
                .api
                .get_topic_route(&addrs[i], topic, self.inner.config.mq_client_api_timeout)
                .await
            {
                Ok(Some(route)) => {
                    self.inner.namesrv_index.store(i, Ordering::Relaxed);
                    return Ok(route);
                }
                Ok(None) => {
                    return Err(ClientError::TopicRouteNotFound {
                        topic: topic.to_owned(),
                    });
                }
                Err(e) => {
                    tracing::debug!(namesrv = %addrs[i], topic, error = %e, "route query failed, trying the next name server");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or(ClientError::TopicRouteNotFound {
            topic: topic.to_owned(),
        }))
    }

    /// Fetches `topic`'s route from the name servers and installs it; returns whether it
    /// changed (Java `updateTopicRouteInfoFromNameServer`). Consumers subscribed to the
    /// topic get its queues when it changed.
    ///
    /// # Errors
    /// [`ClientError::TopicRouteNotFound`] when the topic does not exist; transport errors
    /// when no name server answered.
    pub async fn update_topic_route(&self, topic: &str) -> Result<bool, ClientError> {
        let route = self.get_route_from_namesrv(topic).await?;
        let old = self.inner.routes.load().topic_routes.get(topic).cloned();
        let changed = old.as_deref() != Some(&route);
        if changed {
            let route = Arc::new(route);
            self.inner.routes.rcu(|state| {
                let mut topic_routes = state.topic_routes.clone();
                topic_routes.insert(topic.to_owned(), Arc::clone(&route));
                let mut broker_addrs = state.broker_addrs.clone();
                for b in &route.broker_datas {
                    broker_addrs.insert(b.broker_name.clone(), b.broker_addrs.clone());
                }
                RouteState {
                    topic_routes,
                    broker_addrs,
                }
            });
            tracing::info!(topic, "topic route changed");
            let queues = route.subscribe_queues(topic);
            for c in self.consumers() {
                if c.subscribed_topics().iter().any(|t| t == topic) {
                    c.update_topic_subscribe_info(topic, &queues);
                }
            }
        }
        Ok(changed)
    }

    async fn refresh_all_routes(&self) {
        let mut topics: Vec<String> = self
            .consumers()
            .iter()
            .flat_map(|c| c.subscribed_topics())
            .collect();
        topics.extend(self.inner.routes.load().topic_routes.keys().cloned());
        topics.sort();
        topics.dedup();
        for topic in topics {
            if let Err(e) = self.update_topic_route(&topic).await {
                tracing::debug!(topic, error = %e, "route refresh failed");
            }
        }
    }

    /// Creates (or resizes) `topic` with `queues` read and write queues on every master
    /// serving the auto-create template topic `TBW102`, then waits (45 s at most) until the
    /// name server serves it with that many readable queues per broker. Brokers push a new
    /// topic to the name server at once, but that push can be missed (seen with
    /// rocketmq-rust 1.0.0 shortly after start-up); the broker's periodic registration
    /// (`registerNameServerPeriod`, 30 s) then brings it, hence the wait. An admin call, for
    /// tools and tests (Java `MQAdminExt.createTopic`).
    ///
    /// # Errors
    /// [`ClientError::TopicRouteNotFound`] without a `TBW102` route, broker errors from
    /// UPDATE_AND_CREATE_TOPIC, or [`ClientError::TopicRouteNotFound`] for `topic` when its
    /// route never shows the queues.
    pub async fn create_topic(&self, topic: &str, queues: i32) -> Result<(), ClientError> {
        self.update_topic_route(crate::route::AUTO_CREATE_TOPIC)
            .await?;
        let template = self
            .topic_route(crate::route::AUTO_CREATE_TOPIC)
            .ok_or_else(|| ClientError::TopicRouteNotFound {
                topic: crate::route::AUTO_CREATE_TOPIC.into(),
            })?;
        let masters: Vec<&str> = template
            .broker_datas
            .iter()
            .filter_map(|b| b.master_addr())
            .collect();
        for addr in &masters {
            let header = crate::header::CreateTopicRequestHeader {
                topic: topic.to_owned(),
                default_topic: crate::route::AUTO_CREATE_TOPIC.into(),
                read_queue_nums: queues,
                write_queue_nums: queues,
                perm: crate::route::perm::READ | crate::route::perm::WRITE,
                topic_filter_type: "SINGLE_TAG".into(),
                topic_sys_flag: 0,
                order: false,
            };
            self.inner
                .api
                .create_topic(addr, &header, Duration::from_secs(10))
                .await?;
        }
        let want = masters.len() * queues.max(0) as usize;
        for _ in 0..450 {
            let ok = match self.update_topic_route(topic).await {
                Ok(_) => self.subscribe_queues(topic).len() == want,
                Err(ClientError::TopicRouteNotFound { .. }) => false,
                Err(e) => return Err(e),
            };
            if ok {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ClientError::TopicRouteNotFound {
            topic: topic.to_owned(),
        })
    }

    /// The cached route of `topic`.
    pub fn topic_route(&self, topic: &str) -> Option<Arc<TopicRouteData>> {
        self.inner.routes.load().topic_routes.get(topic).cloned()
    }

    /// Readable queues of `topic` from the cache, sorted (empty if unknown).
    pub fn subscribe_queues(&self, topic: &str) -> Vec<MessageQueue> {
        self.topic_route(topic)
            .map(|r| r.subscribe_queues(topic))
            .unwrap_or_default()
    }

    /// The master address of a broker (Java `findBrokerAddressInPublish`).
    pub fn find_broker_address_in_publish(&self, broker_name: &str) -> Option<String> {
        self.inner
            .routes
            .load()
            .broker_addrs
            .get(broker_name)
            .and_then(|m| m.get(&MASTER_ID).cloned())
    }

    /// The master address of `mq`'s broker, refreshing the topic's route from the name
    /// server once when the broker is not known yet (Java: `findBrokerAddressInPublish`,
    /// `updateTopicRouteInfoFromNameServer`, look again). Every offset, min/max and
    /// send-back call finds its broker here.
    ///
    /// # Errors
    /// The route refresh's error; [`ClientError::BrokerNotFound`] when the refreshed route
    /// still has no master for the broker.
    pub async fn master_addr_of(&self, mq: &MessageQueue) -> Result<String, ClientError> {
        if let Some(a) = self.find_broker_address_in_publish(&mq.broker_name) {
            return Ok(a);
        }
        self.update_topic_route(&mq.topic).await?;
        self.find_broker_address_in_publish(&mq.broker_name)
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: mq.broker_name.clone(),
            })
    }

    /// Where to pull `mq` from (see [`ClientInstance::find_broker_address_in_subscribe`]),
    /// refreshing the topic's route once when the broker is not known yet (Java
    /// `PullAPIWrapper.pullKernelImpl`).
    ///
    /// # Errors
    /// As [`ClientInstance::master_addr_of`].
    pub async fn pull_addr_of(
        &self,
        mq: &MessageQueue,
        broker_id: i64,
    ) -> Result<FindBrokerResult, ClientError> {
        if let Some(f) = self.find_broker_address_in_subscribe(&mq.broker_name, broker_id, false) {
            return Ok(f);
        }
        self.update_topic_route(&mq.topic).await?;
        self.find_broker_address_in_subscribe(&mq.broker_name, broker_id, false)
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: mq.broker_name.clone(),
            })
    }

    /// Where to pull from (Java `findBrokerAddressInSubscribe`): broker `broker_id` (the
    /// last `suggestWhichBrokerId`), else for a slave id the next id, else unless
    /// `only_this_broker` any address of the broker (lowest id first, so the master).
    pub fn find_broker_address_in_subscribe(
        &self,
        broker_name: &str,
        broker_id: i64,
        only_this_broker: bool,
    ) -> Option<FindBrokerResult> {
        let state = self.inner.routes.load();
        let addrs = state.broker_addrs.get(broker_name)?;
        let found = addrs
            .get(&broker_id)
            .map(|a| (broker_id, a))
            .or_else(|| {
                (broker_id != MASTER_ID)
                    .then(|| addrs.get(&(broker_id + 1)).map(|a| (broker_id + 1, a)))
                    .flatten()
            })
            .or_else(|| {
                (!only_this_broker)
                    .then(|| addrs.iter().next().map(|(id, a)| (*id, a)))
                    .flatten()
            })?;
        let version = lock(&self.inner.broker_versions)
            .get(found.1)
            .copied()
            .unwrap_or(0);
        Some(FindBrokerResult {
            addr: found.1.clone(),
            slave: found.0 != MASTER_ID,
            version,
        })
    }

    /// Any address of any broker serving `topic` (master preferred), for calls such as
    /// GET_CONSUMER_LIST_BY_GROUP (Java `findBrokerAddrByTopic`).
    pub fn find_broker_addr_by_topic(&self, topic: &str) -> Option<String> {
        let route = self.topic_route(topic)?;
        let b = route.broker_datas.first()?;
        b.master_addr()
            .map(str::to_owned)
            .or_else(|| b.broker_addrs.values().next().cloned())
    }

    /// The client ids of `group`'s live members, asked of a broker serving `topic`
    /// (Java `findConsumerIdList`).
    ///
    /// # Errors
    /// [`ClientError::BrokerNotFound`] without a route; transport or broker errors.
    pub async fn find_consumer_id_list(
        &self,
        topic: &str,
        group: &str,
    ) -> Result<Vec<String>, ClientError> {
        let addr =
            self.find_broker_addr_by_topic(topic)
                .ok_or_else(|| ClientError::BrokerNotFound {
                    broker_name: format!("(any broker of topic {topic})"),
                })?;
        self.inner
            .api
            .get_consumer_id_list(&addr, group, self.inner.config.mq_client_api_timeout)
            .await
    }

    fn all_broker_addrs(&self, masters_only: bool) -> Vec<String> {
        let state = self.inner.routes.load();
        let mut out: Vec<String> = state
            .broker_addrs
            .values()
            .flat_map(|m| m.iter())
            .filter(|(id, _)| !masters_only || **id == MASTER_ID)
            .map(|(_, a)| a.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The heartbeat body of this instance now.
    pub fn heartbeat_data(&self) -> HeartbeatData {
        HeartbeatData {
            client_id: self.inner.client_id.clone(),
            consumer_data_set: self.consumers().iter().map(|c| c.consumer_data()).collect(),
            producer_data_set: lock(&self.inner.producers)
                .iter()
                .map(|g| ProducerData {
                    group_name: g.clone(),
                })
                .collect(),
        }
    }

    /// Sends HEART_BEAT to every broker address (masters and slaves when consumers are
    /// registered, masters only for producers) and records each broker's version. One
    /// broker's failure does not stop the others.
    pub async fn send_heartbeat_to_all_brokers(&self) {
        let data = self.heartbeat_data();
        if data.consumer_data_set.is_empty() && data.producer_data_set.is_empty() {
            return;
        }
        let masters_only = data.consumer_data_set.is_empty();
        let timeout = self.inner.config.mq_client_api_timeout;
        for addr in self.all_broker_addrs(masters_only) {
            match self.inner.api.send_heartbeat(&addr, &data, timeout).await {
                Ok(version) => {
                    lock(&self.inner.broker_versions).insert(addr, version);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "heartbeat failed"),
            }
        }
    }

    /// Drops broker addresses no cached route mentions any more (Java `cleanOfflineBroker`).
    fn clean_offline_brokers(&self) {
        self.inner.routes.rcu(|state| {
            let live: std::collections::HashSet<&String> = state
                .topic_routes
                .values()
                .flat_map(|r| r.broker_datas.iter().flat_map(|b| b.broker_addrs.values()))
                .collect();
            let broker_addrs = state
                .broker_addrs
                .iter()
                .filter_map(|(name, m)| {
                    let kept: BTreeMap<i64, String> = m
                        .iter()
                        .filter(|(_, a)| live.contains(a))
                        .map(|(i, a)| (*i, a.clone()))
                        .collect();
                    (!kept.is_empty()).then(|| (name.clone(), kept))
                })
                .collect();
            RouteState {
                topic_routes: state.topic_routes.clone(),
                broker_addrs,
            }
        });
    }

    async fn persist_all_consumer_offsets(&self) {
        for c in self.consumers() {
            c.persist_consumer_offset().await;
        }
    }

    /// Asks every consumer to rebalance now (Java `rebalanceImmediately`).
    pub fn rebalance_immediately(&self) {
        for c in self.consumers() {
            c.trigger_rebalance();
        }
    }

    /// Stops the jobs, persists every consumer's offsets, unregisters every group at every
    /// broker and closes the connections, waiting at most `grace` for tasks. Idempotent.
    pub async fn shutdown(&self, grace: Duration) {
        if self.inner.token.is_cancelled() {
            return;
        }
        rmq_remoting::task::stop_and_wait(&self.inner.token, &self.inner.tracker, grace).await;
        self.persist_all_consumer_offsets().await;
        let groups: Vec<String> = lock(&self.inner.consumers).keys().cloned().collect();
        for g in groups {
            self.unregister_consumer(&g).await;
        }
        let producers: Vec<String> = lock(&self.inner.producers).clone();
        for g in producers {
            self.unregister_producer(&g).await;
        }
        self.inner.api.remoting().shutdown(grace).await;
        lock(registry()).remove(&self.inner.client_id);
    }
}

/// Dispatches broker→client requests (Java `ClientRemotingProcessor`) to the consumer of the
/// group they name.
struct BrokerRequestHandler(Weak<Inner>);

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
