//! Routes: the name-server lookups, the route cache and the broker addresses derived
//! from it (Java `MQClientInstance.updateTopicRouteInfoFromNameServer`, `findBroker*`).

use super::*;

#[derive(Default)]
pub(super) struct RouteState {
    pub(super) topic_routes: foldhash::HashMap<String, Arc<TopicRouteData>>,
    /// broker name → broker id → address.
    pub(super) broker_addrs: foldhash::HashMap<String, BTreeMap<i64, String>>,
    /// Static topics: topic → logical queue id → the physical broker it is bound to (Java
    /// `topicEndPointsTable`).
    pub(super) logical_queues: HashMap<String, BTreeMap<i32, String>>,
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

impl ClientInstance {
    pub(super) async fn get_route_from_namesrv(
        &self,
        topic: &str,
    ) -> Result<TopicRouteData, ClientError> {
        let timeout = self.inner.config.mq_client_api_timeout;
        self.on_namesrv(|api, addr| api.get_topic_route(addr, topic, timeout))
            .await?
            .ok_or_else(|| ClientError::TopicRouteNotFound {
                topic: topic.to_owned(),
            })
    }

    /// Sends one request to the name servers in turn, starting with the last one that
    /// answered, until one answers; returns its answer or the last error.
    async fn on_namesrv<'a, T, F, Fut>(&'a self, request: F) -> Result<T, ClientError>
    where
        F: Fn(&'a ClientApi, &'a str) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let addrs = &self.inner.config.namesrv_addrs;
        if addrs.is_empty() {
            return Err(ClientError::InvalidConfig(
                "no name server address (namesrv_addr or NAMESRV_ADDR)".into(),
            ));
        }
        let start = self.inner.namesrv_index.load(Ordering::Relaxed);
        let mut last_err = None;
        for k in 0..addrs.len() {
            let i = (start + k) % addrs.len();
            match request(&self.inner.api, &addrs[i]).await {
                Ok(v) => {
                    self.inner.namesrv_index.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) => {
                    tracing::debug!(namesrv = %addrs[i], error = %e, "name server request failed, trying the next name server");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("at least one name server was asked"))
    }

    /// Every broker the name servers know (GET_BROKER_CLUSTER_INFO), addresses mapped by
    /// [`ClientConfig::broker_addr_map`] as routes are (Java `MQAdminExt.examineBrokerClusterInfo`).
    ///
    /// # Errors
    /// The last name server's error when none answered.
    pub async fn broker_cluster_info(&self) -> Result<crate::admin::ClusterInfo, ClientError> {
        let timeout = self.inner.config.mq_client_api_timeout;
        let mut info = self
            .on_namesrv(|api, addr| api.get_broker_cluster_info(addr, timeout))
            .await?;
        self.map_broker_addrs(info.broker_addr_table.values_mut());
        Ok(info)
    }

    /// Rewrites advertised broker addresses to the ones to dial
    /// ([`ClientConfig::broker_addr_map`]); unmapped addresses are left as they are.
    fn map_broker_addrs<'a>(
        &self,
        brokers: impl Iterator<Item = &'a mut crate::route::BrokerData>,
    ) {
        let config = &self.inner.config;
        if config.broker_addr_map.is_empty() {
            return;
        }
        for b in brokers {
            for addr in b.broker_addrs.values_mut() {
                let dial = config.dial_addr(addr);
                if dial != addr.as_str() {
                    *addr = dial.to_owned();
                }
            }
        }
    }

    /// Every topic's name, sorted (GET_ALL_TOPIC_LIST_FROM_NAMESERVER; Java
    /// `MQAdminExt.fetchAllTopicList`).
    ///
    /// # Errors
    /// The last name server's error when none answered.
    pub async fn all_topics(&self) -> Result<Vec<String>, ClientError> {
        let timeout = self.inner.config.mq_client_api_timeout;
        self.on_namesrv(|api, addr| api.get_all_topic_list(addr, timeout))
            .await
    }

    /// Fetches `topic`'s route from the name servers and installs it, its broker addresses
    /// mapped by [`ClientConfig::broker_addr_map`]; returns whether it changed (Java
    /// `updateTopicRouteInfoFromNameServer`). Consumers subscribed to the
    /// topic get its queues when it changed.
    ///
    /// # Errors
    /// [`ClientError::TopicRouteNotFound`] when the topic does not exist; transport errors
    /// when no name server answered.
    pub async fn update_topic_route(&self, topic: &str) -> Result<bool, ClientError> {
        let mut route = self.get_route_from_namesrv(topic).await?;
        self.map_broker_addrs(route.broker_datas.iter_mut());
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
                let mut logical_queues = state.logical_queues.clone();
                match route.static_queue_brokers(topic) {
                    Some(bound) => {
                        let bound = bound
                            .into_iter()
                            .filter_map(|(mq, b)| b.map(|b| (mq.queue_id, b)))
                            .collect();
                        logical_queues.insert(topic.to_owned(), bound);
                    }
                    None => {
                        logical_queues.remove(topic);
                    }
                }
                RouteState {
                    topic_routes,
                    broker_addrs,
                    logical_queues,
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

    pub(super) async fn refresh_all_routes(&self) {
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
            let header = crate::header::CreateTopicRequestHeader::new(topic, queues);
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

    /// The broker that serves `mq` (Java `getBrokerNameFromMessageQueue`): its own broker
    /// name, or for a static topic's logical queue (mock broker name `__syslo__…`) the
    /// physical broker it is bound to; the mock name itself when unbound (lookups then
    /// fail with "broker not found", as in Java).
    pub fn broker_name_of<'a>(&self, mq: &'a MessageQueue) -> std::borrow::Cow<'a, str> {
        if !mq
            .broker_name
            .starts_with(crate::route::LOGICAL_QUEUE_MOCK_BROKER_PREFIX)
        {
            return std::borrow::Cow::Borrowed(&mq.broker_name);
        }
        self.inner
            .routes
            .load()
            .logical_queues
            .get(&mq.topic)
            .and_then(|q| q.get(&mq.queue_id))
            .map_or(std::borrow::Cow::Borrowed(&mq.broker_name), |b| {
                std::borrow::Cow::Owned(b.clone())
            })
    }

    /// The master address of `mq`'s broker from the cache (see
    /// [`ClientInstance::broker_name_of`]).
    pub fn master_addr_cached(&self, mq: &MessageQueue) -> Option<String> {
        self.find_broker_address_in_publish(&self.broker_name_of(mq))
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
        self.found_or_refreshed(&mq.topic, || self.master_addr_cached(mq))
            .await?
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: self.broker_name_of(mq).into_owned(),
            })
    }

    /// `lookup()`, or when it finds nothing, `lookup()` again after one refresh of
    /// `topic`'s route from the name server: how every broker lookup here copes with a
    /// broker not known yet.
    async fn found_or_refreshed<T>(
        &self,
        topic: &str,
        lookup: impl Fn() -> Option<T>,
    ) -> Result<Option<T>, ClientError> {
        if let Some(found) = lookup() {
            return Ok(Some(found));
        }
        self.update_topic_route(topic).await?;
        Ok(lookup())
    }

    /// The master address of broker `broker_name` (a physical name, as in a pop receipt
    /// handle), refreshing `topic`'s route once when the broker is not known yet; the
    /// by-name form of [`ClientInstance::master_addr_of`].
    ///
    /// # Errors
    /// As [`ClientInstance::master_addr_of`].
    pub async fn master_addr_of_broker(
        &self,
        broker_name: &str,
        topic: &str,
    ) -> Result<String, ClientError> {
        self.found_or_refreshed(topic, || self.find_broker_address_in_publish(broker_name))
            .await?
            .ok_or_else(|| ClientError::BrokerNotFound {
                broker_name: broker_name.to_owned(),
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
        self.found_or_refreshed(&mq.topic, || {
            self.find_broker_address_in_subscribe(&self.broker_name_of(mq), broker_id, false)
        })
        .await?
        .ok_or_else(|| ClientError::BrokerNotFound {
            broker_name: self.broker_name_of(mq).into_owned(),
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

    pub(super) fn all_broker_addrs(&self, masters_only: bool) -> Vec<String> {
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

    /// Drops broker addresses no cached route mentions any more (Java `cleanOfflineBroker`).
    pub(super) fn clean_offline_brokers(&self) {
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
                logical_queues: state.logical_queues.clone(),
            }
        });
    }
}
