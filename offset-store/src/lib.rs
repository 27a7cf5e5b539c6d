//! # rmq-offset-store
//!
//! Where a queue resumes (Java `OffsetStore`, REMOTING.md §3.7–§3.8):
//!
//! - [`OffsetStore`]: the public trait, implementable by users (a database, a KV store…).
//! - [`LocalFileOffsetStore`]: broadcasting mode; the Java client's file path and layout,
//!   written atomically.
//! - [`RemoteBrokerOffsetStore`]: clustering mode; offsets kept by the broker.
//!
//! Offsets are always "the next offset to consume", never the last one consumed.
//!
//! A broadcasting consumer's offsets in a file, in the Java client's layout:
//!
//! ```
//! use rmq_client_core::MessageQueue;
//! use rmq_offset_store::{LocalFileOffsetStore, OffsetStore, ReadOffsetType};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("rmq-doc-{}", std::process::id()));
//! let store = LocalFileOffsetStore::new(Some(&dir), "127.0.0.1@doc", "my_group");
//! let mq = MessageQueue::new("TopicTest", "broker-a", 0);
//! store.update_offset(&mq, 42, false);
//! store.update_offset(&mq, 7, true); // increase only: ignored
//! store.persist_all(&[mq.clone()]).await?;
//!
//! // A new store (a restarted consumer) reads it back from the file.
//! let again = LocalFileOffsetStore::new(Some(&dir), "127.0.0.1@doc", "my_group");
//! assert_eq!(again.read_offset(&mq, ReadOffsetType::ReadFromStore).await?, Some(42));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;

use rmq_client_core::MessageQueue;
use rmq_remoting::BoxFuture;

mod local;
mod remote;

pub use local::{LocalFileOffsetStore, format_offsets_file, parse_offsets_file};
pub use remote::RemoteBrokerOffsetStore;

/// Where [`OffsetStore::read_offset`] looks (Java `ReadOffsetType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadOffsetType {
    /// Only the in-memory table.
    ReadFromMemory,
    /// Only the backing store (file or broker); the result is also put in memory.
    ReadFromStore,
    /// Memory if present, else the store.
    MemoryFirstThenStore,
}

/// An offset store error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetStoreError {
    /// Reading or writing the local offsets file failed.
    #[error("offsets file {path}: {op} failed")]
    Io {
        /// The file.
        path: String,
        /// What was being done.
        op: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The local offsets file (and its `.bak`) could not be parsed.
    #[error("offsets file {path} is not a valid offsets table")]
    Parse {
        /// The file.
        path: String,
        /// The parser's error.
        #[source]
        source: rmq_client_core::BoxError,
    },
    /// The broker could not be asked or refused.
    #[error("broker offset call for {mq:?} failed")]
    Broker {
        /// The queue.
        mq: MessageQueue,
        /// The client error.
        #[source]
        source: rmq_client_core::ClientError,
    },
    /// The queue's broker has no known master address even after a route refresh.
    #[error("no master address for broker {broker_name}")]
    BrokerNotFound {
        /// The broker name.
        broker_name: String,
    },
}

impl OffsetStoreError {
    /// What kind of failure this is.
    pub fn kind(&self) -> rmq_client_core::ErrorKind {
        use rmq_client_core::ErrorKind;
        match self {
            OffsetStoreError::Io { .. } => ErrorKind::Io,
            OffsetStoreError::Parse { .. } => ErrorKind::Decode,
            OffsetStoreError::Broker { source, .. } => source.kind(),
            OffsetStoreError::BrokerNotFound { .. } => ErrorKind::NotFound,
        }
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

/// Consumer offsets of one consumer group (Java `OffsetStore`).
///
/// The in-memory table is updated on every consumed batch and persisted periodically
/// (`persistConsumerOffsetInterval`, 5 s) and at shutdown. Methods that do I/O return a
/// boxed future so the store can live behind `Arc<dyn OffsetStore>`; implementors write
/// `Box::pin(async move { … })`. Called from consume tasks and scheduled jobs concurrently:
/// use interior mutability and never hold a lock across an `.await`.
pub trait OffsetStore: Send + Sync + fmt::Debug + 'static {
    /// Loads persisted offsets into memory (the local file; a no-op for the broker store).
    ///
    /// # Errors
    /// When the backing store cannot be read.
    fn load(&self) -> BoxFuture<'_, Result<(), OffsetStoreError>>;

    /// Sets the in-memory offset of `mq`. With `increase_only`, an offset below the current
    /// one is ignored, so a late, smaller commit never moves a queue backwards.
    fn update_offset(&self, mq: &MessageQueue, offset: i64, increase_only: bool);

    /// Reads the offset of `mq`: `Ok(None)` when none is stored (Java −1).
    ///
    /// # Errors
    /// When the store could not be asked (Java −2: the queue is then not started).
    fn read_offset<'a>(
        &'a self,
        mq: &'a MessageQueue,
        read_type: ReadOffsetType,
    ) -> BoxFuture<'a, Result<Option<i64>, OffsetStoreError>>;

    /// Persists the in-memory offsets of `mqs` (Java `persistAll`).
    ///
    /// # Errors
    /// When the backing store could not be written.
    fn persist_all<'a>(
        &'a self,
        mqs: &'a [MessageQueue],
    ) -> BoxFuture<'a, Result<(), OffsetStoreError>>;

    /// Persists the in-memory offset of one queue (Java `persist`).
    ///
    /// # Errors
    /// When the backing store could not be written.
    fn persist<'a>(&'a self, mq: &'a MessageQueue) -> BoxFuture<'a, Result<(), OffsetStoreError>>;

    /// Forgets `mq` in memory (Java `removeOffset`), after it was persisted on release.
    fn remove_offset(&self, mq: &MessageQueue);

    /// The in-memory offsets of `topic`'s queues (all topics for `None`) (Java `cloneOffsetTable`).
    fn clone_offset_table(&self, topic: Option<&str>) -> HashMap<MessageQueue, i64>;
}

/// The table's map: written once per listener call, so hashed with foldhash (SipHash,
/// std's default, cost about 1 % of all the CPU of consuming).
type Table = foldhash::HashMap<MessageQueue, i64>;

/// The in-memory table shared by both stores.
#[derive(Debug, Default)]
pub(crate) struct OffsetTable {
    map: std::sync::Mutex<Table>,
}

impl OffsetTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn update(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        let mut map = self.lock();
        match map.get_mut(mq) {
            Some(cur) if increase_only => {
                if offset > *cur {
                    *cur = offset;
                }
            }
            Some(cur) => *cur = offset,
            None => {
                map.insert(mq.clone(), offset);
            }
        }
    }

    pub(crate) fn get(&self, mq: &MessageQueue) -> Option<i64> {
        self.lock().get(mq).copied()
    }

    pub(crate) fn remove(&self, mq: &MessageQueue) {
        self.lock().remove(mq);
    }

    pub(crate) fn snapshot(&self, topic: Option<&str>) -> HashMap<MessageQueue, i64> {
        self.lock()
            .iter()
            .filter(|(mq, _)| topic.is_none_or(|t| mq.topic == t))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// The read path shared by the stores: memory per `read_type`, then `fetch` from the
    /// backing store, whose answer is put in memory.
    pub(crate) async fn read_through<F>(
        &self,
        mq: &MessageQueue,
        read_type: ReadOffsetType,
        fetch: impl FnOnce() -> F,
    ) -> Result<Option<i64>, OffsetStoreError>
    where
        F: std::future::Future<Output = Result<Option<i64>, OffsetStoreError>>,
    {
        if read_type != ReadOffsetType::ReadFromStore
            && let Some(o) = self.get(mq)
        {
            return Ok(Some(o));
        }
        if read_type == ReadOffsetType::ReadFromMemory {
            return Ok(None);
        }
        let found = fetch().await?;
        if let Some(o) = found {
            self.update(mq, o, false);
        }
        Ok(found)
    }

    pub(crate) fn retain(&self, keep: impl Fn(&MessageQueue) -> bool) {
        self.lock().retain(|mq, _| keep(mq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increase_only_never_moves_back() {
        let t = OffsetTable::default();
        let mq = MessageQueue::new("T", "b", 0);
        t.update(&mq, 10, true);
        t.update(&mq, 5, true);
        assert_eq!(t.get(&mq), Some(10));
        t.update(&mq, 12, true);
        assert_eq!(t.get(&mq), Some(12));
        t.update(&mq, 3, false);
        assert_eq!(t.get(&mq), Some(3));
    }
}
