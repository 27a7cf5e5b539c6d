//! # rmq-pull-consumer
//!
//! - [`PullConsumer`] (Java `DefaultMQPullConsumer`): the application pulls queues at
//!   offsets it chooses (`pull`, the long-polling `pull_block_if_not_found`), reads and
//!   updates consume offsets, and may follow a rebalance through a [`MessageQueueListener`].
//! - [`LitePullConsumer`] (Java `DefaultLitePullConsumer`): subscribe or assign; background
//!   pull tasks fill a bounded buffer; `poll`, `seek`, `commit_sync` or auto-commit every
//!   5 s, `pause`/`resume` per queue, and a `futures::Stream` of messages.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rmq_pull_consumer::LitePullConsumer;
//!
//! let consumer = LitePullConsumer::builder("example_group")
//!     .namesrv_addr("127.0.0.1:9876")
//!     .subscribe("TopicTest", "*")
//!     .start()
//!     .await?;
//! for _ in 0..10 {
//!     for m in consumer.poll().await {
//!         println!("{} {} {:?}", m.queue_id, m.queue_offset, m.body);
//!     }
//! }
//! consumer.commit_sync().await?; // polled messages count as consumed
//! println!("{}", consumer.shutdown().await);
//! # Ok(()) }
//! ```

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
pub use rmq_remoting::{BoxFuture, TlsConfig, TlsConfigBuilder, TlsConfigError, TlsFailure};
