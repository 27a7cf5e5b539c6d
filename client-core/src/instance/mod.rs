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

use crate::api::{ClientApi, HeartbeatAnswer};
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::fastjson;
use crate::header::{
    ConsumeMessageDirectlyResultRequestHeader, ConsumerData, ConsumerGroupHeader, HeartbeatData,
    ProducerData, TopicGroupHeader, UnregisterClientRequestHeader,
};
use crate::message::{MessageExt, decode_message};
use crate::route::{MASTER_ID, MessageQueue, TopicRouteData};

mod check_client;
mod consumer_inner;
mod jobs;
mod request_processor;
mod routes;

pub use consumer_inner::{ConsumerInner, Weakly};
use request_processor::BrokerRequestHandler;
pub use routes::FindBrokerResult;
use routes::RouteState;

struct Inner {
    client_id: String,
    config: ClientConfig,
    api: ClientApi,
    routes: ArcSwap<RouteState>,
    consumers: Mutex<HashMap<String, Arc<dyn ConsumerInner>>>,
    producers: Mutex<Vec<String>>,
    broker_versions: Mutex<HashMap<String, i32>>,
    /// Heartbeat V2: broker address → the fingerprint it acknowledged (answered
    /// `IS_SUPPORT_HEART_BEAT_V2` without `IS_SUB_CHANGE`); such a broker gets heartbeats
    /// without subscriptions while the fingerprint stays the same.
    heartbeat_v2_acked: Mutex<HashMap<String, i32>>,
    namesrv_index: AtomicUsize,
    started: AtomicBool,
    /// Wakes the heartbeat job before its next tick (a broker connection was opened, or a
    /// broker said it does not know the group).
    heartbeat_wanted: Arc<tokio::sync::Notify>,
    /// Heartbeat rounds started / finished, numbered from 1 (see
    /// [`ClientInstance::heartbeat_now`]).
    heartbeat_started: std::sync::atomic::AtomicU64,
    heartbeat_finished: tokio::sync::watch::Sender<u64>,
    token: CancellationToken,
    tracker: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            heartbeat_v2_acked: Mutex::new(HashMap::new()),
            namesrv_index: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            heartbeat_wanted: Arc::new(tokio::sync::Notify::new()),
            heartbeat_started: std::sync::atomic::AtomicU64::new(0),
            heartbeat_finished: tokio::sync::watch::Sender::new(0),
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        remoting.set_request_handler(Arc::new(BrokerRequestHandler(Arc::downgrade(&inner))));
        // A new connection to a broker (first or after a fault) gets a heartbeat at once: a
        // restarted broker, or one that dropped the connection, has forgotten the group
        // and answers pulls "group info not exist" until it hears from the client.
        let weak = Arc::downgrade(&inner);
        remoting.set_connect_hook(Arc::new(move |addr: &str| {
            if let Some(inner) = weak.upgrade()
                && !inner.config.namesrv_addrs.iter().any(|a| a == addr)
            {
                // A new connection may be a restarted broker: a full heartbeat first.
                lock(&inner.heartbeat_v2_acked).remove(addr);
                inner.heartbeat_wanted.notify_one();
            }
        }));
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
