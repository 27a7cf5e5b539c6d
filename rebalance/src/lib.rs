//! # rmq-rebalance
//!
//! Who owns which queue.
//!
//! - [`AllocateMessageQueueStrategy`]: the public, object-safe strategy trait (Java
//!   `AllocateMessageQueueStrategy`), implementable in your own crate.
//! - [`strategy`]: the six Java strategies under their Java names, agreeing exactly with
//!   Java so that Java and rmq consumers in one group split queues the same way.
//! - [`RebalanceImpl`]: per subscribed topic, who owns which queue, where a new queue
//!   starts ([`ConsumeFromWhere`]), hand-off through a [`RebalanceListener`], broker locks
//!   for orderly consumption; [`RebalanceService`] runs it every 20 s and on demand.
//!
//! ```
//! use rmq_client_core::MessageQueue;
//! use rmq_rebalance::{AllocateError, AllocateMessageQueueStrategy};
//!
//! /// Everyone takes the queues whose id is even… a toy, to show the shape.
//! #[derive(Debug)]
//! struct EvenQueuesToFirst;
//!
//! impl AllocateMessageQueueStrategy for EvenQueuesToFirst {
//!     fn name(&self) -> &str {
//!         "EVEN_TO_FIRST"
//!     }
//!     fn allocate(
//!         &self,
//!         _group: &str,
//!         current_cid: &str,
//!         mq_all: &[MessageQueue],
//!         cid_all: &[String],
//!     ) -> Result<Vec<MessageQueue>, AllocateError> {
//!         rmq_rebalance::check_allocate_args(current_cid, mq_all, cid_all)?;
//!         let first = cid_all.first().map(String::as_str) == Some(current_cid);
//!         Ok(mq_all.iter().filter(|q| (q.queue_id % 2 == 0) == first).cloned().collect())
//!     }
//! }
//!
//! let strategy: Box<dyn AllocateMessageQueueStrategy> = Box::new(EvenQueuesToFirst);
//! let mqs: Vec<_> = (0..4).map(|i| MessageQueue::new("T", "b", i)).collect();
//! let cids = vec!["a".to_string(), "b".to_string()];
//! assert_eq!(strategy.allocate("cg", "a", &mqs, &cids).unwrap().len(), 2);
//! ```

use std::fmt;

use rmq_client_core::MessageQueue;

mod rebalance_impl;
pub mod strategy;

pub use rebalance_impl::{
    MEMBERSHIP_CHECK_INTERVAL, REBALANCE_INTERVAL, REBALANCE_MIN_INTERVAL, RebalanceConfig,
    RebalanceError, RebalanceImpl, RebalanceListener, RebalanceService,
};
/// Defined in `rmq-client-core` (the heartbeat carries them), re-exported for users.
pub use rmq_client_core::{ConsumeFromWhere, MessageModel};

pub use strategy::{
    AllocateMachineRoomNearby, AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle, AllocateMessageQueueByConfig,
    AllocateMessageQueueByMachineRoom, AllocateMessageQueueConsistentHash,
};

/// Why an allocation could not be made (Java throws `IllegalArgumentException` for these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllocateError {
    /// The current client id is empty (Java: "currentCID is empty").
    #[error("currentCID is empty")]
    EmptyCurrentCid,
    /// There are no queues (Java: "mqAll is null or mqAll empty").
    #[error("mqAll is null or mqAll empty")]
    EmptyMqAll,
    /// There are no client ids (Java: "cidAll is null or cidAll empty").
    #[error("cidAll is null or cidAll empty")]
    EmptyCidAll,
    /// A strategy's own configuration is unusable.
    #[error("strategy {strategy}: {reason}")]
    Config {
        /// The strategy's name.
        strategy: String,
        /// What is wrong.
        reason: String,
    },
}

/// Decides which of a topic's queues this consumer owns (Java `AllocateMessageQueueStrategy`).
///
/// Called by the rebalance job for each subscribed topic in clustering mode, with `mq_all`
/// sorted by (topic, broker name, queue id) and `cid_all` sorted as strings, exactly as
/// Java's `RebalanceImpl` sorts them. Must be deterministic and agree across all members
/// of the group (every member runs it with the same inputs), be quick, and never block.
/// Calls may overlap across topics.
pub trait AllocateMessageQueueStrategy: Send + Sync + fmt::Debug + 'static {
    /// The strategy's name, e.g. `AVG` (Java `getName()`).
    fn name(&self) -> &str;

    /// The queues of `mq_all` that `current_cid` owns.
    ///
    /// # Errors
    /// [`AllocateError`] for empty inputs or an unusable configuration. A `current_cid`
    /// that is not in `cid_all` gets an empty list, not an error.
    fn allocate(
        &self,
        consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError>;
}

/// The argument checks every Java strategy but CONFIG runs first (Java
/// `AbstractAllocateMessageQueueStrategy.check` minus its logging): empty inputs are
/// errors; `Ok(false)` when `current_cid` is not in `cid_all` (it then owns nothing).
///
/// # Errors
/// [`AllocateError::EmptyCurrentCid`], [`AllocateError::EmptyMqAll`],
/// [`AllocateError::EmptyCidAll`].
pub fn check_allocate_args(
    current_cid: &str,
    mq_all: &[MessageQueue],
    cid_all: &[String],
) -> Result<bool, AllocateError> {
    if current_cid.is_empty() {
        return Err(AllocateError::EmptyCurrentCid);
    }
    if mq_all.is_empty() {
        return Err(AllocateError::EmptyMqAll);
    }
    if cid_all.is_empty() {
        return Err(AllocateError::EmptyCidAll);
    }
    Ok(cid_all.iter().any(|c| c == current_cid))
}
