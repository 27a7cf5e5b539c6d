//! # rmq-pull-consumer
//!
//! - [`PullConsumer`] (Java `DefaultMQPullConsumer`): the application pulls queues at
//!   offsets it chooses (`pull`, the long-polling `pull_block_if_not_found`), reads and
//!   updates consume offsets, and may follow a rebalance through a [`MessageQueueListener`].
//! - [`LitePullConsumer`] (Java `DefaultLitePullConsumer`): subscribe or assign; background
//!   pull tasks fill a bounded buffer; `poll`, `seek`, `commit_sync` or auto-commit every
//!   5 s, `pause`/`resume` per queue, and a `futures::Stream` of messages.

mod error;
mod lite;
mod pull;

pub use error::PullConsumerError;
pub use lite::{LitePullConsumer, LitePullConsumerBuilder, LitePullConsumerConfig};
pub use pull::{MessageQueueListener, PullConsumer, PullConsumerBuilder, PullConsumerConfig};
// Everything a user needs, so that this one dependency is enough (see rmq-push-consumer).
pub use rmq_client_core::{
    BoxError, ClientConfig, ClientError, ClientInstance, ConsumeFromWhere, Credentials, ErrorKind,
    MessageExt, MessageModel, MessageQueue, Properties, PullResult, PullStatus,
};
pub use rmq_offset_store::{
    LocalFileOffsetStore, OffsetStore, OffsetStoreError, ReadOffsetType, RemoteBrokerOffsetStore,
};
pub use rmq_rebalance::{
    AllocateError, AllocateMachineRoomNearby, AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle, AllocateMessageQueueByConfig,
    AllocateMessageQueueByMachineRoom, AllocateMessageQueueConsistentHash,
    AllocateMessageQueueStrategy,
};
pub use rmq_remoting::BoxFuture;
