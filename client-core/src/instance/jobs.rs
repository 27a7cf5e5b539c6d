//! The scheduled jobs (Java `MQClientInstance.startScheduledTask`): route refresh,
//! heartbeats, offline-broker cleanup, offset persist.

use super::*;

impl ClientInstance {
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
            None,
            |i| Box::pin(async move { i.refresh_all_routes().await }),
        );
        // Also at once when `heartbeat_now` or a new broker connection asks; rounds asked
        // for while one runs are coalesced into the next one.
        self.spawn_job(
            "heartbeat",
            Duration::from_millis(1000),
            c.heartbeat_broker_interval,
            Some(Arc::clone(&self.inner.heartbeat_wanted)),
            |i| {
                Box::pin(async move {
                    let round = i.inner.heartbeat_started.fetch_add(1, Ordering::SeqCst) + 1;
                    i.clean_offline_brokers();
                    i.send_heartbeat_to_all_brokers().await;
                    i.inner.heartbeat_finished.send_replace(round);
                })
            },
        );
        self.spawn_job(
            "persist offsets",
            Duration::from_millis(10_000),
            c.persist_consumer_offset_interval,
            None,
            |i| Box::pin(async move { i.persist_all_consumer_offsets().await }),
        );
    }

    /// Runs `job` every `period` (first after `first`) and whenever `wake` is notified,
    /// until the instance is dropped or shut down. `wake` is held apart from the instance,
    /// so that waiting keeps no instance alive.
    pub(super) fn spawn_job(
        &self,
        name: &'static str,
        first: Duration,
        period: Duration,
        wake: Option<Arc<tokio::sync::Notify>>,
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
                let woken = async {
                    match &wake {
                        Some(w) => w.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = ticks.tick() => {}
                    _ = woken => {}
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

    /// Asks for a heartbeat round now and waits (at most `timeout`) until one that began
    /// after this call has finished; returns whether it did. Concurrent callers share one
    /// round. Used when a broker answers a pull with SUBSCRIPTION_NOT_EXIST ("the
    /// consumer's group info not exist") or SUBSCRIPTION_NOT_LATEST: Java waits for the
    /// next scheduled heartbeat (up to 30 s). Needs [`ClientInstance::start`].
    pub async fn heartbeat_now(&self, timeout: Duration) -> bool {
        let mut finished = self.inner.heartbeat_finished.subscribe();
        let after = self.inner.heartbeat_started.load(Ordering::SeqCst);
        // Asked for because a broker may not know the group: full heartbeats everywhere.
        lock(&self.inner.heartbeat_v2_acked).clear();
        self.inner.heartbeat_wanted.notify_one();
        tokio::time::timeout(timeout, finished.wait_for(|r| *r > after))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The heartbeat body of this instance now.
    pub fn heartbeat_data(&self) -> HeartbeatData {
        HeartbeatData {
            client_id: self.inner.client_id.clone(),
            consumer_data_set: self
                .consumers()
                .iter()
                .map(|c| c.consumer_data())
                .filter(|d| !d.group_name.is_empty())
                .collect(),
            producer_data_set: lock(&self.inner.producers)
                .iter()
                .map(|g| ProducerData {
                    group_name: g.clone(),
                })
                .collect(),
            heartbeat_fingerprint: None,
            without_sub: None,
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
        let v2 = self.inner.config.use_heartbeat_v2.then(|| {
            let fingerprint = data.fingerprint();
            let light = data.clone().into_v2(fingerprint, true);
            (fingerprint, data.clone().into_v2(fingerprint, false), light)
        });
        for addr in self.all_broker_addrs(masters_only) {
            let Some((fingerprint, full, light)) = &v2 else {
                self.heartbeat_to(&addr, &data).await;
                continue;
            };
            let acked = lock(&self.inner.heartbeat_v2_acked).get(&addr) == Some(fingerprint);
            let mut answer = self
                .heartbeat_to(&addr, if acked { light } else { full })
                .await;
            if acked && answer.is_some_and(|a| a.sub_change) {
                // The broker does not hold this fingerprint after all (it forgot the
                // group, or another member changed it): give it the subscriptions now.
                answer = self.heartbeat_to(&addr, full).await;
            }
            let mut table = lock(&self.inner.heartbeat_v2_acked);
            match answer {
                Some(a) if a.supports_v2 && !a.sub_change => {
                    table.insert(addr, *fingerprint);
                }
                _ => {
                    table.remove(&addr);
                }
            }
        }
    }

    /// One heartbeat; records the broker's version. `None` (logged) when it failed.
    async fn heartbeat_to(&self, addr: &str, data: &HeartbeatData) -> Option<HeartbeatAnswer> {
        let timeout = self.inner.config.mq_client_api_timeout;
        match self.inner.api.send_heartbeat(addr, data, timeout).await {
            Ok(answer) => {
                lock(&self.inner.broker_versions).insert(addr.to_owned(), answer.version);
                Some(answer)
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "heartbeat failed");
                None
            }
        }
    }

    /// The broker addresses that acknowledged this instance's current heartbeat V2
    /// fingerprint and so get heartbeats without subscriptions; empty unless
    /// [`ClientConfig::use_heartbeat_v2`](crate::ClientConfig::use_heartbeat_v2).
    pub fn heartbeat_v2_brokers(&self) -> Vec<String> {
        let mut addrs: Vec<String> = lock(&self.inner.heartbeat_v2_acked)
            .keys()
            .cloned()
            .collect();
        addrs.sort();
        addrs
    }

    pub(super) async fn persist_all_consumer_offsets(&self) {
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
}
