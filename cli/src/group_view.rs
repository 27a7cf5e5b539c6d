//! What the cluster knows about one consumer group, gathered once for `rmq status` and
//! `rmq doctor`: its brokers, its members (from every broker master), each member's own
//! report (GET_CONSUMER_RUNNING_INFO through a broker), and per queue of every subscribed
//! topic the broker's max offset, the committed offset and the member holding it.

use super::*;
use rmq_client_core::ClientError;
use rmq_client_core::admin::{
    ConsumerConnection, ConsumerRunningInfo, ProcessQueueInfo, merge_connections,
};
use rmq_remoting::protocol::ResponseCode;

/// One broker master and whether it answered.
pub(crate) struct BrokerSeen {
    pub(crate) name: String,
    pub(crate) addr: String,
    pub(crate) error: Option<String>,
}

/// One member of the group.
pub(crate) struct Member {
    pub(crate) client_id: String,
    pub(crate) addr: String,
    pub(crate) language: String,
    pub(crate) version: i32,
    /// What the member reported, or why it could not be asked.
    pub(crate) running: Result<ConsumerRunningInfo, String>,
}

/// One queue of a subscribed topic.
pub(crate) struct QueueView {
    pub(crate) mq: MessageQueue,
    /// The broker's max offset, or why it could not be read.
    pub(crate) max_offset: Result<i64, String>,
    /// The group's committed offset (`None`: none stored yet).
    pub(crate) committed: Option<i64>,
    /// Members holding the queue (more than one only mid-hand-off) and their report of it.
    pub(crate) holders: Vec<(String, ProcessQueueInfo)>,
    /// Pop mode: members popping the queue (their mqPopTable has it, or queue id −1 of its
    /// topic and broker). Every member may pop every queue.
    pub(crate) poppers: Vec<String>,
}

impl QueueView {
    /// Messages stored and not committed (from offset 0 when nothing is committed).
    pub(crate) fn lag(&self) -> Option<i64> {
        self.max_offset
            .as_ref()
            .ok()
            .map(|m| (m - self.committed.unwrap_or(0)).max(0))
    }
}

/// The group as the cluster sees it now.
pub(crate) struct GroupView {
    pub(crate) group: String,
    pub(crate) brokers: Vec<BrokerSeen>,
    /// The brokers' view, merged: members and the subscription each broker keeps.
    pub(crate) connection: ConsumerConnection,
    pub(crate) members: Vec<Member>,
    /// Subscribed topics (the retry topic included once it exists) and any topic asked about.
    pub(crate) topics: Vec<String>,
    /// Topics without a route.
    pub(crate) missing_topics: Vec<String>,
    pub(crate) queues: Vec<QueueView>,
}

/// The broker's max offset and the group's committed offset of `mq` (`None`: the group
/// has none there).
pub(crate) async fn queue_offsets(
    instance: &ClientInstance,
    group: &str,
    mq: &MessageQueue,
) -> Result<(i64, Option<i64>), String> {
    let addr = instance
        .master_addr_cached(mq)
        .ok_or_else(|| format!("no master address for broker {}", mq.broker_name))?;
    let timeout = instance.config().mq_client_api_timeout;
    let unreachable = |e: ClientError| {
        format!(
            "broker {} ({addr}) unreachable: {}",
            mq.broker_name,
            error_chain(&e)
        )
    };
    let max = instance
        .api()
        .get_max_offset(&addr, mq, timeout)
        .await
        .map_err(unreachable)?;
    let header = QueryConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        set_zero_if_not_found: Some(false),
        bname: Some(mq.broker_name.clone()),
    };
    let committed = instance
        .api()
        .query_consumer_offset(&addr, &header, timeout)
        .await
        .map_err(unreachable)?;
    Ok((max, committed))
}

/// Gathers the view of `group`, with `extra_topic`'s queues too. Fails only when the name
/// server cannot be asked; each broker or member that does not answer is recorded.
pub(crate) async fn gather(
    instance: &ClientInstance,
    group: &str,
    extra_topic: Option<&str>,
) -> Result<GroupView, Failure> {
    let cluster = instance
        .broker_cluster_info()
        .await
        .map_err(|e| preflight::namesrv_failure(instance, &e))?;
    let timeout = instance.config().mq_client_api_timeout;
    let mut brokers = Vec::new();
    let mut per_broker = Vec::new();
    // Which broker to ask a member's running info through: one it is connected to.
    let mut via: BTreeMap<String, String> = BTreeMap::new();
    for (name, data) in &cluster.broker_addr_table {
        let Some(addr) = data.master_addr() else {
            continue;
        };
        let error = match instance
            .api()
            .get_consumer_connection_list(addr, group, timeout)
            .await
        {
            Ok(c) => {
                for conn in &c.connection_set {
                    via.entry(conn.client_id.clone())
                        .or_insert_with(|| addr.to_owned());
                }
                per_broker.push(c);
                None
            }
            // No member of the group is connected to this broker.
            Err(ClientError::Broker { code, .. }) if code == ResponseCode::CONSUMER_NOT_ONLINE => {
                None
            }
            Err(e) => Some(error_chain(&e)),
        };
        brokers.push(BrokerSeen {
            name: name.clone(),
            addr: addr.to_owned(),
            error,
        });
    }
    let connection = merge_connections(per_broker);
    let mut members = Vec::new();
    for conn in &connection.connection_set {
        let running = match via.get(&conn.client_id) {
            Some(addr) => instance
                .api()
                .get_consumer_running_info(addr, group, &conn.client_id, timeout)
                .await
                .map_err(|e| error_chain(&e)),
            None => Err("connected to no broker".into()),
        };
        members.push(Member {
            client_id: conn.client_id.clone(),
            addr: conn.client_addr.clone(),
            language: conn.language.clone(),
            version: conn.version,
            running,
        });
    }
    let mut topics: Vec<String> = connection.subscription_table.keys().cloned().collect();
    for m in &members {
        if let Ok(r) = &m.running {
            topics.extend(r.subscriptions().into_keys());
        }
    }
    topics.extend(extra_topic.map(str::to_owned));
    topics.sort();
    topics.dedup();
    let mut missing_topics = Vec::new();
    let mut queues = Vec::new();
    for topic in &topics {
        match instance.update_topic_route(topic).await {
            Ok(_) => {}
            Err(ClientError::TopicRouteNotFound { .. }) => {
                missing_topics.push(topic.clone());
                continue;
            }
            Err(e) => return Err(preflight::namesrv_failure(instance, &e)),
        }
        for mq in instance.subscribe_queues(topic) {
            let (max_offset, committed) = match queue_offsets(instance, group, &mq).await {
                Ok((max, committed)) => (Ok(max), committed),
                Err(e) => (Err(e), None),
            };
            let holders = members
                .iter()
                .filter_map(|m| {
                    let pq = m.running.as_ref().ok()?.mq_table.get(&mq)?;
                    (!pq.droped).then(|| (m.client_id.clone(), pq.clone()))
                })
                .collect();
            let poppers = members
                .iter()
                .filter(|m| {
                    m.running.as_ref().is_ok_and(|r| {
                        r.mq_pop_table.iter().any(|(q, p)| {
                            !p.droped
                                && q.topic == mq.topic
                                && q.broker_name == mq.broker_name
                                && (q.queue_id == -1 || q.queue_id == mq.queue_id)
                        })
                    })
                })
                .map(|m| m.client_id.clone())
                .collect();
            queues.push(QueueView {
                mq,
                max_offset,
                committed,
                holders,
                poppers,
            });
        }
    }
    Ok(GroupView {
        group: group.to_owned(),
        brokers,
        connection,
        members,
        topics,
        missing_topics,
        queues,
    })
}

impl GroupView {
    /// Members whose subscriptions (topic → expression, retry topics left out) differ from
    /// the first member's, with both sides; empty when all agree.
    pub(crate) fn subscription_conflicts(&self) -> Vec<String> {
        let subs: Vec<(&str, BTreeMap<String, String>)> = self
            .members
            .iter()
            .filter_map(|m| {
                let mut s = m.running.as_ref().ok()?.subscriptions();
                s.retain(|t, _| !rmq_client_core::namespace::is_retry_topic(t));
                Some((m.client_id.as_str(), s))
            })
            .collect();
        let Some((first_id, first)) = subs.first() else {
            return Vec::new();
        };
        let show = |s: &BTreeMap<String, String>| {
            s.iter()
                .map(|(t, e)| format!("{t}={e}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        subs.iter()
            .skip(1)
            .filter(|(_, s)| s != first)
            .map(|(id, s)| {
                format!(
                    "{id} subscribes {} but {first_id} subscribes {}",
                    show(s),
                    show(first)
                )
            })
            .collect()
    }

    /// The sum of every queue's lag that could be read.
    pub(crate) fn total_lag(&self) -> i64 {
        self.queues.iter().filter_map(QueueView::lag).sum()
    }
}
