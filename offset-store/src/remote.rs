//! [`RemoteBrokerOffsetStore`] (Java `RemoteBrokerOffsetStore`): clustering consumers keep
//! their offsets at the broker that holds each queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rmq_client_core::header::{
    QueryConsumerOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use rmq_client_core::{ClientError, ClientInstance, MessageQueue};
use rmq_remoting::BoxFuture;

use crate::{OffsetStore, OffsetStoreError, OffsetTable, ReadOffsetType};

/// QUERY/UPDATE offset timeout (Java 5000 ms).
const OFFSET_CALL_TIMEOUT: Duration = Duration::from_millis(5000);

/// Clustering-mode offsets stored by the broker: an in-memory table, persisted with
/// UPDATE_CONSUMER_OFFSET to each queue's master every `persistConsumerOffsetInterval` and
/// at shutdown; read with QUERY_CONSUMER_OFFSET. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RemoteBrokerOffsetStore {
    instance: ClientInstance,
    group: String,
    table: Arc<OffsetTable>,
}

impl RemoteBrokerOffsetStore {
    /// The store of (namespaced) `group` on `instance`.
    pub fn new(instance: &ClientInstance, group: &str) -> Self {
        RemoteBrokerOffsetStore {
            instance: instance.clone(),
            group: group.to_owned(),
            table: Arc::new(OffsetTable::default()),
        }
    }

    async fn master_addr(&self, mq: &MessageQueue) -> Result<String, OffsetStoreError> {
        self.instance.master_addr_of(mq).await.map_err(|e| match e {
            ClientError::BrokerNotFound { broker_name } => {
                OffsetStoreError::BrokerNotFound { broker_name }
            }
            source => OffsetStoreError::Broker {
                mq: mq.clone(),
                source,
            },
        })
    }

    /// Asks the broker for the offset of `mq` (QUERY_CONSUMER_OFFSET); `Ok(None)` when
    /// the group has none. The young-queue quirk (REMOTING.md §3.7) is the broker's:
    /// `setZeroIfNotFound` is left unset so old and new brokers behave alike.
    ///
    /// # Errors
    /// [`OffsetStoreError::Broker`] / [`OffsetStoreError::BrokerNotFound`].
    pub async fn fetch_consume_offset_from_broker(
        &self,
        mq: &MessageQueue,
    ) -> Result<Option<i64>, OffsetStoreError> {
        let addr = self.master_addr(mq).await?;
        let header = QueryConsumerOffsetRequestHeader {
            consumer_group: self.group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            set_zero_if_not_found: None,
            bname: Some(mq.broker_name.clone()),
        };
        self.instance
            .api()
            .query_consumer_offset(&addr, &header, OFFSET_CALL_TIMEOUT)
            .await
            .map_err(|source| OffsetStoreError::Broker {
                mq: mq.clone(),
                source,
            })
    }

    /// Sends `offset` of `mq` to its master (UPDATE_CONSUMER_OFFSET), one-way as the Java
    /// push consumer does, or waiting for the answer (`commitSync` of pull consumers).
    ///
    /// # Errors
    /// [`OffsetStoreError::Broker`] / [`OffsetStoreError::BrokerNotFound`].
    pub async fn update_consume_offset_to_broker(
        &self,
        mq: &MessageQueue,
        offset: i64,
        oneway: bool,
    ) -> Result<(), OffsetStoreError> {
        let addr = self.master_addr(mq).await?;
        let header = UpdateConsumerOffsetRequestHeader {
            consumer_group: self.group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            commit_offset: offset,
            bname: Some(mq.broker_name.clone()),
        };
        let api = self.instance.api();
        let result = if oneway {
            api.update_consumer_offset_oneway(&addr, &header, OFFSET_CALL_TIMEOUT)
                .await
        } else {
            api.update_consumer_offset(&addr, &header, OFFSET_CALL_TIMEOUT)
                .await
        };
        result.map_err(|source| OffsetStoreError::Broker {
            mq: mq.clone(),
            source,
        })
    }
}

impl OffsetStore for RemoteBrokerOffsetStore {
    fn load(&self) -> BoxFuture<'_, Result<(), OffsetStoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn update_offset(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        self.table.update(mq, offset, increase_only);
    }

    fn read_offset<'a>(
        &'a self,
        mq: &'a MessageQueue,
        read_type: ReadOffsetType,
    ) -> BoxFuture<'a, Result<Option<i64>, OffsetStoreError>> {
        Box::pin(
            self.table
                .read_through(mq, read_type, || self.fetch_consume_offset_from_broker(mq)),
        )
    }

    /// Sends every queue of `mqs` that has an in-memory offset; queues in memory but not in
    /// `mqs` are dropped from memory (Java removes these "unused" queues too). One queue's
    /// failure does not stop the others; the first error is returned after all were tried.
    fn persist_all<'a>(
        &'a self,
        mqs: &'a [MessageQueue],
    ) -> BoxFuture<'a, Result<(), OffsetStoreError>> {
        Box::pin(async move {
            let snapshot: HashMap<MessageQueue, i64> = self.table.snapshot(None);
            let mut first_err = None;
            for mq in mqs {
                if let Some(offset) = snapshot.get(mq)
                    && let Err(e) = self
                        .update_consume_offset_to_broker(mq, *offset, true)
                        .await
                {
                    tracing::warn!(?mq, offset, error = %e, "persisting offset failed");
                    first_err.get_or_insert(e);
                }
            }
            self.table.retain(|mq| mqs.contains(mq));
            first_err.map_or(Ok(()), Err)
        })
    }

    /// Waits for the broker's answer (Java sends this one-way): a queue's offset is
    /// persisted on its own when the queue changes owner, and the next owner must read the
    /// committed value.
    fn persist<'a>(&'a self, mq: &'a MessageQueue) -> BoxFuture<'a, Result<(), OffsetStoreError>> {
        Box::pin(async move {
            match self.table.get(mq) {
                Some(offset) => {
                    self.update_consume_offset_to_broker(mq, offset, false)
                        .await
                }
                None => Ok(()),
            }
        })
    }

    fn remove_offset(&self, mq: &MessageQueue) {
        self.table.remove(mq);
    }

    fn clone_offset_table(&self, topic: Option<&str>) -> HashMap<MessageQueue, i64> {
        self.table.snapshot(topic)
    }
}
