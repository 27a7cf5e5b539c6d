//! [`RebalanceImpl`] (Java `RebalanceImpl` / `RebalancePushImpl`): for each subscribed topic,
//! decides the queues this client owns, starts new ones at the right offset and releases
//! the others, and [`RebalanceService`], the job that runs it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmq_client_core::header::{LockBatchRequestBody, QueryAssignmentRequestBody};
use rmq_client_core::namespace::is_retry_topic;
use rmq_client_core::{
    ClientError, ClientInstance, ConsumeFromWhere, MessageModel, MessageQueue, SubscriptionData,
};
use rmq_offset_store::{OffsetStore, ReadOffsetType};
use rmq_remoting::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{AllocateError, AllocateMessageQueueStrategy};

/// LOCK/UNLOCK timeout (Java 1000 ms).
const LOCK_TIMEOUT: Duration = Duration::from_millis(1000);
/// Rebalance period (Java `rocketmq.client.rebalance.waitInterval`, 20 s).
pub const REBALANCE_INTERVAL: Duration = Duration::from_millis(20_000);
/// Smallest gap between two rebalances (Java `rocketmq.client.rebalance.minInterval`, 1 s).
pub const REBALANCE_MIN_INTERVAL: Duration = Duration::from_millis(1000);
/// Default of [`RebalanceConfig::membership_check_interval`]: 2 s.
pub const MEMBERSHIP_CHECK_INTERVAL: Duration = Duration::from_millis(2000);

/// Why a rebalance of a topic failed (it is retried at the next round; other topics go on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebalanceError {
    /// The topic's queues are not known yet (no route).
    #[error("no queues known for topic {topic}")]
    NoQueues {
        /// The topic.
        topic: String,
    },
    /// The consumer-id list could not be had.
    #[error("consumer ids of group {group} for topic {topic} unavailable")]
    ConsumerIds {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// The cause.
        #[source]
        source: ClientError,
    },
    /// Some assigned queues are still held by their previous owner (or their start offset
    /// was unknown); the round is retried after a second.
    #[error("topic {topic}: some assigned queues are not taken yet")]
    AwaitingRelease {
        /// The topic.
        topic: String,
    },
    /// Server-side assignment: the broker could not be asked, or refused.
    #[error("QUERY_ASSIGNMENT for topic {topic} failed")]
    QueryAssignment {
        /// The topic.
        topic: String,
        /// The cause.
        #[source]
        source: ClientError,
    },
    /// Server-side assignment: the broker had no answer (it does not know the topic, the
    /// group's members or the strategy yet), or an answer rmq cannot use (POP mode); the
    /// old assignment is kept and the round retried after a second, as Java does.
    #[error("topic {topic}: no usable assignment from the broker ({reason})")]
    NoAssignment {
        /// The topic.
        topic: String,
        /// Why the answer was not used.
        reason: &'static str,
    },
    /// The strategy failed.
    #[error("allocation strategy {strategy} failed for topic {topic}")]
    Allocate {
        /// The topic.
        topic: String,
        /// The strategy.
        strategy: String,
        /// The cause.
        #[source]
        source: AllocateError,
    },
}

/// The consumer side of a rebalance (Java `RebalancePushImpl` hooks and
/// `MessageQueueListener`). Called from the rebalance task; one call at a time.
pub trait RebalanceListener: Send + Sync + 'static {
    /// This client now owns `mq`; start consuming it at `next_offset`.
    fn queue_added(&self, mq: &MessageQueue, next_offset: i64);

    /// This client is giving `mq` up: stop pulling, drain what is cached (bounded wait),
    /// and return `true` once nothing more will be consumed from it. Its offset is then
    /// persisted and removed by the rebalance. `false` keeps the queue for a later round
    /// (Java does that for an orderly queue still being consumed).
    fn queue_removed(&self, mq: &MessageQueue) -> BoxFuture<'_, bool>;

    /// The assignment of `topic` changed (Java `MessageQueueListener.messageQueueChanged`):
    /// all readable queues and the ones this client owns now.
    fn queues_changed(&self, _topic: &str, _all: &[MessageQueue], _owned: &[MessageQueue]) {}

    /// The broker lock of `mq` was obtained (`true`) or not (`false`) by
    /// [`RebalanceImpl::lock_all`]; orderly consumption only.
    fn lock_state(&self, _mq: &MessageQueue, _locked: bool) {}

    /// Server-side assignment in POP mode: this client now pops `mq` (queue id −1: every
    /// queue of the topic on that broker). No offset: the broker keeps it. The default
    /// refuses (returns `false`): a consumer that cannot pop keeps its old assignment.
    fn pop_queue_added(&self, _mq: &MessageQueue) -> bool {
        false
    }

    /// Server-side assignment in POP mode: this client stops popping `mq`. Messages already
    /// popped are still consumed and acknowledged (a receipt is valid wherever the queue
    /// went).
    fn pop_queue_removed(&self, _mq: &MessageQueue) {}
}

/// After a refused lock: whether this client is the group's only member, and the queues
/// the other members hold; `None` when that could not be learned.
type Holders = Option<(bool, HashSet<MessageQueue>)>;

/// Settings of a [`RebalanceImpl`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RebalanceConfig {
    /// The (namespaced) consumer group.
    pub group: String,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// Start position for queues without an offset.
    pub consume_from_where: ConsumeFromWhere,
    /// For [`ConsumeFromWhere::Timestamp`], ms since the epoch (Java default: 30 min ago).
    pub consume_timestamp_ms: i64,
    /// Orderly consumption: queues are locked at the broker before they are taken.
    pub orderly: bool,
    /// Ask brokers ≥ 5.0 not to answer "offset 0" for a group with no stored offset on a
    /// young queue (REMOTING.md §3.7). See [`RebalanceImpl::compute_pull_from_where`].
    pub strict_last_offset: bool,
    /// Clean hand-off for concurrent clustering consumers: a queue is locked at the broker
    /// while owned, released only after its offset is committed, and a new owner waits (at
    /// most `handoff_timeout`) for the lock before it reads the offset. Java has no such
    /// step, so a queue changing owners is consumed twice from the old owner's last
    /// periodic commit. Orderly consumers always lock.
    ///
    /// A crashed owner never unlocks (the broker's lock expires after 60 s). When a lock
    /// is refused, the group's members are asked for again and each other member for the
    /// queues in its process-queue table (GET_CONSUMER_RUNNING_INFO through the broker;
    /// Java members answer it too). A live holder is a member (it registers before it
    /// locks and unregisters only after it unlocks) and keeps the queue in its table while
    /// it owns or drains it. So: if this client is the only member, the holder is dead and
    /// the queue is taken at once; if no other member has the queue in its table on two
    /// rounds at least 1 s apart (a member that just locked it enters it in its table
    /// after reading its offset), likewise. Otherwise — the holder is alive, or a member
    /// did not answer — the wait stays. (Rules from the strategy's previous allocation are
    /// not sound: mid-hand-off the allocated owner need not be the holder; nor is a member
    /// list fetched before the refusal: members starting together each see themselves
    /// alone.)
    pub handoff_lock: bool,
    /// Longest wait for a previous owner to release a queue before taking it anyway (a
    /// crashed owner never releases; the broker lock expires after 60 s). Default 15 s.
    pub handoff_timeout: Duration,
    /// How often a balanced clustering consumer asks a broker for its group's members
    /// between rebalances, rebalancing at once when they changed; `None` waits for the
    /// broker's NOTIFY_CONSUMER_IDS_CHANGED or the 20 s period, as Java does. The
    /// rocketmq-rust 1.0 broker does not notify when a member leaves (cleanly or not), so
    /// without the check the others took a leaver's queues up to 20 s later (`cargo xtask
    /// chaos`). Costs one GET_CONSUMER_LIST_BY_GROUP per check. Default 2 s.
    pub membership_check_interval: Option<Duration>,
    /// Server-side assignment (Java 5.x `setClientRebalance(false)`, brokers ≥ 5.0): each
    /// rebalance asks a broker of the topic (QUERY_ASSIGNMENT) which queues this client
    /// gets, the broker running the strategy named by [`AllocateMessageQueueStrategy::name`]
    /// over the members that heartbeat to it; only `AVG` and `AVG_BY_CIRCLE` exist there.
    /// Queues are then pulled, locked for hand-off and committed as usual. Clustering,
    /// concurrent consumers only (Java also keeps orderly and broadcasting consumers on
    /// client-side allocation). Default false.
    ///
    /// A broker without an answer keeps the old assignment (a Java broker answers null;
    /// the rocketmq-rust 1.0 broker answers an empty list, which rmq takes as "no answer"
    /// while this client is a member and there are enough queues for it to get one).
    ///
    /// When the group's mode for the topic is POP on the broker (SET_MESSAGE_REQUEST_MODE,
    /// `mqadmin setConsumeMode`), the answer's queues are marked POP and go to
    /// [`RebalanceListener::pop_queue_added`] instead (Java
    /// `RebalanceImpl.updateMessageQueueAssignment`); retry topics are always PULL.
    pub server_side_assignment: bool,
}

impl RebalanceConfig {
    /// Clustering, from the last offset, concurrent.
    pub fn new(group: impl Into<String>) -> Self {
        RebalanceConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::LastOffset,
            consume_timestamp_ms: rmq_client_core::now_millis() - 30 * 60 * 1000,
            orderly: false,
            strict_last_offset: false,
            handoff_lock: false,
            handoff_timeout: Duration::from_secs(15),
            membership_check_interval: Some(MEMBERSHIP_CHECK_INTERVAL),
            server_side_assignment: false,
        }
    }
}

/// Who owns which queue, for one consumer group in one client (Java `RebalanceImpl`).
pub struct RebalanceImpl {
    config: RebalanceConfig,
    instance: ClientInstance,
    strategy: Arc<dyn AllocateMessageQueueStrategy>,
    offset_store: Arc<dyn OffsetStore>,
    listener: Arc<dyn RebalanceListener>,
    subscriptions: Mutex<HashMap<String, SubscriptionData>>,
    topic_queues: Mutex<HashMap<String, Vec<MessageQueue>>>,
    owned: Mutex<BTreeSet<MessageQueue>>,
    /// Queues popped (server-side assignment in POP mode).
    pop_owned: Mutex<BTreeSet<MessageQueue>>,
    /// Queues assigned to us but not yet locked, and since when.
    waiting_lock: Mutex<HashMap<MessageQueue, std::time::Instant>>,
    /// The group's members (sorted) at the last rebalance, for
    /// [`RebalanceImpl::members_changed`].
    last_members: Mutex<Option<Vec<String>>>,
    /// Refused queues no live member holds, and since when (the crashed-holder rule).
    orphaned: Mutex<HashMap<MessageQueue, std::time::Instant>>,
}

impl std::fmt::Debug for RebalanceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RebalanceImpl")
            .field("config", &self.config)
            .field("strategy", &self.strategy.name())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RebalanceImpl {
    /// A rebalancer for `config.group` on `instance`.
    pub fn new(
        config: RebalanceConfig,
        instance: ClientInstance,
        strategy: Arc<dyn AllocateMessageQueueStrategy>,
        offset_store: Arc<dyn OffsetStore>,
        listener: Arc<dyn RebalanceListener>,
    ) -> Self {
        RebalanceImpl {
            config,
            instance,
            strategy,
            offset_store,
            listener,
            subscriptions: Mutex::new(HashMap::new()),
            topic_queues: Mutex::new(HashMap::new()),
            owned: Mutex::new(BTreeSet::new()),
            pop_owned: Mutex::new(BTreeSet::new()),
            waiting_lock: Mutex::new(HashMap::new()),
            last_members: Mutex::new(None),
            orphaned: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the group's members differ from those of the last rebalance (a clustering
    /// consumer; asked of a broker serving the first subscribed topic). `false` when that
    /// cannot be told (no rebalance yet, no route, the broker did not answer).
    pub async fn members_changed(&self) -> bool {
        if self.config.message_model != MessageModel::Clustering {
            return false;
        }
        let Some(last) = lock(&self.last_members).clone() else {
            return false;
        };
        let Some(topic) = lock(&self.subscriptions).keys().min().cloned() else {
            return false;
        };
        self.members(&topic).await.is_ok_and(|ids| ids != last)
    }

    /// The group's members now, sorted, asked of a broker serving `topic`.
    async fn members(&self, topic: &str) -> Result<Vec<String>, ClientError> {
        let mut ids = self
            .instance
            .find_consumer_id_list(topic, &self.config.group)
            .await?;
        ids.sort();
        Ok(ids)
    }

    fn locks_queues(&self) -> bool {
        self.config.message_model == MessageModel::Clustering
            && (self.config.orderly || self.config.handoff_lock)
    }

    /// The configuration.
    pub fn config(&self) -> &RebalanceConfig {
        &self.config
    }

    /// Subscribes (or re-subscribes) a topic.
    pub fn subscribe(&self, sub: SubscriptionData) {
        lock(&self.subscriptions).insert(sub.topic.clone(), sub);
    }

    /// Drops a topic's subscription; its queues are released at the next rebalance.
    pub fn unsubscribe(&self, topic: &str) {
        lock(&self.subscriptions).remove(topic);
    }

    /// The subscriptions by topic.
    pub fn subscriptions(&self) -> HashMap<String, SubscriptionData> {
        lock(&self.subscriptions).clone()
    }

    /// Records a topic's readable queues (from the instance's route refresh).
    pub fn set_topic_queues(&self, topic: &str, queues: &[MessageQueue]) {
        lock(&self.topic_queues).insert(topic.to_owned(), queues.to_vec());
    }

    /// The queues this client owns now, sorted.
    pub fn owned_queues(&self) -> Vec<MessageQueue> {
        lock(&self.owned).iter().cloned().collect()
    }

    /// One rebalance round over every subscribed topic (Java `doRebalance`). A topic's
    /// failure is logged and does not stop the others. Topics no longer subscribed lose
    /// their queues (Java `truncateMessageQueueNotMyTopic`). Returns whether every topic
    /// balanced.
    pub async fn do_rebalance(&self) -> bool {
        let topics: Vec<String> = lock(&self.subscriptions).keys().cloned().collect();
        let mut balanced = true;
        for topic in &topics {
            match self.rebalance_by_topic(topic).await {
                Ok(()) => {}
                Err(
                    e @ (RebalanceError::AwaitingRelease { .. }
                    | RebalanceError::NoAssignment { .. }),
                ) => {
                    balanced = false;
                    tracing::debug!(group = %self.config.group, error = %e, "rebalance incomplete");
                }
                Err(e) => {
                    balanced = false;
                    tracing::warn!(group = %self.config.group, topic, error = %e, "rebalance of topic failed");
                }
            }
        }
        let stale: Vec<MessageQueue> = lock(&self.owned)
            .iter()
            .filter(|mq| !topics.contains(&mq.topic))
            .cloned()
            .collect();
        for mq in stale {
            self.release(&mq).await;
        }
        balanced
    }

    async fn rebalance_by_topic(&self, topic: &str) -> Result<(), RebalanceError> {
        let all = lock(&self.topic_queues)
            .get(topic)
            .cloned()
            .unwrap_or_default();
        if all.is_empty() {
            return Err(RebalanceError::NoQueues {
                topic: topic.to_owned(),
            });
        }
        let mine: Vec<MessageQueue> = match self.config.message_model {
            MessageModel::Broadcasting => all.clone(),
            MessageModel::Clustering => {
                let cids =
                    self.members(topic)
                        .await
                        .map_err(|source| RebalanceError::ConsumerIds {
                            topic: topic.to_owned(),
                            group: self.config.group.clone(),
                            source,
                        })?;
                *lock(&self.last_members) = Some(cids.clone());
                let mut mine = if self.config.server_side_assignment && !self.config.orderly {
                    let (pull, pop) = self.query_assignment(topic, &all, &cids).await?;
                    if !self.update_pop_owned(topic, &pop) {
                        // The old assignment stays, and the round is tried again.
                        return Err(RebalanceError::NoAssignment {
                            topic: topic.to_owned(),
                            reason: "the broker assigns POP mode to the group, and this consumer does not pop (pop_mode)",
                        });
                    }
                    pull
                } else {
                    let mut sorted = all.clone();
                    sorted.sort();
                    self.strategy
                        .allocate(
                            &self.config.group,
                            self.instance.client_id(),
                            &sorted,
                            &cids,
                        )
                        .map_err(|source| RebalanceError::Allocate {
                            topic: topic.to_owned(),
                            strategy: self.strategy.name().to_owned(),
                            source,
                        })?
                };
                let mut seen = HashSet::new();
                mine.retain(|q| seen.insert(q.clone()));
                mine
            }
        };
        let (changed, complete) = self.update_owned(topic, &mine).await;
        if changed {
            self.listener.queues_changed(topic, &all, &mine);
        }
        if complete {
            Ok(())
        } else {
            Err(RebalanceError::AwaitingRelease {
                topic: topic.to_owned(),
            })
        }
    }

    /// The queues of `topic` a broker assigns to this client (see
    /// [`RebalanceConfig::server_side_assignment`]); `all` and `cids` are what this client
    /// knows, to tell an empty answer that means "none for you" from "no answer".
    async fn query_assignment(
        &self,
        topic: &str,
        all: &[MessageQueue],
        cids: &[String],
    ) -> Result<(Vec<MessageQueue>, Vec<MessageQueue>), RebalanceError> {
        let no_answer = |reason| RebalanceError::NoAssignment {
            topic: topic.to_owned(),
            reason,
        };
        let addr = self
            .instance
            .find_broker_addr_by_topic(topic)
            .ok_or_else(|| no_answer("no broker serves the topic"))?;
        let body = QueryAssignmentRequestBody {
            client_id: self.instance.client_id().to_owned(),
            consumer_group: self.config.group.clone(),
            message_model: self.config.message_model.as_str().to_owned(),
            strategy_name: self.strategy.name().to_owned(),
            topic: topic.to_owned(),
        };
        let timeout = self.instance.config().mq_client_api_timeout;
        let answer = self
            .instance
            .api()
            .query_assignment(&addr, &body, timeout)
            .await
            .map_err(|source| RebalanceError::QueryAssignment {
                topic: topic.to_owned(),
                source,
            })?
            .ok_or_else(|| no_answer("no answer"))?;
        if let Some(a) = answer
            .iter()
            .find(|a| !matches!(a.mode.as_deref(), None | Some("PULL") | Some("POP")))
        {
            tracing::warn!(topic, mode = ?a.mode, "unknown message request mode in the assignment");
            return Err(no_answer("an unknown message request mode"));
        }
        let (pop, pull): (Vec<_>, Vec<_>) = answer
            .into_iter()
            .partition(|a| a.mode.as_deref() == Some("POP"));
        if pull.iter().any(|a| a.message_queue.queue_id < 0) {
            return Err(no_answer("a PULL queue with a negative id"));
        }
        let pop: Vec<MessageQueue> = pop.into_iter().map(|a| a.message_queue).collect();
        if !pop.is_empty() {
            return Ok((pull.into_iter().map(|a| a.message_queue).collect(), pop));
        }
        let answer = pull;
        let me = self.instance.client_id();
        if answer.is_empty() && cids.iter().any(|c| c == me) && cids.len() <= all.len() {
            // AVG gives every member a queue when there are enough: an empty list is the
            // rocketmq-rust broker's "no answer" (topic or members not known to it yet).
            return Err(no_answer(
                "an empty assignment although queues are left for us",
            ));
        }
        Ok((
            answer.into_iter().map(|a| a.message_queue).collect(),
            Vec::new(),
        ))
    }

    /// Takes the POP-mode queues of `topic` in `mine` and gives up the others (Java
    /// `updateMessageQueueAssignment`'s pop half); `false` when the listener refused one
    /// (a consumer that does not pop).
    fn update_pop_owned(&self, topic: &str, mine: &[MessageQueue]) -> bool {
        let current: Vec<MessageQueue> = lock(&self.pop_owned)
            .iter()
            .filter(|q| q.topic == topic)
            .cloned()
            .collect();
        for mq in current.iter().filter(|q| !mine.contains(q)) {
            lock(&self.pop_owned).remove(mq);
            self.listener.pop_queue_removed(mq);
            tracing::info!(group = %self.config.group, ?mq, "pop queue released");
        }
        let mut taken = true;
        for mq in mine.iter().filter(|q| !current.contains(q)) {
            if self.listener.pop_queue_added(mq) {
                lock(&self.pop_owned).insert(mq.clone());
                tracing::info!(group = %self.config.group, ?mq, "pop queue added");
            } else {
                taken = false;
            }
        }
        taken
    }

    /// The queues this client pops now (server-side assignment in POP mode).
    pub fn pop_queues(&self) -> Vec<MessageQueue> {
        lock(&self.pop_owned).iter().cloned().collect()
    }

    /// Releases queues of `topic` not in `mine` and takes the new ones (Java
    /// `updateProcessQueueTableInRebalance`); returns whether anything changed and whether
    /// every assigned queue was taken.
    async fn update_owned(&self, topic: &str, mine: &[MessageQueue]) -> (bool, bool) {
        let current: Vec<MessageQueue> = lock(&self.owned)
            .iter()
            .filter(|q| q.topic == topic)
            .cloned()
            .collect();
        let mut changed = false;
        let mut complete = true;
        // Who could hold a refused lock: asked once per round, after the first refusal.
        let mut holders: Option<Holders> = None;
        lock(&self.waiting_lock).retain(|q, _| q.topic != topic || mine.contains(q));
        lock(&self.orphaned).retain(|q, _| q.topic != topic || mine.contains(q));
        for mq in current.iter().filter(|q| !mine.contains(q)) {
            changed |= self.release(mq).await;
        }
        for mq in mine.iter().filter(|q| !current.contains(q)) {
            if self.locks_queues() && !self.lock(mq).await {
                let since = *lock(&self.waiting_lock)
                    .entry(mq.clone())
                    .or_insert_with(std::time::Instant::now);
                let holder_dead = !self.config.orderly
                    && self.config.message_model == MessageModel::Clustering
                    && {
                        if holders.is_none() {
                            holders = Some(self.holders(topic).await);
                        }
                        self.holder_dead(mq, holders.as_ref().expect("just set"))
                    };
                if holder_dead {
                    tracing::info!(
                        ?mq,
                        "queue locked by a member no longer in the group (crashed); taking it without the lock"
                    );
                } else if self.config.orderly || since.elapsed() < self.config.handoff_timeout {
                    tracing::debug!(
                        ?mq,
                        "queue still locked by its previous owner; not taken this round"
                    );
                    complete = false;
                    continue;
                } else {
                    tracing::warn!(?mq, waited = ?since.elapsed(), "previous owner never released the queue; taking it without the lock");
                }
            }
            lock(&self.waiting_lock).remove(mq);
            lock(&self.orphaned).remove(mq);
            // A stale offset of a previous ownership must not be used.
            self.offset_store.remove_offset(mq);
            match self.compute_pull_from_where(mq).await {
                Ok(offset) => {
                    lock(&self.owned).insert(mq.clone());
                    tracing::info!(group = %self.config.group, ?mq, offset, "queue added");
                    self.listener.queue_added(mq, offset);
                    changed = true;
                }
                Err(e) => {
                    complete = false;
                    tracing::warn!(?mq, error = %e, "start offset unknown; queue not taken this round");
                }
            }
        }
        (changed, complete)
    }

    /// Who could hold a lock refused to this client: the queues in the process-queue
    /// tables of the group's other members now (a member list fetched after the refusal;
    /// GET_CONSUMER_RUNNING_INFO through the broker). `None` when any of that could not be
    /// learned.
    async fn holders(&self, topic: &str) -> Holders {
        let me = self.instance.client_id();
        let ids = self.members(topic).await.ok()?;
        let addr = self.instance.find_broker_addr_by_topic(topic)?;
        let mut held = HashSet::new();
        for id in ids.iter().filter(|id| id.as_str() != me) {
            match self
                .instance
                .api()
                .get_consumer_running_queues(&addr, &self.config.group, id, LOCK_TIMEOUT)
                .await
            {
                Ok(queues) => held.extend(queues),
                Err(e) => {
                    tracing::debug!(member = %id, error = %e, "running info unavailable; a refused lock is waited for");
                    return None;
                }
            }
        }
        Some((ids.iter().all(|id| id == me), held))
    }

    /// Whether the holder of `mq`'s refused lock is dead: no live member has the queue in
    /// its table. Certain at once when this client is the only member (a live holder
    /// registers before it locks, so it is in a list fetched after the refusal). With other
    /// members it must hold on two rounds at least [`REBALANCE_MIN_INTERVAL`] apart: a
    /// member that has just locked the queue enters it in its table only after reading its
    /// offset.
    fn holder_dead(&self, mq: &MessageQueue, holders: &Holders) -> bool {
        let Some((alone, held)) = holders else {
            lock(&self.orphaned).remove(mq);
            return false;
        };
        if *alone {
            return true;
        }
        if held.contains(mq) {
            lock(&self.orphaned).remove(mq);
            return false;
        }
        let since = *lock(&self.orphaned)
            .entry(mq.clone())
            .or_insert_with(std::time::Instant::now);
        since.elapsed() >= REBALANCE_MIN_INTERVAL
    }

    /// Gives `mq` up: the listener drains it (bounded), then its offset is persisted and
    /// forgotten, and in orderly mode it is unlocked at the broker. Returns whether it was
    /// released (Java `removeUnnecessaryMessageQueue`).
    pub async fn release(&self, mq: &MessageQueue) -> bool {
        if !self.listener.queue_removed(mq).await {
            return false;
        }
        if let Err(e) = self.offset_store.persist(mq).await {
            tracing::warn!(?mq, error = %e, "persisting offset of a released queue failed");
        }
        self.offset_store.remove_offset(mq);
        lock(&self.owned).remove(mq);
        if self.locks_queues() {
            // After the commit above, so the next owner reads the committed offset.
            self.unlock(mq, false).await;
        }
        tracing::info!(group = %self.config.group, ?mq, "queue released");
        true
    }

    /// Releases every owned queue (shutdown).
    pub async fn release_all(&self) {
        for mq in self.owned_queues() {
            self.release(&mq).await;
        }
    }

    /// Where a newly owned queue starts (Java `computePullFromWhereWithException`):
    /// the stored offset if there is one; otherwise by [`ConsumeFromWhere`]:
    /// `LastOffset` → 0 for retry topics, else the max offset; `FirstOffset` → 0;
    /// `Timestamp` → the max offset for retry topics, else the offset at the timestamp.
    ///
    /// The young-queue quirk (REMOTING.md §3.7): a broker answers QUERY_CONSUMER_OFFSET
    /// with offset 0 (not "none") when the group has no offset and the queue's first
    /// message is still in memory, so a brand-new group with `LastOffset` consumes a young
    /// queue from its start. rmq keeps that by default, so that Java and rmq members of one
    /// group start alike and messages produced between topic creation and the group's
    /// first start are not skipped. With [`RebalanceConfig::strict_last_offset`] rmq sends
    /// `setZeroIfNotFound=false`, which brokers ≥ 5.0 honour: a new group then really
    /// starts at the end. Older brokers ignore the flag.
    ///
    /// # Errors
    /// When the offset store or the broker could not be asked; the queue is not taken this
    /// round (Java −2).
    pub async fn compute_pull_from_where(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        let stored = if self.config.strict_last_offset
            && self.config.message_model == MessageModel::Clustering
        {
            self.query_strict(mq).await?
        } else {
            self.offset_store
                .read_offset(mq, ReadOffsetType::ReadFromStore)
                .await
                .map_err(|e| ClientError::InvalidConfig(format!("offset store: {e}")))?
        };
        if let Some(o) = stored.filter(|o| *o >= 0) {
            return Ok(o);
        }
        let retry = is_retry_topic(&mq.topic);
        match self.config.consume_from_where {
            ConsumeFromWhere::LastOffset if retry => Ok(0),
            ConsumeFromWhere::LastOffset => self.max_offset(mq).await,
            ConsumeFromWhere::FirstOffset => Ok(0),
            ConsumeFromWhere::Timestamp if retry => self.max_offset(mq).await,
            ConsumeFromWhere::Timestamp => {
                let addr = self.master(mq).await?;
                self.instance
                    .api()
                    .search_offset(
                        &addr,
                        mq,
                        self.config.consume_timestamp_ms,
                        Duration::from_secs(5),
                    )
                    .await
            }
        }
    }

    async fn query_strict(&self, mq: &MessageQueue) -> Result<Option<i64>, ClientError> {
        let addr = self.master(mq).await?;
        let header = rmq_client_core::header::QueryConsumerOffsetRequestHeader {
            consumer_group: self.config.group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            set_zero_if_not_found: Some(false),
            bname: Some(mq.broker_name.clone()),
        };
        self.instance
            .api()
            .query_consumer_offset(&addr, &header, Duration::from_secs(5))
            .await
    }

    async fn master(&self, mq: &MessageQueue) -> Result<String, ClientError> {
        self.instance.master_addr_of(mq).await
    }

    async fn max_offset(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        let addr = self.master(mq).await?;
        self.instance
            .api()
            .get_max_offset(&addr, mq, Duration::from_secs(5))
            .await
    }

    fn lock_body(&self, mqs: Vec<MessageQueue>) -> LockBatchRequestBody {
        LockBatchRequestBody {
            client_id: self.instance.client_id().to_owned(),
            consumer_group: self.config.group.clone(),
            mq_set: mqs,
            only_this_broker: false,
        }
    }

    /// Locks `mq` at its master (LOCK_BATCH_MQ); `true` when this client holds it.
    pub async fn lock(&self, mq: &MessageQueue) -> bool {
        let Ok(addr) = self.master(mq).await else {
            return false;
        };
        match self
            .instance
            .api()
            .lock_batch_mq(&addr, &self.lock_body(vec![mq.clone()]), LOCK_TIMEOUT)
            .await
        {
            Ok(locked) => locked.contains(mq),
            Err(e) => {
                tracing::warn!(?mq, error = %e, "lock failed");
                false
            }
        }
    }

    /// Renews the locks of every owned queue, one request per broker (Java `lockAll`,
    /// every 20 s in orderly mode); tells the listener which are held.
    pub async fn lock_all(&self) {
        let mut by_broker: HashMap<String, Vec<MessageQueue>> = HashMap::new();
        for mq in self.owned_queues() {
            by_broker
                .entry(self.instance.broker_name_of(&mq).into_owned())
                .or_default()
                .push(mq);
        }
        for (broker, mqs) in by_broker {
            let Some(addr) = self.instance.find_broker_address_in_publish(&broker) else {
                continue;
            };
            let locked = self
                .instance
                .api()
                .lock_batch_mq(&addr, &self.lock_body(mqs.clone()), LOCK_TIMEOUT)
                .await
                .unwrap_or_default();
            for mq in &mqs {
                self.listener.lock_state(mq, locked.contains(mq));
            }
        }
    }

    /// Unlocks `mq` at its master (UNLOCK_BATCH_MQ).
    pub async fn unlock(&self, mq: &MessageQueue, oneway: bool) {
        let Some(addr) = self.instance.master_addr_cached(mq) else {
            return;
        };
        if let Err(e) = self
            .instance
            .api()
            .unlock_batch_mq(
                &addr,
                &self.lock_body(vec![mq.clone()]),
                LOCK_TIMEOUT,
                oneway,
            )
            .await
        {
            tracing::warn!(?mq, error = %e, "unlock failed");
        }
    }
}

/// The rebalance job (Java `RebalanceService`): runs [`RebalanceImpl::do_rebalance`] every
/// 20 s, and at once (at most once per second) when [`RebalanceService::wakeup`] is called
/// (start, NOTIFY_CONSUMER_IDS_CHANGED). A round that did not balance is retried after 1 s.
#[derive(Debug, Clone, Default)]
pub struct RebalanceService {
    notify: Arc<Notify>,
}

impl RebalanceService {
    /// A service; run it with [`RebalanceService::run`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for a rebalance now.
    pub fn wakeup(&self) {
        self.notify.notify_one();
    }

    /// A topic's readable queues changed (the client instance's route refresh): records
    /// them in `rebalance` and asks for a rebalance now.
    pub fn topic_queues_changed(
        &self,
        rebalance: &RebalanceImpl,
        topic: &str,
        queues: &[MessageQueue],
    ) {
        rebalance.set_topic_queues(topic, queues);
        self.wakeup();
    }

    /// Runs until `token` is cancelled. Cancel safe.
    pub async fn run(&self, rebalance: Arc<RebalanceImpl>, token: CancellationToken) {
        let mut wait = Duration::ZERO;
        loop {
            let next = tokio::time::Instant::now() + wait;
            // Until the next round: woken by a notification, or by a membership change seen
            // every `membership_check_interval`.
            let every = rebalance
                .config()
                .membership_check_interval
                .filter(|d| !d.is_zero())
                .unwrap_or(wait);
            let membership = async {
                loop {
                    let tick = (tokio::time::Instant::now() + every).min(next);
                    tokio::time::sleep_until(tick).await;
                    if tick >= next || rebalance.members_changed().await {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = token.cancelled() => return,
                _ = self.notify.notified() => {}
                _ = membership => {}
            }
            let balanced = tokio::select! {
                _ = token.cancelled() => return,
                b = rebalance.do_rebalance() => b,
            };
            // The minimum gap below is part of the wait.
            wait = if balanced {
                REBALANCE_INTERVAL - REBALANCE_MIN_INTERVAL
            } else {
                Duration::ZERO
            };
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(REBALANCE_MIN_INTERVAL) => {}
            }
        }
    }
}
